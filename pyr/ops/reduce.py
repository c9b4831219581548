"""``reduce_time``: reduce a cube across its dates, skipping nodata, in bounded memory.

One numpy kernel (:class:`pyr.ops._reducer.Reducer`) reduces the dates of
one spatial tile.

Lazily, one task per spatial chunk reduces the blocks of all the dates of
that chunk (no rechunk of the time axis, no whole-cube array in any
process). Each such task is fused with the tasks that only it needs (the
reads of its chunk, the kernels applied to them), so it computes its inputs
where it runs and returns only the reduced chunk: on the processes
scheduler or a cluster, no date's block travels between processes.
Eagerly, the same kernel runs tile by tile over the numpy cube. Both paths cut the grid into tiles of at most
:func:`max_cells` cells, the most that fit dask's ``array.chunk-size`` for
all dates together (spatial chunks that are larger are split, never
grown), so lazy and eager results are identical and memory stays bounded by
the chunk size whatever the cube's size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyr._curry import curried
from pyr._fuse import fuse_exclusive_ancestors
from pyr._imports import ensure
from pyr._lazy import is_lazy
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.ops._reducer import COUNT_DTYPE, STACKED, Reducer, work_dtype
from pyr.raster import Raster

__all__ = ["HOWS", "max_cells", "reduce_time"]

HOWS = ("mean", "median", "min", "max", "sum", "std", "count")


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
    if how in STACKED:  # the float layers (their sorted stack is transient)
        per_cell += max(ntimes, 1) * nbands * work_dtype(dt).itemsize
    return max(1, _budget() // int(per_cell))


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


def _reduce_lazy(data: Any, kernel: Reducer, cells: int) -> Any:
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


def _reduce_eager(data: np.ndarray, kernel: Reducer, cells: int) -> np.ndarray:
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
    kernel = Reducer(how=name, func=func, nodata=cube.nodata, out_dtype=out_dtype, empty=empty)
    cells = max_cells(name, cube.ntimes, cube.count, dtype)
    if is_lazy(cube.data):
        data = _reduce_lazy(cube.data, kernel, cells)
    else:
        data = _reduce_eager(np.asarray(cube.data), kernel, cells)
    # A mean, median, min or max is in the input's units, so its factors still apply; other reductions are not.
    keep = name in _SAME_UNITS
    return Raster(
        data,
        cube.geobox,
        nodata=out_nodata,
        bands=cube.bands,
        scales=cube.scales if keep else None,
        offsets=cube.offsets if keep else None,
    )


#: Reductions whose result is in the units of their input (``raw * scale + offset`` still applies).
_SAME_UNITS = frozenset({"mean", "median", "min", "max"})
