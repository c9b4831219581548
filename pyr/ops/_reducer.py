"""The kernel of ``reduce_time``: reduce the dates of one spatial tile, skipping nodata.

:class:`Reducer` takes the list of one tile's date blocks ``(t, band, y, x)``
and walks them date by date (``mean``, ``sum``, ``std``, ``count``, ``min``,
``max`` keep only per-cell accumulators) or copies them to float (``median``
and callables, which need the whole time axis at once). A median sorts each
cell's dates with a comparator network of element-wise min/max over whole
layers (Batcher's odd-even merge sort; ``numpy.sort`` of a stack beyond 32
dates), missing values as +inf, then picks the middle of the ``n`` valid ones.
Numpy only: :mod:`pyr.ops.reduce` runs it eagerly or in dask tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from pyr._imports import ensure
from pyr._nodata import missing
from pyr.errors import InvalidArgument

__all__ = ["COUNT_DTYPE", "STACKED", "Reducer", "work_dtype"]

STACKED = ("median", "callable")  # need the whole time axis of a tile as one float array
COUNT_DTYPE = np.dtype("int32")


def work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The float dtype a stacked kernel works in: float32 unless that would round the input."""
    if dtype.kind == "f" and dtype.itemsize >= 8:
        return np.dtype("float64")
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        return np.dtype("float64")
    return np.dtype("float32")


def _dates(blocks: Sequence[np.ndarray]) -> Iterator[np.ndarray]:
    for block in blocks:
        for t in range(block.shape[0]):
            yield block[t]


_NETWORK_MAX = 32  # up to this many dates a median sorts with a comparator network (np.choose's limit)


def _network(n: int) -> tuple[tuple[int, int], ...]:
    """Batcher's odd-even merge sort: the compare-exchange pairs that sort ``n`` items."""
    size = 1
    while size < n:
        size *= 2
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    a, b = i + j, i + j + k
                    if a // (2 * p) == b // (2 * p) and b < n:
                        pairs.append((a, b))
            k //= 2
        p *= 2
    return tuple(pairs)


def _sort_network(layers: list[np.ndarray]) -> None:
    """Sort ``layers`` element-wise in place (each cell's values across the list ascending)."""
    if len(layers) < 2:
        return
    spare = np.empty_like(layers[0])
    for a, b in _network(len(layers)):
        np.minimum(layers[a], layers[b], out=spare)
        np.maximum(layers[a], layers[b], out=layers[b])
        layers[a], spare = spare, layers[a]


