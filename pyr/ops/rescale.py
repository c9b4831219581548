"""``rescale``: ``data * scale + offset`` in a float dtype, nodata to NaN, optional clip."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeVar

import attrs
import numpy as np

from pyr import _blocks, _lazy
from pyr._curry import curried
from pyr._nodata import is_value
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.raster import Raster
from pyr.types import parse_dtype, parse_float

__all__ = ["rescale"]

R = TypeVar("R", Raster, Cube)


def _rescale_kernel(
    block: np.ndarray,
    *,
    scale: float,
    offset: float,
    clip: tuple[float, float] | None,
    dtype: np.dtype[Any],
    nodata: float | int | None,
) -> np.ndarray:
    out = block.astype(dtype, copy=True)
    if scale != 1.0:
        np.multiply(out, dtype.type(scale), out=out)
    if offset != 0.0:
        np.add(out, dtype.type(offset), out=out)
    if clip is not None:
        np.clip(out, dtype.type(clip[0]), dtype.type(clip[1]), out=out)
    if is_value(nodata):
        out[block == nodata] = np.nan
    return out


@curried
def rescale(
    raster: R,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    clip: tuple[float, float] | None = None,
    dtype: Any = "float32",
) -> R:
    """``data * scale + offset`` in ``dtype``, clipped to ``clip``; nodata becomes NaN.

    Works on a :class:`~pyr.Raster` or a :class:`~pyr.Cube`, eager or lazy
    (lazy in, lazy out). The result's nodata is NaN. Curried, so
    ``rescale(scale=1e-4, clip=(0, 1))`` is a function of a raster.
    ``scale`` and ``offset`` are finite numbers, ``dtype`` a float dtype and
    ``clip`` a ``(lo, hi)`` pair (either may be infinite); anything else
    raises :class:`~pyr.errors.InvalidArgument` naming the argument, before
    anything is computed.

    Examples
    --------
    >>> import numpy as np
    >>> from toolz import pipe
    >>> from pyr import GeoBox, Raster, rescale
    >>> gb = GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631")
    >>> r = Raster(np.array([[[0, 5000, 20000]]], "uint16"), gb, nodata=0)
    >>> rescale(r, scale=1e-4, clip=(0, 1)).data
    array([[[nan, 0.5, 1. ]]], dtype=float32)
    >>> pipe(r, rescale(scale=1e-4)).data.dtype
    dtype('float32')
    """
    if not isinstance(raster, Raster | Cube):
        raise InvalidArgument(f"rescale expects a Raster or Cube, not {type(raster).__name__}.")
    scale = parse_float(scale, name="scale")
    offset = parse_float(offset, name="offset")
    dt = parse_dtype(dtype, kinds="f")  # nodata becomes NaN: a float dtype
    if clip is not None:
        if isinstance(clip, str | bytes) or not isinstance(clip, Sequence | np.ndarray) or len(clip) != 2:
            raise InvalidArgument(f"clip={clip!r}: expected (lo, hi).")
        lo, hi = (parse_float(c, name=f"clip[{i}]", infinite=True) for i, c in enumerate(clip))
        if lo > hi:
            raise InvalidArgument(f"clip={clip!r}: lo must be <= hi.")
        clip = (lo, hi)
    kernel = _KernelPartial(scale=scale, offset=offset, clip=clip, dtype=dt, nodata=raster.nodata)
    func = kernel if isinstance(raster, Raster) else _blocks.per_date(kernel)
    data = _lazy.apply(func, [raster.data], dtype=dt, out_bands=raster.count, name="pyr-rescale")
    return attrs.evolve(raster, data=data, nodata=math.nan)


@attrs.frozen
class _KernelPartial:
    """A picklable, deterministically tokenized partial of :func:`_rescale_kernel`."""

    scale: float
    offset: float
    clip: tuple[float, float] | None
    dtype: np.dtype[Any]
    nodata: float | int | None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return _rescale_kernel(
            block, scale=self.scale, offset=self.offset, clip=self.clip, dtype=self.dtype, nodata=self.nodata
        )

    def __dask_tokenize__(self) -> object:
        return ("pyr.rescale", self.scale, self.offset, self.clip, str(self.dtype), repr(self.nodata))
