"""``stack``: rasters of one grid, dtype, nodata and band set -> a ``Cube``."""

from __future__ import annotations

from collections.abc import Sequence

from pyr._curry import curried
from pyr._lazy import stack as stack_arrays
from pyr._nodata import same_nodata
from pyr.cube import Cube
from pyr.errors import GridMismatch
from pyr.raster import Raster, rasters_of
from pyr.types import TimesLike, parse_times

__all__ = ["stack"]


def _difference(first: Raster, other: Raster) -> str | None:
    """How ``other`` differs from ``first`` in what a cube needs shared (``None``: it does not)."""
    if other.geobox != first.geobox:
        return f"grid {other.geobox!r} instead of {first.geobox!r}"
    if other.dtype != first.dtype:
        return f"dtype {other.dtype} instead of {first.dtype}"
    if not same_nodata(other.nodata, first.nodata):
        return f"nodata {other.nodata!r} instead of {first.nodata!r}"
    if other.bands != first.bands:
        return f"bands {other.bands!r} instead of {first.bands!r}"
    if (other.scales, other.offsets) != (first.scales, first.offsets):
        return f"scales/offsets {other.scales!r}/{other.offsets!r} instead of {first.scales!r}/{first.offsets!r}"
    return None


@curried
def stack(rasters: Sequence[Raster], *, times: TimesLike = None) -> Cube:
    """Stack rasters on one grid into a ``Cube`` ``(time, band, y, x)``, one date per raster.

    All rasters must share the geobox, dtype, nodata and band names of the
    first; the first that does not is named, by position, in a
    :class:`~pyr.errors.GridMismatch`. Eager rasters give an eager cube; if
    any raster is lazy the cube is lazy (eager ones are wrapped, all take the
    chunks of the first lazy one), one date per chunk.

    Parameters
    ----------
    rasters
        A non-empty sequence of :class:`~pyr.Raster`.
    times
        One date per raster: ISO 8601 strings (``"2024-06-12"``,
        ``"2024-06-12T10:30:21Z"``), the compact ``"20240612"`` /
        ``"20240612T103021"`` of satellite file names, datetimes or
        ``numpy.datetime64`` (see :func:`pyr.types.parse_times`); or ``None``
        for positions. Anything else raises
        :class:`~pyr.errors.InvalidArgument` naming ``times``.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster, stack
    >>> gb = GeoBox.from_bounds((0, 0, 20, 10), 10, "EPSG:32631")
    >>> a = Raster(np.zeros((1, 1, 2), "uint16"), gb, nodata=0)
    >>> c = stack([a, a], times=["2024-01-01", "2024-01-11"])
    >>> c.shape, str(c.times[1])[:10]
    ((2, 1, 1, 2), '2024-01-11')
    >>> stack(times=["2024-01-01"])([a]).ntimes
    1
    """
    items = rasters_of(rasters, "stack")
    first = items[0]
    for i, r in enumerate(items[1:], start=1):
        why = _difference(first, r)
        if why is not None:
            raise GridMismatch(f"stack: raster {i} (0-based position) does not match raster 0: it has {why}.")
    parsed = parse_times(times, len(items))
    data = stack_arrays([r.data for r in items])
    return Cube(
        data,
        first.geobox,
        nodata=first.nodata,
        bands=first.bands,
        times=parsed,
        scales=first.scales,
        offsets=first.offsets,
    )
