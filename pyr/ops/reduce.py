"""``reduce_time``: reduce a cube across its dates, skipping nodata, in bounded memory.

One numpy kernel (:class:`_Reducer`) reduces the dates of one spatial tile:
it takes the list of that tile's date blocks and walks them date by date
(``mean``, ``sum``, ``std``, ``count``, ``min``, ``max`` keep only per-cell
accumulators) or copies them to float (``median`` and callables, which need
the whole time axis at once). A median sorts each cell's dates with a
comparator network of element-wise min/max over whole layers (Batcher's
odd-even merge sort; ``numpy.sort`` of a stack beyond 32 dates), missing
values as +inf, then picks the middle of the ``n`` valid ones.

Lazily, one task per spatial chunk reduces the blocks of all the dates of
that chunk (no rechunk of the time axis, no whole-cube array in any
process). Each such task is fused with the tasks that only it needs (the
reads of its chunk, the kernels applied to them), so it computes its inputs
where it runs and returns only the reduced chunk: on the processes
scheduler or a cluster, no date's block travels between processes. Eagerly, the same kernel runs tile by tile
over the numpy cube. Both paths cut the grid into tiles of at most
:func:`max_cells` cells, the most that fit dask's ``array.chunk-size`` for
all dates together (spatial chunks that are larger are split, never
grown), so lazy and eager results are identical and memory stays bounded by
the chunk size whatever the cube's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from pyr._curry import curried
from pyr._fuse import fuse_exclusive_ancestors
from pyr._imports import ensure
from pyr._lazy import is_lazy
from pyr._nodata import missing
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.raster import Raster

__all__ = ["HOWS", "max_cells", "reduce_time"]

HOWS = ("mean", "median", "min", "max", "sum", "std", "count")
_STACKED = ("median", "callable")  # need the whole time axis of a tile as one float array
COUNT_DTYPE = np.dtype("int32")


def _work_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """The float dtype a stacked kernel works in: float32 unless that would round the input."""
    if dtype.kind == "f" and dtype.itemsize >= 8:
        return np.dtype("float64")
    if dtype.kind in "iu" and dtype.itemsize >= 4:
        return np.dtype("float64")
    return np.dtype("float32")


def _budget() -> int:
    ensure("dask")
    import dask
    from dask.utils import parse_bytes

    budget: int = parse_bytes(dask.config.get("array.chunk-size"))
    return int(budget)


def max_cells(how: str, ntimes: int, nbands: int, dtype: Any) -> int:
    """The most ``(y, x)`` cells one reduction task may cover.

    A task holds the tile's blocks of every date (``ntimes * nbands *
    itemsize`` bytes per cell), plus, for ``median`` and callables, a float
    copy of them, plus a few per-cell accumulators; the total stays within
    dask's ``array.chunk-size``. Always at least 1.
    """
    dt: np.dtype[Any] = np.dtype(dtype)
    per_cell: int = max(ntimes, 1) * nbands * dt.itemsize + 32 * nbands
    if how in _STACKED:  # the float layers (their sorted stack is transient)
        per_cell += max(ntimes, 1) * nbands * _work_dtype(dt).itemsize
    return max(1, _budget() // int(per_cell))


# --- the kernel -------------------------------------------------------------------


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
class _Reducer:
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
        if self.how in _STACKED:
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
        work = _work_dtype(blocks[0].dtype)
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


# --- lazy and eager drivers ---------------------------------------------------------


def _split_sizes(sizes: Sequence[int], limit: int) -> tuple[int, ...]:
    """Split chunk sizes above ``limit`` into pieces of one step (never across chunks).

    The step divides the largest chunk exactly, so regular chunks (all equal
    but a smaller last one) stay regular, as Zarr needs: 1024 with a limit of
    1000 becomes 512 + 512, and a last chunk of 740 becomes 512 + 228.
    """
    largest = max(sizes, default=0)
    if largest <= limit:
        return tuple(sizes)
    parts = math.ceil(largest / max(limit, 1))
    while largest % parts:
        parts += 1
    step = largest // parts
    out: list[int] = []
    for size in sizes:
        out.extend([step] * (size // step) + ([size % step] if size % step else []))
    return tuple(out)


def _tile_shape(height: int, width: int, cells: int) -> tuple[int, int]:
    """The largest ``(rows, cols)`` tile within ``cells``, whole rows first."""
    if height * width <= cells:
        return (max(height, 1), max(width, 1))
    if width <= cells:
        return (max(1, cells // width), width)
    return (1, cells)


def _reduce_lazy(data: Any, kernel: _Reducer, cells: int) -> Any:
    ensure("dask.array")
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if len(data.chunks[1]) > 1:
        data = data.rechunk({1: -1})
    ty, tx = _tile_shape(max(data.chunks[2]), max(data.chunks[3]), cells)
    ychunks, xchunks = _split_sizes(data.chunks[2], ty), _split_sizes(data.chunks[3], tx)
    if (ychunks, xchunks) != tuple(data.chunks[2:]):
        data = data.rechunk({2: ychunks, 3: xchunks})  # only splits: each piece has one parent chunk
    name = f"pyr-reduce-{kernel.how}-" + tokenize(data, kernel)
    ntchunks = len(data.chunks[0])
    dsk: dict[Any, Any] = {}
    for i in range(len(ychunks)):
        for j in range(len(xchunks)):
            dsk[(name, 0, i, j)] = (kernel, [(data.name, t, 0, i, j) for t in range(ntchunks)])
    # Each reduce task is fused with the tasks only it needs (its chunk's reads of every date, the
    # kernels before it): it then reads and reduces in whichever process runs it, and only the
    # reduced chunk travels, never a date's block (the processes scheduler would otherwise return
    # every read chunk to the main process and send it on to the reducing worker).
    whole = {**dict(data.__dask_graph__()), **dsk}
    fused = fuse_exclusive_ancestors(whole, list(dsk))
    graph = HighLevelGraph.from_collections(name, fused, dependencies=[])
    chunks = ((data.shape[1],), ychunks, xchunks)
    return da.Array(graph, name, chunks, meta=np.empty((0, 0, 0), kernel.out_dtype))


def _reduce_eager(data: np.ndarray, kernel: _Reducer, cells: int) -> np.ndarray:
    _, nbands, height, width = data.shape
    ty, tx = _tile_shape(height, width, cells)
    if ty >= height and tx >= width:
        return np.asarray(kernel([data]))
    out = np.empty((nbands, height, width), kernel.out_dtype)
    for r0 in range(0, height, ty):
        for c0 in range(0, width, tx):
            out[:, r0 : r0 + ty, c0 : c0 + tx] = kernel([data[:, :, r0 : r0 + ty, c0 : c0 + tx]])
    return out


@curried
def reduce_time(cube: Cube, how: str | Callable[[np.ndarray], Any] = "mean") -> Raster:
    """Reduce a cube across time, skipping nodata and NaN, in bounded memory.

    Parameters
    ----------
    cube
        The cube, eager or lazy (lazy in, lazy out).
    how
        ``"mean"``, ``"median"``, ``"min"``, ``"max"``, ``"sum"``, ``"std"``
        (population, ddof=0), ``"count"``, or a callable that reduces axis 0
        of a float numpy block ``(time, band, y, x)`` -- float32, or float64
        for float64 and 32/64-bit integer cubes, with NaN where a date has
        no data -- to ``(band, y, x)``, e.g.
        ``lambda a: np.nanpercentile(a, 90, axis=0)``.

    Returns
    -------
    Raster
        On the cube's grid and bands. ``mean``, ``median``, ``sum``, ``std``
        and callables give float32 with nodata NaN, NaN in cells with no
        valid date. ``count`` gives int32 (0 where no date is valid, no
        nodata). ``min``/``max`` keep the cube's dtype and put the cube's
        nodata in cells with no valid date; a float cube without nodata uses
        (and declares) NaN; an integer cube without nodata has every cell
        valid, so only a cube with no dates has empty cells, and it is
        refused.

    Notes
    -----
    Each task reduces one spatial tile over all dates, so memory is bounded
    by the tile size times the number of dates; spatial chunks larger than
    :func:`max_cells` (dask's ``array.chunk-size`` for all dates together)
    are split, never grown. Sums and means accumulate in float64 per tile.

    Examples
    --------
    >>> import numpy as np
    >>> from toolz import pipe
    >>> from pyr import Cube, GeoBox, reduce_time
    >>> gb = GeoBox.from_bounds((0, 0, 20, 10), 10, "EPSG:32631")
    >>> c = Cube(np.array([[[[1, 0]]], [[[3, 0]]], [[[8, 5]]]], "uint16"), gb, nodata=0)
    >>> reduce_time(c, "median").data
    array([[[3., 5.]]], dtype=float32)
    >>> pipe(c, reduce_time(how="count")).data
    array([[[3, 1]]], dtype=int32)
    """
    if not isinstance(cube, Cube):
        raise InvalidArgument(f"reduce_time expects a Cube, not {type(cube).__name__}.")
    if callable(how):
        name, func = "callable", how
    elif isinstance(how, str) and how in HOWS:
        name, func = how, None
    else:
        raise InvalidArgument(f"how={how!r}: expected one of {', '.join(HOWS)} or a callable.")
    dtype = cube.dtype
    out_nodata: float | int | None = math.nan
    out_dtype: np.dtype[Any]
    empty: float | int | None = None
    if name == "count":
        out_dtype, out_nodata = COUNT_DTYPE, None
    elif name in ("min", "max"):
        out_dtype = dtype
        if cube.nodata is not None:
            out_nodata = empty = cube.nodata
        elif dtype.kind == "f":
            out_nodata = empty = math.nan
        elif cube.ntimes == 0:
            raise InvalidArgument(
                f"reduce_time(how={how!r}) of a cube with no dates: every cell is empty, and the "
                f"{dtype} cube has no nodata value to mark that."
            )
        else:
            out_nodata = None
    else:
        out_dtype = np.dtype("float32")
    kernel = _Reducer(how=name, func=func, nodata=cube.nodata, out_dtype=out_dtype, empty=empty)
    cells = max_cells(name, cube.ntimes, cube.count, dtype)
    if is_lazy(cube.data):
        data = _reduce_lazy(cube.data, kernel, cells)
    else:
        data = _reduce_eager(np.asarray(cube.data), kernel, cells)
    return Raster(data, cube.geobox, nodata=out_nodata, bands=cube.bands)
