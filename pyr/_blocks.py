"""Kernels on numpy blocks: lifting a raster kernel to cubes, checking what a kernel returns.

Nothing here knows about dask; :func:`pyr._lazy.apply` runs these kernels
on a whole numpy array or on every dask block.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyr._imports import ensure
from pyr.errors import InvalidArgument

__all__ = ["Checked", "Kernel", "per_date"]

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


class Checked:
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
        return (Checked, (self.func, self.dtype, self.out_bands))

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return ("pyr._Checked", tokenize(self.func), str(self.dtype), self.out_bands)
