"""What every implementation shares: the kernels, the codec, timing and checksums.

The kernels are the arithmetic of the pipelines written once in numpy, so the
hand-written bounds, rioxarray and pyramids compute exactly what pyr does:

* ``rescale``: ``(a * 1e-4).clip(0, 1)`` in float32, nodata -> NaN (pyr's ``rescale``).
* ``mean`` / ``median`` / ``count`` over time with nodata skipped; a cell
  with no valid date is NaN (0 for ``count``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCALE = 1e-4
CHUNK = 1024  # the COGs' internal tile size: every implementation reads aligned chunks
REDUCTIONS = ("mean", "median", "count")


def codec() -> Any:
    """pyr's default Zarr v2 compressor (``pyr/io/zarrio.py::_compressor``)."""
    import numcodecs

    return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def rescale_kernel(a: np.ndarray, nodata: float | int | None) -> np.ndarray:
    out = a.astype("float32")
    np.multiply(out, np.float32(SCALE), out=out)
    np.clip(out, np.float32(0), np.float32(1), out=out)
    if nodata is not None:
        out[a == nodata] = np.nan
    return out


def reduce_kernel(a: np.ndarray, how: str, nodata: float | int | None) -> np.ndarray:
    """Reduce axis 0 of ``a`` (time first) skipping ``nodata``; float32 (int32 for count)."""
    valid = np.ones(a.shape, bool) if nodata is None else a != nodata
    n = valid.sum(axis=0)
    if how == "count":
        return n.astype("int32")
    if how == "mean":
        s = a.sum(axis=0, dtype="float64", where=valid)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (s / n).astype("float32")
    if how == "median":
        # time last (contiguous lanes sort faster); integers sort in their own dtype with
        # nodata replaced by the dtype's maximum, so the first n of a lane are its valid values
        if a.dtype.kind in "ui":
            s = np.moveaxis(a, 0, -1).copy()
            s[~np.moveaxis(valid, 0, -1)] = np.iinfo(a.dtype).max
        else:
            s = np.moveaxis(a, 0, -1).astype("float32")
            s[~np.moveaxis(valid, 0, -1)] = np.nan  # NaN sorts last
        s.sort(axis=-1)
        lo = np.take_along_axis(s, np.maximum((n - 1) // 2, 0)[..., None], axis=-1)[..., 0].astype("float32")
        hi = np.take_along_axis(s, np.maximum(n // 2, 0)[..., None], axis=-1)[..., 0].astype("float32")
        out = (lo + hi) * np.float32(0.5)
        out[n == 0] = np.nan
        return out
    raise ValueError(how)


def out_dtype(how: str) -> str:
    return "int32" if how == "count" else "float32"


def checksum(total: float) -> float:
    """A sum, rounded to 7 significant digits (implementations sum in different orders)."""
    if total == 0 or not np.isfinite(total):
        return float(total)
    return float(f"{total:.7g}")


def dask_checksum(arr: Any) -> float:
    """The NaN-skipping float64 sum of a dask or numpy array (the read-back step)."""
    import dask.array as da

    if isinstance(arr, da.Array):
        return checksum(float(da.nansum(arr, dtype="float64").compute()))
    return checksum(float(np.nansum(np.asarray(arr, dtype="float64"))))


@dataclass
class Steps:
    """Per-step wall seconds of one pipeline run, plus what it produced."""

    times: dict[str, float] = field(default_factory=dict)
    checksum: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.times[name] = round(self.times.get(name, 0.0) + time.perf_counter() - t0, 4)

    def write_and_read_back(self, delayed: Any, read_back: Callable[[], float]) -> Steps:
        """The last two steps of every dask pipeline, timed alike for every implementation.

        ``compute_write`` computes the write graph with dask's current scheduler;
        ``read_back`` checksums the store with ``read_back()``.
        """
        import dask

        with self.step("compute_write"):
            dask.compute(delayed)
        with self.step("read_back"):
            self.checksum = read_back()
        return self


@dataclass(frozen=True)
class Job:
    """Everything one run needs; the worker process gets it as JSON."""

    pipeline: str
    impl: str
    scheduler: str
    paths: tuple[str, ...]
    out: str  # a fresh directory for this run's outputs
    nodata: float | int | None
    size: int
    extra: dict[str, Any] = field(default_factory=dict)
