"""``mask``: turn the cells a quality band flags (class codes or bits), grown by whole cells, into nodata."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, overload

import attrs
import numpy as np

from pyr import _lazy
from pyr._curry import SameKindStep, _Curried
from pyr._nodata import is_value, nodata_key
from pyr.cube import Cube
from pyr.errors import GridMismatch, InvalidArgument
from pyr.geobox import GeoBox
from pyr.raster import Raster

__all__ = ["dilate_square", "mask"]

R = TypeVar("R", Raster, Cube)


class _MaskOp(Protocol):
    """``mask`` as the type checker sees it: with the data, or curried with ``qa=`` given by keyword."""

    @overload
    def __call__(
        self,
        obj: Raster,
        qa: Raster,
        /,
        *,
        values: Sequence[float] | float | None = None,
        bits: Sequence[int] | int | None = None,
        dilate: int = 0,
    ) -> Raster: ...
    @overload
    def __call__(
        self,
        obj: Cube,
        qa: Raster | Cube,
        /,
        *,
        values: Sequence[float] | float | None = None,
        bits: Sequence[int] | int | None = None,
        dilate: int = 0,
    ) -> Cube: ...
    @overload
    def __call__(
        self,
        *,
        qa: Raster | Cube,
        values: Sequence[float] | float | None = None,
        bits: Sequence[int] | int | None = None,
        dilate: int = 0,
    ) -> SameKindStep: ...


def _curried_mask(func: Callable[..., Any]) -> _MaskOp:
    """Curry ``mask`` (pyr's currying layer); its static type asks for ``qa=`` by keyword when the data is left out."""
    curry: _MaskOp = _Curried(func)
    return curry


def dilate_square(flags: np.ndarray, cells: int) -> np.ndarray:
    """``flags`` (bool, ``(..., y, x)``) grown by ``cells`` in every direction: a square, 8-connected.

    A separable maximum filter: along y, then along x, each a running OR of
    ``2 * cells + 1`` shifted views. Cells beyond the array are unflagged.

    >>> f = np.zeros((3, 5), bool); f[1, 2] = True
    >>> dilate_square(f, 1).astype(int)
    array([[0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 1, 1, 0]])
    """
    if cells == 0:
        return flags
    out = flags
    for axis in (flags.ndim - 2, flags.ndim - 1):
        n = out.shape[axis]
        pad = [(0, 0)] * out.ndim
        pad[axis] = (cells, cells)
        padded = np.pad(out, pad)
        grown = np.zeros_like(out)
        for k in range(2 * cells + 1):
            index = [slice(None)] * out.ndim
            index[axis] = slice(k, k + n)
            grown |= padded[tuple(index)]
        out = grown
    return out


@attrs.frozen
class _MaskKernel:
    """The numpy kernel of :func:`mask` on blocks ``(..., band, y, x)`` of the data and of the one-band qa.

    Picklable and deterministically tokenized (its fields are plain values).
    """

    values: tuple[float, ...]
    bits: int  # the OR of the bits asked for (0: none)
    qa_nodata: float | int | None
    cells: int
    fill: float | int

    def flagged(self, qa: np.ndarray) -> np.ndarray:
        """Where ``qa`` (``(..., 1, y, x)``) has one of the values or one of the bits: ``(..., y, x)`` bool."""
        q = qa[..., 0, :, :]
        hit = np.isin(q, self.values) if self.values else np.zeros(q.shape, bool)
        if self.bits:
            unsigned = q.view(f"u{q.dtype.itemsize}")
            with_bits = (unsigned & self.bits) != 0
            if is_value(self.qa_nodata):  # a nodata cell has no bits (a fill of 65535 has them all set)
                with_bits &= q != self.qa_nodata
            hit |= with_bits
        return hit

    def __call__(self, block: np.ndarray, qa: np.ndarray) -> np.ndarray:
        hit = dilate_square(self.flagged(qa), self.cells)
        return np.where(hit[..., None, :, :], np.asarray(self.fill, dtype=block.dtype), block)

    def __dask_tokenize__(self) -> object:
        return ("pyr.mask", self.values, self.bits, nodata_key(self.qa_nodata), self.cells, nodata_key(self.fill))


def _grid_difference(a: GeoBox, b: GeoBox) -> str:
    """What tells grid ``b`` from grid ``a``, in words."""
    if a.shape != b.shape:
        return f"shape {b.shape} instead of {a.shape}"
    if a.crs != b.crs and GeoBox(a.shape, a.transform, b.crs) != a:
        return f"CRS {b.crs} instead of {a.crs}"
    return f"transform {tuple(b.transform)[:6]} instead of {tuple(a.transform)[:6]}"


def _parse_values(values: Any, dtype: np.dtype[Any]) -> tuple[float, ...]:
    """``values=``: class codes the qa dtype can hold (one number is one code)."""
    if values is None:
        return ()
    items = [values] if isinstance(values, int | float | np.integer | np.floating) else values
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise InvalidArgument(f"values={values!r}: expected class codes, a sequence of numbers (e.g. [3, 8, 9, 10]).")
    out: list[Any] = []
    for v in items:
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
            raise InvalidArgument(f"values={values!r}: {v!r} is not a number.")
        if not math.isfinite(float(v)):
            raise InvalidArgument(f"values={values!r}: {v!r} is not finite (NaN cells are the qa's missing data).")
        if dtype.kind in "biu":
            if float(v) != int(v):
                raise InvalidArgument(f"values={values!r}: {v!r} is not a whole number; the qa is {dtype}.")
            info = np.iinfo(dtype) if dtype.kind != "b" else None
            low, high = (0, 1) if info is None else (int(info.min), int(info.max))
            if not low <= int(v) <= high:
                raise InvalidArgument(f"values={values!r}: {int(v)} is out of range for the qa's dtype {dtype}.")
            out.append(int(v))
        else:
            out.append(float(v))
    return tuple(out)


def _parse_bits(bits: Any, dtype: np.dtype[Any]) -> int:
    """``bits=``: bit positions within the qa dtype's width, as one OR-ed integer (one int is one bit)."""
    if bits is None:
        return 0
    if dtype.kind not in "biu":
        raise InvalidArgument(f"bits={bits!r}: the qa is {dtype}; bits need an integer qa band.")
    width = 1 if dtype.kind == "b" else dtype.itemsize * 8
    items = [bits] if isinstance(bits, int | np.integer) else bits
    if isinstance(items, str | bytes) or not isinstance(items, Sequence | np.ndarray):
        raise InvalidArgument(f"bits={bits!r}: expected bit positions, a sequence of ints (e.g. [1, 2, 3, 4]).")
    word = 0
    for b in items:
        if isinstance(b, bool | np.bool_) or not isinstance(b, int | np.integer):
            raise InvalidArgument(f"bits={bits!r}: {b!r} is not a bit position (an int).")
        if not 0 <= int(b) < width:
            raise InvalidArgument(
                f"bits={bits!r}: bit {int(b)} is outside the qa's dtype {dtype} (bits 0..{width - 1})."
            )
        word |= 1 << int(b)
    return word


def _qa_data(obj: Raster | Cube, qa: Any) -> Any:
    """The qa's data shaped like ``obj``'s (dates first for a cube), after checking it fits ``obj``."""
    if not isinstance(qa, Raster | Cube):
        raise InvalidArgument(f"qa={qa!r}: expected a one-band Raster or Cube (a quality band).")
    if qa.count != 1:
        raise InvalidArgument(f"qa has {qa.count} bands {qa.bands!r}; mask needs a one-band quality raster.")
    if qa.geobox != obj.geobox:
        why = _grid_difference(obj.geobox, qa.geobox)
        raise GridMismatch(
            f"mask: qa is not on the grid of the data: it has {why}. Read or reproject it onto the data's "
            "grid first (geobox=..., resampling='nearest' keeps class codes and bits)."
        )
    if isinstance(obj, Raster):
        if isinstance(qa, Cube):
            raise InvalidArgument("qa is a Cube; masking a Raster takes a one-band Raster.")
        return qa.data
    if isinstance(qa, Cube):
        if qa.ntimes != obj.ntimes:
            raise GridMismatch(f"mask: qa has {qa.ntimes} date(s); the cube has {obj.ntimes}.")
        if qa.times is not None and obj.times is not None and not np.array_equal(qa.times, obj.times):
            raise GridMismatch(f"mask: qa's times {qa.times} are not the cube's {obj.times}.")
        return qa.data
    # One raster for every date: repeated lazily, or broadcast without a copy.
    if obj.ntimes and (obj.is_lazy or qa.is_lazy):
        single = _lazy.as_lazy(qa.data, (1, *(obj.chunks or qa.chunks or ((), (), ()))[-2:]))
        return _lazy.stack([single] * obj.ntimes)
    return np.broadcast_to(np.asarray(qa.data)[None], (obj.ntimes, *qa.shape))


@_curried_mask
def mask(
    obj: R,
    qa: Raster | Cube,
    *,
    values: Sequence[float] | float | None = None,
    bits: Sequence[int] | int | None = None,
    dilate: int = 0,
) -> R:
    """``obj`` with nodata wherever the quality band ``qa`` flags a cell, grown by ``dilate`` cells.

    A cell is flagged when ``qa`` there equals one of ``values`` (class
    codes, e.g. Sentinel-2 SCL ``[3, 8, 9, 10]``: cloud shadow, medium and
    high cloud probability, cirrus) or has any of ``bits`` set (bit
    positions, 0 the least significant, e.g. Landsat Collection 2
    ``QA_PIXEL`` ``[1, 2, 3, 4]``: dilated cloud, cirrus, cloud, cloud
    shadow). The flagged area then grows by ``dilate`` cells in every
    direction (a square: diagonal neighbours too), and those cells become
    nodata in every band of ``obj``: NaN for a float ``obj`` (whose nodata
    becomes NaN if it had none), the ``obj``'s nodata value otherwise.

    ``qa`` is a one-band :class:`~pyr.Raster` on ``obj``'s grid: for a
    :class:`~pyr.Cube`, a one-band cube with the same dates (one mask per
    date), or a raster (one mask for every date). A qa cell equal to the
    qa's own nodata is flagged only when ``values`` lists that value: its
    bits are not read (a fill of 65535 would have them all set).

    Lazy in, lazy out: one task per chunk, reading ``dilate`` halo cells of
    the qa around it, with the same result as the eager call. ``obj``'s
    scales and offsets are kept. Curried with ``qa`` by keyword, as in
    ``pipe(cube, mask(qa=scl, values=[3, 8, 9, 10]), ...)``: a positional
    first argument is always the data.

    Raises
    ------
    InvalidArgument
        Naming the argument: neither ``values`` nor ``bits``; a value the qa
        dtype cannot hold; a bit outside its width (or ``bits`` on a float
        qa); a negative ``dilate``; a qa with more than one band; an integer
        ``obj`` without nodata (set one first, e.g. ``read(..., nodata=0)``).
    GridMismatch
        ``qa`` on another grid (shape, CRS or transform, named), or with
        other dates than the cube. A quality band at another resolution
        (Sentinel-2's 20 m SCL beside a 10 m band) is read onto the data's
        grid first: ``read(scl, geobox=red.geobox)`` (nearest resampling
        keeps class codes and bits).

    Examples
    --------
    >>> import numpy as np
    >>> from toolz import pipe
    >>> from pyr import GeoBox, Raster, mask
    >>> gb = GeoBox.from_bounds((0, 0, 50, 10), 10, "EPSG:32631")
    >>> red = Raster(np.array([[[10, 20, 30, 40, 50]]], "uint16"), gb, nodata=0)
    >>> scl = Raster(np.array([[[4, 9, 4, 4, 4]]], "uint8"), gb)
    >>> mask(red, scl, values=[3, 8, 9, 10]).data
    array([[[10,  0, 30, 40, 50]]], dtype=uint16)
    >>> pipe(red, mask(qa=scl, values=[9], dilate=1)).data
    array([[[ 0,  0,  0, 40, 50]]], dtype=uint16)
    >>> qa_pixel = Raster(np.array([[[21824, 22280, 21824, 23888, 1]]], "uint16"), gb)
    >>> mask(red, qa_pixel, bits=[1, 2, 3, 4]).data
    array([[[10,  0, 30,  0, 50]]], dtype=uint16)
    """
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"mask expects a Raster or Cube, not {type(obj).__name__}.")
    qa_data = _qa_data(obj, qa)
    qa_dtype = np.dtype(qa.dtype)
    parsed_values = _parse_values(values, qa_dtype)
    word = _parse_bits(bits, qa_dtype)
    if not parsed_values and not word:
        raise InvalidArgument(
            f"values={values!r}, bits={bits!r}: nothing to mask; give class codes in values= or bit positions in bits=."
        )
    if isinstance(dilate, bool) or not isinstance(dilate, int | np.integer) or dilate < 0:
        raise InvalidArgument(f"dilate={dilate!r}: expected a non-negative int (cells).")
    dtype = np.dtype(obj.dtype)
    nodata = obj.nodata
    if dtype.kind == "f":
        fill: float | int = math.nan
        nodata = math.nan if nodata is None else nodata
    elif nodata is None:
        raise InvalidArgument(
            f"mask: the data is {dtype} without a nodata value, so masked cells could not be told apart; "
            "set one first (e.g. read(..., nodata=0), or attrs.evolve(obj, nodata=0))."
        )
    else:
        fill = nodata
    kernel = _MaskKernel(parsed_values, word, qa.nodata, int(dilate), fill)
    data = _lazy.apply(
        kernel, [obj.data, qa_data], dtype=dtype, out_bands=obj.count, depth=int(dilate), name="pyr-mask"
    )
    return attrs.evolve(obj, data=data, nodata=nodata)
