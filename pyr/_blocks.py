"""The one place that decides between eager (numpy) and lazy (dask) execution.

Operations in :mod:`pyr.ops` write a numpy kernel for one block and call
:func:`apply` here; it either calls the kernel on the whole array or maps it
over dask blocks, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyr.raster import is_dask

__all__ = ["apply", "per_date"]

Kernel = Callable[..., np.ndarray]


def per_date(func: Kernel) -> Kernel:
    """Lift a ``(band, y, x)`` kernel to ``(time, band, y, x)`` blocks, date by date."""

    def kernel(*blocks: np.ndarray) -> np.ndarray:
        outs = [func(*(b[t] for b in blocks)) for t in range(blocks[0].shape[0])]
        if not outs:
            return func(*(b[:1] for b in blocks))[:0]
        return np.stack(outs)

    kernel.__name__ = getattr(func, "__name__", "kernel")
    kernel.__qualname__ = getattr(func, "__qualname__", "kernel")
    return kernel


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
    are aligned to the chunks of the first lazy one (band axis whole) and the
    result is a dask array with the same spatial chunks and ``out_bands``
    bands. ``depth`` adds that many halo cells on each spatial side of every
    block (edge blocks get only what exists, as the eager call does).
    """
    if not any(is_dask(a) for a in arrays):
        out = func(*arrays)
        return np.asarray(out, dtype=dtype) if out.dtype != dtype else out

    import dask.array as da
    from dask.base import tokenize

    first = next(a for a in arrays if is_dask(a))
    band_axis = first.ndim - 3
    chunks = list(first.chunks)
    chunks[band_axis] = (first.shape[band_axis],)
    lazy = [(a if is_dask(a) else da.from_array(a, chunks=tuple(chunks))).rechunk(tuple(chunks)) for a in arrays]
    token = tokenize(func, *lazy, dtype, out_bands, depth)
    if depth:
        halo = dict.fromkeys(range(first.ndim), 0)
        halo[first.ndim - 2] = halo[first.ndim - 1] = depth
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
    if depth:
        out = da.overlap.trim_internal(out, halo, boundary="none")
    return out
