"""The one place that decides between eager (numpy) and lazy (dask) execution.

Operations in :mod:`pyr.ops` write a numpy kernel for one block and call
:func:`apply` here; it either calls the kernel on the whole array or maps it
over dask blocks, so the two paths cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from pyr._imports import ensure
from pyr.errors import InvalidArgument
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


class _Checked:
    """``func`` with its output checked (shape) and cast (dtype): one behaviour on both paths.

    A kernel returning another dtype than declared, or a block of the wrong
    shape, would otherwise give a lazy result that differs from the eager one.
    """

    __slots__ = ("dtype", "func", "out_bands")

    def __init__(self, func: Kernel, dtype: np.dtype[Any], out_bands: int) -> None:
        self.func = func
        self.dtype = dtype
        self.out_bands = out_bands

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        out = np.asarray(self.func(*blocks))
        first = blocks[0]
        lead = first.shape[:-3]
        if (
            out.ndim != first.ndim
            or out.shape[:-3] != lead
            or out.shape[-2:] != first.shape[-2:]
            or (out.shape[-3] != self.out_bands)
        ):
            name = getattr(self.func, "__name__", "func")
            raise InvalidArgument(
                f"map_blocks: {name} returned a block of shape {out.shape} for an input block of shape "
                f"{first.shape}; expected {(*lead, self.out_bands, *first.shape[-2:])} "
                "(pass bands= when the band count changes)."
            )
        return out if out.dtype == self.dtype else out.astype(self.dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Checked, (self.func, self.dtype, self.out_bands))

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return ("pyr._Checked", tokenize(self.func), str(self.dtype), self.out_bands)


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
    func = _Checked(func, np.dtype(dtype), out_bands)
    if not any(is_dask(a) for a in arrays):
        return func(*arrays)

    ensure("dask.array")
    import dask.array as da
    from dask.base import tokenize

    first = next(a for a in arrays if is_dask(a))
    band_axis = first.ndim - 3
    chunks = list(first.chunks)
    chunks[band_axis] = (first.shape[band_axis],)
    lazy = [(a if is_dask(a) else da.from_array(a, chunks=tuple(chunks))).rechunk(tuple(chunks)) for a in arrays]
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
