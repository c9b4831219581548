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
    scale: tuple[float, ...],
    offset: tuple[float, ...],
    clip: tuple[float, float] | None,
    dtype: np.dtype[Any],
    nodata: float | int | None,
) -> np.ndarray:
    """``block * scale + offset`` (one factor per band, or one for all) in ``dtype``; nodata to NaN."""
    out = block.astype(dtype, copy=True)
    if any(s != 1.0 for s in scale):
        np.multiply(out, _per_band(scale, dtype, block.ndim), out=out)
    if any(o != 0.0 for o in offset):
        np.add(out, _per_band(offset, dtype, block.ndim), out=out)
    if clip is not None:
        np.clip(out, dtype.type(clip[0]), dtype.type(clip[1]), out=out)
    if is_value(nodata):
        out[block == nodata] = np.nan
    return out


def _per_band(factors: tuple[float, ...], dtype: np.dtype[Any], ndim: int) -> np.ndarray:
    """``factors`` shaped to broadcast over a ``(band, y, x)`` block: one value, or one per band."""
    return np.asarray(factors, dtype=dtype).reshape((len(factors),) + (1,) * (ndim - 1) if len(factors) > 1 else ())


@curried
def rescale(
    raster: R,
    *,
    scale: float | None = None,
    offset: float | None = None,
    clip: tuple[float, float] | None = None,
    dtype: Any = "float32",
) -> R:
    """``data * scale + offset`` in ``dtype``, clipped to ``clip``; nodata becomes NaN.

    With neither ``scale`` nor ``offset`` given, each band's factors are the
    ones its read recorded (``raster.scales``/``raster.offsets``: GDAL band
    metadata or STAC ``raster:bands``), or 1 and 0 when none were; given
    factors apply to every band instead (a missing one is 1, or 0). The
    result records no factors: they are applied. Works on a :class:`~pyr.Raster` or a :class:`~pyr.Cube`, eager or lazy
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
    >>> landsat = Raster(np.array([[[0, 7273, 43636]]], "uint16"), gb, nodata=0, scales=[2.75e-5], offsets=[-0.2])
    >>> rescale(landsat).data.round(4)
    array([[[nan,  0.,  1.]]], dtype=float32)
    """
    if not isinstance(raster, Raster | Cube):
        raise InvalidArgument(f"rescale expects a Raster or Cube, not {type(raster).__name__}.")
    if scale is None and offset is None and raster.scales is not None and raster.offsets is not None:
        scales, offsets = raster.scales, raster.offsets
    else:
        scales = (1.0 if scale is None else parse_float(scale, name="scale"),)
        offsets = (0.0 if offset is None else parse_float(offset, name="offset"),)
    dt = parse_dtype(dtype, kinds="f")  # nodata becomes NaN: a float dtype
    if clip is not None:
        if isinstance(clip, str | bytes) or not isinstance(clip, Sequence | np.ndarray) or len(clip) != 2:
            raise InvalidArgument(f"clip={clip!r}: expected (lo, hi).")
        lo, hi = (parse_float(c, name=f"clip[{i}]", infinite=True) for i, c in enumerate(clip))
        if lo > hi:
            raise InvalidArgument(f"clip={clip!r}: lo must be <= hi.")
        clip = (lo, hi)
    kernel = _KernelPartial(scale=scales, offset=offsets, clip=clip, dtype=dt, nodata=raster.nodata)
    func = kernel if isinstance(raster, Raster) else _blocks.per_date(kernel)
    data = _lazy.apply(func, [raster.data], dtype=dt, out_bands=raster.count, name="pyr-rescale")
    return attrs.evolve(raster, data=data, nodata=math.nan, scales=None, offsets=None)


@attrs.frozen
class _KernelPartial:
    """A picklable, deterministically tokenized partial of :func:`_rescale_kernel`."""

    scale: tuple[float, ...]
    offset: tuple[float, ...]
    clip: tuple[float, float] | None
    dtype: np.dtype[Any]
    nodata: float | int | None

    def __call__(self, block: np.ndarray) -> np.ndarray:
        return _rescale_kernel(
            block, scale=self.scale, offset=self.offset, clip=self.clip, dtype=self.dtype, nodata=self.nodata
        )

    def __dask_tokenize__(self) -> object:
        return ("pyr.rescale", self.scale, self.offset, self.clip, str(self.dtype), repr(self.nodata))
