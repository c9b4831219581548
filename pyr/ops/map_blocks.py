"""``map_blocks``: apply a numpy kernel to every block of one or more rasters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from pyr import _blocks, _lazy
from pyr._curry import curried
from pyr.cube import Cube
from pyr.errors import GridMismatch, InvalidArgument
from pyr.raster import Raster
from pyr.types import parse_nodata

__all__ = ["map_blocks"]

_INHERIT: Any = object()


@curried
def map_blocks(
    func: Callable[..., np.ndarray],
    raster: Raster | Cube,
    *more: Raster | Cube,
    dtype: Any = None,
    bands: Sequence[str] | None = None,
    depth: int = 0,
    nodata: Any = _INHERIT,
) -> Raster | Cube:
    """Apply ``func`` to matching numpy blocks of ``raster`` and ``more``.

    ``func(block, *more_blocks)`` gets one ``(band, y, x)`` block per input
    (for a ``Cube``, one call per date) and returns a ``(band', y, x)`` block
    of the same spatial shape. All inputs must be on the same geobox (and, for
    cubes, have the same number of dates). ``dtype`` and ``bands`` describe
    the output when they differ from the first input; ``nodata`` (default:
    the first input's, when representable in ``dtype``) likewise. ``depth``
    gives ``func`` that many halo cells on each side, so neighbourhood kernels
    give the same result lazily and eagerly.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster, map_blocks
    >>> gb = GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631")
    >>> a = Raster(np.array([[[1, 2, 3]]], "uint16"), gb)
    >>> map_blocks(lambda x, y: x + y, a, a).data
    array([[[2, 4, 6]]], dtype=uint16)
    """
    inputs = (raster, *more)
    kind = type(raster)
    if kind not in (Raster, Cube):
        raise InvalidArgument(f"map_blocks expects Raster or Cube inputs, not {kind.__name__}.")
    if not isinstance(depth, int) or depth < 0:
        raise InvalidArgument(f"depth={depth!r} must be a non-negative int.")
    for i, other in enumerate(more, start=1):
        if type(other) is not kind:
            raise InvalidArgument(f"map_blocks input {i} is a {type(other).__name__}; input 0 is a {kind.__name__}.")
        if other.geobox != raster.geobox:
            raise GridMismatch(f"map_blocks input {i} is on {other.geobox!r}; input 0 is on {raster.geobox!r}.")
        if other.shape[:-3] != raster.shape[:-3]:
            raise GridMismatch(f"map_blocks input {i} has {other.shape[0]} dates; input 0 has {raster.shape[0]}.")
    out_dtype = raster.dtype if dtype is None else np.dtype(dtype)
    out_bands = raster.bands if bands is None else tuple(str(b) for b in bands)
    if nodata is _INHERIT:
        try:
            out_nodata = parse_nodata(raster.nodata, out_dtype)
        except InvalidArgument:
            out_nodata = None
    else:
        out_nodata = parse_nodata(nodata, out_dtype)
    kernel = func if kind is Raster else _blocks.per_date(func)
    data = _lazy.apply(
        kernel,
        [r.data for r in inputs],
        dtype=out_dtype,
        out_bands=len(out_bands),
        depth=depth,
        name=f"pyr-{getattr(func, '__name__', 'map')}".replace("<lambda>", "lambda"),
    )
    if data.shape[-2:] != raster.shape[-2:] or data.shape[-3] != len(out_bands):
        raise InvalidArgument(
            f"map_blocks: func returned shape {tuple(data.shape)}; expected {len(out_bands)} band(s) "
            f"of {raster.shape[-2:]} (pass bands= when the band count changes)."
        )
    return attrs.evolve(raster, data=data, bands=out_bands, nodata=out_nodata)
