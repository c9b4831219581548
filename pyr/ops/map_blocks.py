"""``map_blocks``: apply a numpy kernel to every block of one or more rasters."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs
import numpy as np

from pyr import _blocks, _lazy
from pyr._curry import curried_kernel
from pyr._imports import ensure
from pyr.cube import Cube
from pyr.errors import GridMismatch, InvalidArgument
from pyr.raster import Raster
from pyr.types import parse_dtype, parse_nodata

__all__ = ["map_blocks"]

_INHERIT: Any = object()

R = TypeVar("R", Raster, Cube)


@curried_kernel
def map_blocks(
    func: Callable[..., np.ndarray],
    raster: R,
    *more: Raster | Cube,
    dtype: Any = None,
    bands: Sequence[str] | None = None,
    depth: int = 0,
    nodata: Any = _INHERIT,
) -> R:
    """Apply ``func`` to matching numpy blocks of ``raster`` and ``more``.

    ``func(block, *more_blocks)`` gets one ``(band, y, x)`` block per input
    (for a ``Cube``, one call per date) and returns a ``(band', y, x)`` block
    of the same spatial shape. All inputs must be on the same geobox (and, for
    cubes, have the same number of dates).

    The result has the dtype ``func`` returns: it is learnt, without
    computing anything, by calling ``func`` once on small blocks (the first
    cells of eager inputs, blocks of ones for lazy ones), and every block must
    come back in it (a block of another dtype raises
    :class:`~pyr.errors.InvalidArgument` naming ``func``; nothing is cast
    silently). ``dtype=`` instead casts every block to that dtype and skips
    the trial call. ``bands`` names the output bands when they differ from the
    first input's; ``nodata`` (default: the first input's, when representable
    in the output dtype) likewise. ``depth`` gives ``func`` that many halo
    cells on each side, so neighbourhood kernels give the same result lazily
    and eagerly. Options are checked before anything runs
    (:class:`~pyr.errors.InvalidArgument` naming the argument); an exception
    raised by ``func`` propagates as it is.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster, map_blocks
    >>> gb = GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631")
    >>> a = Raster(np.array([[[1, 2, 3]]], "uint16"), gb)
    >>> map_blocks(lambda x, y: x + y, a, a).data
    array([[[2, 4, 6]]], dtype=uint16)
    >>> map_blocks(lambda x: (x.astype("float32") / 4).clip(0, 0.5), a).data
    array([[[0.25, 0.5 , 0.5 ]]], dtype=float32)
    """
    inputs: tuple[Raster | Cube, ...] = (raster, *more)
    kind = type(raster)
    if kind not in (Raster, Cube):
        raise InvalidArgument(f"map_blocks expects Raster or Cube inputs, not {kind.__name__}.")
    if not callable(func):
        raise InvalidArgument(f"func={func!r}: expected a function of numpy blocks.")
    if isinstance(depth, bool) or not isinstance(depth, int | np.integer) or depth < 0:
        raise InvalidArgument(f"depth={depth!r} must be a non-negative int.")
    depth = int(depth)
    for i, other in enumerate(more, start=1):
        if type(other) is not kind:
            raise InvalidArgument(f"map_blocks input {i} is a {type(other).__name__}; input 0 is a {kind.__name__}.")
        if other.geobox != raster.geobox:
            raise GridMismatch(f"map_blocks input {i} is on {other.geobox!r}; input 0 is on {raster.geobox!r}.")
        if other.shape[:-3] != raster.shape[:-3]:
            raise GridMismatch(f"map_blocks input {i} has {other.shape[0]} dates; input 0 has {raster.shape[0]}.")
    out_bands = raster.bands if bands is None else _parse_bands(bands)
    if dtype is None:
        out_dtype = _infer_dtype(func, inputs, depth)
        func = _SameDtype(func, out_dtype)
    else:
        out_dtype = parse_dtype(dtype)  # blocks are cast to it, as asked
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
        name=f"pyr-{_name(func)}".replace("<lambda>", "lambda"),
    )
    if data.shape[-2:] != raster.shape[-2:] or data.shape[-3] != len(out_bands):
        raise InvalidArgument(
            f"map_blocks: func returned shape {tuple(data.shape)}; expected {len(out_bands)} band(s) "
            f"of {raster.shape[-2:]} (pass bands= when the band count changes)."
        )
    # The kernel's output is in its own units: factors recorded for the input no longer apply.
    return attrs.evolve(raster, data=data, bands=out_bands, nodata=out_nodata, scales=None, offsets=None)


def _name(func: Callable[..., Any]) -> str:
    return str(getattr(func, "__name__", "func"))


def _parse_bands(bands: object) -> tuple[str, ...]:
    """``bands=`` of map_blocks: a non-empty sequence of names (one string is one name)."""
    if isinstance(bands, str):
        return (bands,)
    if not isinstance(bands, Sequence) or isinstance(bands, bytes) or len(bands) == 0:
        raise InvalidArgument(f"bands={bands!r}: expected a non-empty sequence of band names, one per output band.")
    return tuple(str(b) for b in bands)


def _sample(obj: Raster | Cube, depth: int) -> np.ndarray:
    """A small ``(band, y, x)`` block of ``obj`` to run a kernel on: real values when eager, ones when lazy."""
    size = 2 * depth + 2
    data = obj.data if isinstance(obj, Raster) else (obj.data[0] if obj.shape[0] else None)
    if data is None or obj.is_lazy:
        return np.ones((obj.count, min(size, obj.shape[-2]), min(size, obj.shape[-1])), obj.dtype)
    return np.asarray(data[:, :size, :size])


def _infer_dtype(func: Callable[..., Any], inputs: Sequence[Raster | Cube], depth: int) -> np.dtype[Any]:
    """The dtype ``func`` returns, from one call on small blocks (as dask infers ``meta``); nothing is computed."""
    samples = [_sample(obj, depth) for obj in inputs]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = func(*samples)
    except Exception as err:
        shapes = ", ".join(str(s.shape) for s in samples)
        err.add_note(
            f"pyr.map_blocks called {_name(func)} on small blocks {shapes} to learn the dtype it returns; "
            "pass dtype= to skip that."
        )
        raise
    dt: np.dtype[Any] = np.asarray(out).dtype
    if dt.kind not in "biuf":
        raise InvalidArgument(
            f"map_blocks: {_name(func)} returns {dt} blocks; rasters hold bool, int, uint or float "
            "(return one of those, or pass dtype= to cast)."
        )
    return dt


class _SameDtype:
    """``func`` with every block checked to have the dtype inferred for it: a result is never cast silently."""

    __slots__ = ("dtype", "func")

    def __init__(self, func: Callable[..., Any], dtype: np.dtype[Any]) -> None:
        self.func = func
        self.dtype = dtype

    @property
    def __name__(self) -> str:
        return _name(self.func)

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        out = np.asarray(self.func(*blocks))
        if out.dtype != self.dtype:
            raise InvalidArgument(
                f"map_blocks: {_name(self.func)} returned a {out.dtype} block where it returned {self.dtype} "
                "for the block that set the output dtype; pass dtype= to cast every block to one dtype."
            )
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        return (_SameDtype, (self.func, self.dtype))

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return ("pyr.map_blocks._SameDtype", tokenize(self.func), str(self.dtype))
