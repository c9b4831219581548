"""The one module that decides between eager (numpy) and lazy (dask) execution.

Everything else in pyr asks here: :func:`is_lazy` says which kind an array
is (without importing dask), :func:`apply` runs a numpy kernel on the whole
array or maps it over dask blocks, :func:`stack` joins arrays along a new
first axis, :func:`as_lazy` wraps numpy for a graph, :func:`to_numpy`
computes. Operations in :mod:`pyr.ops` write one kernel for a numpy block
(:mod:`pyr._blocks` checks its output) and call these, so the lazy and the
eager path run the same code and cannot drift apart.

>>> import numpy as np
>>> is_lazy(np.zeros(3)), chunks(np.zeros(3))
(False, None)
>>> lazy = as_lazy(np.zeros((1, 4, 4)), (1, 2, 2))
>>> is_lazy(lazy), chunks(lazy)
(True, ((1,), (2, 2), (2, 2)))
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyr._blocks import Checked, Kernel
from pyr._imports import ensure

__all__ = ["apply", "as_lazy", "chunks", "is_lazy", "stack", "to_numpy"]


def is_lazy(data: Any) -> bool:
    """Whether ``data`` is a dask array (checked without importing dask)."""
    return type(data).__module__.startswith("dask.") and hasattr(data, "chunks")


def chunks(data: Any) -> tuple[tuple[int, ...], ...] | None:
    """The dask chunks of ``data``, or ``None`` when it is eager."""
    return tuple(tuple(c) for c in data.chunks) if is_lazy(data) else None


def as_lazy(data: Any, chunks: Sequence[Any]) -> Any:
    """``data`` as a dask array: a lazy one as it is, numpy wrapped in ``chunks``."""
    if is_lazy(data):
        return data
    ensure("dask.array")
    import dask.array as da

    return da.from_array(np.asarray(data), chunks=tuple(chunks))


def to_numpy(data: Any) -> np.ndarray:
    """``data`` as a numpy array, computing it (with dask's current scheduler) when lazy."""
    return np.asarray(data.compute() if is_lazy(data) else data)


def stack(arrays: Sequence[Any]) -> Any:
    """Join arrays of one shape along a new first axis.

    All eager: ``numpy.stack``. Any lazy: a dask array in which every input
    takes the chunks of the first lazy one (numpy inputs are wrapped), one
    input per chunk along the new axis.
    """
    lazy = [a for a in arrays if is_lazy(a)]
    if not lazy:
        return np.stack(arrays)
    ensure("dask.array")
    import dask.array as da

    target = lazy[0].chunks
    return da.stack([a.rechunk(target) if is_lazy(a) else as_lazy(a, target) for a in arrays])


def apply(
    func: Kernel,
    arrays: Sequence[Any],
    *,
    dtype: np.dtype[Any],
    out_bands: int,
    depth: int = 0,
    name: str = "pyr-map",
) -> Any:
    """Apply ``func`` to aligned blocks of ``arrays`` (all ``(..., band, y, x)``).

    Eager inputs (all numpy) give ``func(*arrays)``. If any input is lazy, all
    are aligned to the chunks of the first lazy one (each input's band axis
    whole: inputs may have different band counts) and the
    result is a dask array with the same spatial chunks and ``out_bands``
    bands. ``depth`` adds that many halo cells on each spatial side of every
    block (edge blocks get only what exists, as the eager call does). Either
    way ``func``'s output is checked and cast by :class:`pyr._blocks.Checked`.
    """
    func = Checked(func, np.dtype(dtype), out_bands)
    if not any(is_lazy(a) for a in arrays):
        return func(*arrays)

    ensure("dask.array")
    import dask.array as da
    from dask.base import tokenize

    first = next(a for a in arrays if is_lazy(a))
    band_axis = first.ndim - 3

    def aligned(a: Any) -> tuple[Any, ...]:
        # The first lazy input's chunks, with each input's own bands whole (inputs may differ in band count).
        target = list(first.chunks)
        target[band_axis] = (a.shape[band_axis],)
        return tuple(target)

    lazy = [as_lazy(a, aligned(a)).rechunk(aligned(a)) for a in arrays]
    token = tokenize(func, *lazy, dtype, out_bands, depth)
    target = list(lazy[0].chunks)
    target[band_axis] = (out_bands,)
    # A halo never needs to reach further than the array's far edge.
    halo = dict.fromkeys(range(first.ndim), 0)
    for axis in (first.ndim - 2, first.ndim - 1):
        halo[axis] = min(depth, max(first.shape[axis] - 1, 0))
    if any(halo.values()):
        # dask may merge chunks smaller than the halo; the result is rechunked back below.
        lazy = [da.overlap.overlap(a, depth=halo, boundary="none") for a in lazy]
    out_chunks = list(lazy[0].chunks)
    out_chunks[band_axis] = (out_bands,)
    out = da.map_blocks(
        func,
        *lazy,
        dtype=dtype,
        chunks=tuple(out_chunks),
        name=f"{name}-{token}",
        meta=np.empty((0,) * first.ndim, dtype=dtype),
    )
    if any(halo.values()):
        out = da.overlap.trim_internal(out, halo, boundary="none")
        if out.chunks != tuple(target):
            out = out.rechunk(tuple(target))
    return out