@attrs.frozen
class Reducer:
    """Reduce a list of ``(t, band, y, x)`` blocks (one tile, all dates) to ``(band, y, x)``."""

    how: str
    func: Callable[[np.ndarray], Any] | None
    nodata: float | int | None
    out_dtype: np.dtype[Any]
    empty: float | int | None  # what min/max put in cells with no valid value

    def valid(self, date: np.ndarray) -> np.ndarray | None:
        """Where ``date`` holds data (``None``: everywhere)."""
        gone = missing(date, self.nodata)
        return None if gone is None else ~gone

    def __call__(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        if self.how in STACKED:
            return self._stacked(blocks)
        if self.how in ("min", "max"):
            return self._extreme(blocks)
        return self._moments(blocks)

    def _integer_sum(self, blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Exact ``(count, sum)`` of valid cells of integer dates, without masked adds.

        Nodata cells are summed too and their total (``nodata`` times the
        number of nodata dates) is subtracted at the end: an unmasked integer
        add is faster than a masked float one, and exact.
        """
        shape = blocks[0].shape[1:]
        dtype = blocks[0].dtype
        ntimes = sum(b.shape[0] for b in blocks)
        narrow = dtype.itemsize <= 2 and ntimes < 2**15
        acc = np.zeros(
            shape, ("int32" if narrow else "int64") if dtype.kind == "i" else ("uint32" if narrow else "uint64")
        )
        n = np.zeros(shape, COUNT_DTYPE)
        for date in _dates(blocks):
            np.add(acc, date, out=acc)
            if self.nodata is not None:
                n += date != self.nodata
        total = acc.astype("float64")  # exact: sums stay far below 2**53
        if self.nodata is None:
            n[...] = ntimes
        elif self.nodata != 0:
            total -= float(self.nodata) * (ntimes - n)
        return n, total

    def _float_sum(self, blocks: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(count, sum)`` of valid cells, masked adds in float64."""
        shape = blocks[0].shape[1:]
        n = np.zeros(shape, COUNT_DTYPE)
        total = np.zeros(shape, "float64")
        for date in _dates(blocks):
            ok = self.valid(date)
            if ok is None:
                n += 1
                np.add(total, date, out=total)
            else:
                n += ok
                np.add(total, date, out=total, where=ok)
        return n, total

    def _moments(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        shape = blocks[0].shape[1:]
        exact_ints = blocks[0].dtype.kind in "iu" and blocks[0].dtype.itemsize <= 4
        n, total = self._integer_sum(blocks) if exact_ints else self._float_sum(blocks)
        if self.how == "count":
            return n
        empty = n == 0
        if self.how == "sum":
            out = total.astype(self.out_dtype)
            out[empty] = np.nan
            return out
        with np.errstate(invalid="ignore", divide="ignore"):
            mean: np.ndarray = total / n
        if self.how == "mean":
            return mean.astype(self.out_dtype)
        squares = np.zeros(shape, "float64")  # std: a second pass, as numpy (no cancellation)
        for date in _dates(blocks):
            ok = self.valid(date)
            dev = date.astype("float64")
            np.subtract(dev, mean, out=dev)
            np.multiply(dev, dev, out=dev)
            np.add(squares, dev, out=squares, where=ok if ok is not None else True)
        with np.errstate(invalid="ignore", divide="ignore"):
            var: np.ndarray = squares / n
        std: np.ndarray = np.sqrt(var).astype(self.out_dtype)
        return std

    def _extreme(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        shape = blocks[0].shape[1:]
        dtype = blocks[0].dtype
        if dtype.kind == "b":
            start: Any = self.how == "min"
        elif dtype.kind == "f":
            start = np.inf if self.how == "min" else -np.inf
        else:
            info = np.iinfo(dtype)
            start = info.max if self.how == "min" else info.min
        acc = np.full(shape, start, dtype)
        seen = np.zeros(shape, bool)
        combine = np.minimum if self.how == "min" else np.maximum
        for date in _dates(blocks):
            ok = self.valid(date)
            if ok is None:
                combine(acc, date, out=acc)
                seen[...] = True
            else:
                combine(acc, date, out=acc, where=ok)
                seen |= ok
        if not seen.all():
            acc[~seen] = self.empty
        return acc

    def _stacked(self, blocks: Sequence[np.ndarray]) -> np.ndarray:
        ntimes = sum(b.shape[0] for b in blocks)
        shape = blocks[0].shape[1:]
        work = work_dtype(blocks[0].dtype)
        if self.how == "median":
            return self._median(blocks, ntimes, work)
        stacked = np.empty((ntimes, *shape), work)
        for t, date in enumerate(_dates(blocks)):
            stacked[t] = date
            ok = self.valid(date)
            if ok is not None:
                stacked[t][~ok] = np.nan
        assert self.func is not None
        out = np.asarray(self.func(stacked))
        if out.shape != shape:
            raise InvalidArgument(
                f"how={self.func!r} returned shape {out.shape} for a block of shape {stacked.shape}; it must "
                f"reduce axis 0 to {shape} (e.g. lambda a: np.nanpercentile(a, 90, axis=0))."
            )
        result: np.ndarray = out.astype(self.out_dtype)
        return result

    def _median(self, blocks: Sequence[np.ndarray], ntimes: int, work: np.dtype[Any]) -> np.ndarray:
        shape = blocks[0].shape[1:]
        if ntimes == 0:
            return np.full(shape, np.nan, self.out_dtype)
        # Missing values become +inf so they sort last; ``n`` says how many are valid (a
        # valid +inf sorts among them, and the median only looks at the first n).
        n = np.zeros(shape, COUNT_DTYPE)
        network = ntimes <= _NETWORK_MAX
        stacked = None if network else np.empty((ntimes, *shape), work)
        layers: list[np.ndarray] = []
        for t, date in enumerate(_dates(blocks)):
            layer = date.astype(work) if stacked is None else stacked[t]
            if stacked is not None:
                layer[...] = date
            ok = self.valid(date)
            if ok is None:
                n += 1
            else:
                n += ok
                layer[~ok] = np.inf
            layers.append(layer)
        lo_idx, hi_idx = np.maximum((n - 1) // 2, 0), np.maximum(n // 2, 0)
        if stacked is None:
            _sort_network(layers)
            # take_along_axis on a stack is faster than np.choose over the list.
            stacked = np.stack(layers)
            del layers
        else:
            stacked.sort(axis=0)
        lo = np.take_along_axis(stacked, lo_idx[None].astype(np.intp), axis=0)[0]
        hi = np.take_along_axis(stacked, hi_idx[None].astype(np.intp), axis=0)[0]
        with np.errstate(invalid="ignore"):  # -inf + inf, as numpy's median
            out: np.ndarray = ((lo.astype("float64") + hi) * 0.5).astype(self.out_dtype)
        out[n == 0] = np.nan
        return out

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return ("pyr.reduce", self.how, tokenize(self.func), repr(self.nodata), str(self.out_dtype), repr(self.empty))
