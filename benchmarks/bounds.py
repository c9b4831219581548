"""Hand-written lower bounds: no dask, no xarray, no pyr; threads, one GDAL handle each.

* ``band1``   (a) tile-aligned rasterio block reads, one handle per thread in a
  ``ThreadPoolExecutor(2)``, rescale, and each chunk encoded with pyr's codec
  and written straight to its Zarr v2 chunk file; read back the same way.
* ``decode``  (b) GDAL's own multi-threaded decode of the whole band
  (``GDAL_NUM_THREADS=ALL_CPUS``), nothing else.
* ``zarr_write`` (c) the Zarr write alone of an in-memory float32 band (2 threads).
* ``fused``   (d) per spatial chunk, read every date (per-thread handles),
  reduce (mean / median / count, nodata skipped), write the output chunk.
* ``bound-dask`` (implementation, not a pipeline): (a) and (d) with the same
  per-chunk functions, submitted as a plain dask graph (one task per chunk, a
  flat read-back: one task per chunk file and one sum) to whichever scheduler
  the run uses. Its ratio to the bound is what that scheduler costs a
  minimal graph doing this work with one task per 1024 x 1024 chunk.
  ``bound-dask-K``: the same with K chunks per task, one after the other
  (the write and the read-back), so a task holds one chunk at a time.

The Zarr metadata is created with zarr-python (same codec, chunks, fill) so
the stores are ordinary Zarr v2 arrays; only the chunk bytes bypass it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial
from typing import Any

import numpy as np

from benchmarks.pipelines_common import CHUNK, Job, Steps, checksum, codec, reduce_kernel, rescale_kernel

WORKERS = 2
_local = threading.local()


def _handle(path: str) -> Any:
    """This thread's rasterio dataset for ``path`` (opened once per thread).

    GDAL's block cache is capped first, once per process, as pyr caps it
    (``pyr.io.gdal.context``): every block is read once, so GDAL's default (5 % of
    RAM per process) only held memory, 1.5 GB of the ten-date bounds' peak.
    """
    import rasterio

    from pyr.io.gdal.context import _cap_block_cache

    _cap_block_cache(None)
    cache = getattr(_local, "ds", None)
    if cache is None:
        cache = _local.ds = {}
    ds = cache.get(path)
    if ds is None:
        ds = cache[path] = rasterio.open(path)
    return ds


def _windows(height: int, width: int, chunk: int) -> list[tuple[int, int, int, int, int, int]]:
    return [
        (i, j, r, min(r + chunk, height), c, min(c + chunk, width))
        for i, r in enumerate(range(0, height, chunk))
        for j, c in enumerate(range(0, width, chunk))
    ]


def _create(store: str, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: str, fill: Any) -> str:
    import zarr

    group = zarr.open_group(store, mode="w", zarr_format=2)
    group.create_array("band_data", shape=shape, chunks=chunks, dtype=dtype, fill_value=fill, compressors=codec())
    return os.path.join(store, "band_data")


def _write_chunk(root: str, key: str, block: np.ndarray, chunks: tuple[int, ...], fill: Any, enc: Any) -> None:
    if block.shape != chunks:  # Zarr v2 stores edge chunks padded to the full chunk shape
        full = np.full(chunks, fill, dtype=block.dtype)
        full[tuple(slice(0, s) for s in block.shape)] = block
        block = full
    with open(os.path.join(root, key), "wb") as f:
        f.write(enc.encode(np.ascontiguousarray(block)))


@lru_cache(maxsize=1)
def _enc() -> Any:
    return codec()


def _chunk_sum(root: str, dtype: str, key: str) -> float:
    """Decode one chunk file and sum it, NaN skipped."""
    with open(os.path.join(root, key), "rb") as f:
        raw = _enc().decode(f.read())
    return float(np.nansum(np.frombuffer(raw, dtype=dtype), dtype="float64"))


def _read_back(root: str, keys: Iterable[str], dtype: str) -> float:
    """Decode every chunk file and sum it (NaN skipped), in two threads."""
    with ThreadPoolExecutor(WORKERS) as pool:
        return checksum(sum(pool.map(partial(_chunk_sum, root, dtype), list(keys))))


def _pool_map(func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    # handles live in the pool's threads and close when the threads end with it
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(func, items))


def _band1_chunk(path: str, nodata: Any, root: str, win: tuple[int, int, int, int, int, int]) -> str:
    """Read one tile-aligned window, rescale it, write it as one Zarr chunk; its key."""
    from rasterio.windows import Window

    i, j, r0, r1, c0, c1 = win
    a = _handle(path).read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
    key = f"0.{i}.{j}"
    _write_chunk(root, key, rescale_kernel(a, nodata)[None], (1, CHUNK, CHUNK), np.float32(np.nan), _enc())
    return key


def _band1_open(job: Job) -> tuple[str, str, Any, list[tuple[int, int, int, int, int, int]]]:
    import rasterio

    path = job.paths[0]
    with rasterio.open(path) as ds:
        h, w, nodata = ds.height, ds.width, ds.nodata
    root = _create(os.path.join(job.out, "band1.zarr"), (1, h, w), (1, CHUNK, CHUNK), "float32", float("nan"))
    return path, root, nodata, _windows(h, w, CHUNK)


def band1(job: Job) -> Steps:
    """(a) read -> rescale -> Zarr, one handle per thread; then read back."""
    steps = Steps()
    with steps.step("open"):
        path, root, nodata, windows = _band1_open(job)
    with steps.step("compute_write"):
        keys = _pool_map(partial(_band1_chunk, path, nodata, root), windows)
    with steps.step("read_back"):
        steps.checksum = _read_back(root, keys, "float32")
    return steps


def decode(job: Job) -> Steps:
    """(b) GDAL multi-threaded decode of the whole band, nothing else."""
    import rasterio

    steps = Steps()
    with steps.step("decode"), rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(job.paths[0]) as ds:
        a = ds.read(1)
    steps.checksum = checksum(float(a.sum(dtype="float64")))
    steps.extra["note"] = "checksum of the raw uint16 counts"
    return steps


def zarr_write(job: Job) -> Steps:
    """(c) the Zarr write alone: an in-memory float32 band, 2 threads, pyr's codec."""
    import rasterio

    steps = Steps()
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"), rasterio.open(job.paths[0]) as ds:
        data = rescale_kernel(ds.read(1), ds.nodata)[None]  # prepared outside the timing
    store = os.path.join(job.out, "write.zarr")
    chunks = (1, CHUNK, CHUNK)
    _, h, w = data.shape
    enc = codec()
    with steps.step("write"):
        root = _create(store, data.shape, chunks, "float32", float("nan"))

        def one(win: tuple[int, int, int, int, int, int]) -> str:
            i, j, r0, r1, c0, c1 = win
            _write_chunk(root, f"0.{i}.{j}", data[:, r0:r1, c0:c1], chunks, np.float32(np.nan), enc)
            return f"0.{i}.{j}"

        keys = _pool_map(one, _windows(h, w, CHUNK))
    with steps.step("read_back"):
        steps.checksum = _read_back(root, keys, "float32")
    return steps


def _fused_chunk(
    paths: tuple[str, ...], how: str, nodata: Any, root: str, win: tuple[int, int, int, int, int, int]
) -> str:
    """Read one window of every date, reduce over time, write the output chunk; its key."""
    from rasterio.windows import Window

    i, j, r0, r1, c0, c1 = win
    window = Window(c0, r0, c1 - c0, r1 - r0)
    stack = np.empty((len(paths), r1 - r0, c1 - c0), dtype="uint16")
    for t, p in enumerate(paths):
        _handle(p).read(1, window=window, out=stack[t])
    key = f"0.{i}.{j}"
    fill = np.int32(0) if how == "count" else np.float32(np.nan)
    _write_chunk(root, key, reduce_kernel(stack, how, nodata)[None], (1, CHUNK, CHUNK), fill, _enc())
    return key


def _fused_open(job: Job) -> tuple[str, Any, list[tuple[int, int, int, int, int, int]], str]:
    import rasterio

    with rasterio.open(job.paths[0]) as ds:
        h, w, nodata = ds.height, ds.width, ds.nodata
    dtype = "int32" if job.pipeline == "count" else "float32"
    fill: Any = 0 if job.pipeline == "count" else float("nan")
    root = _create(os.path.join(job.out, f"{job.pipeline}.zarr"), (1, h, w), (1, CHUNK, CHUNK), dtype, fill)
    return root, nodata, _windows(h, w, CHUNK), dtype


def fused(job: Job) -> Steps:
    """(d) per spatial chunk: read all dates, reduce, write the output chunk."""
    steps = Steps()
    with steps.step("open"):
        root, nodata, windows, dtype = _fused_open(job)
    with steps.step("compute_write"):
        keys = _pool_map(partial(_fused_chunk, tuple(job.paths), job.pipeline, nodata, root), windows)
    with steps.step("read_back"):
        steps.checksum = _read_back(root, keys, dtype)
    return steps


def http_read(job: Job) -> Steps:
    """Tile-aligned block reads over HTTP (``/vsicurl/``), one handle per thread, summed."""
    import rasterio
    from rasterio.windows import Window

    url = job.extra["urls"][0]
    steps = Steps()
    with steps.step("open"), rasterio.Env(**job.extra.get("env", {})), rasterio.open(url) as ds:
        h, w = ds.height, ds.width

    def one(win: tuple[int, int, int, int, int, int]) -> float:
        _, _, r0, r1, c0, c1 = win
        with rasterio.Env(**job.extra.get("env", {})):
            a = _handle(url).read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        return float(a.sum(dtype="float64"))

    with steps.step("read"):
        steps.checksum = checksum(sum(_pool_map(one, _windows(h, w, CHUNK))))
    return steps


def _tuned(func: Callable[..., Any], *args: Any) -> Any:
    """``func(*args)`` in a process with the settings pyr gives its own worker processes.

    glibc's malloc thresholds (``pyr._malloc``: distributed's nanny sets a trim
    threshold that turns every chunk buffer into a fresh mmap), Blosc's own
    threads off (they start for every chunk in a process pool's main thread);
    GDAL's block cache is capped where files are opened (:func:`_handle`).
    Without them the graph is slower on ``processes`` and ``distributed``, or
    larger, and the figure would measure those settings rather than the scheduler.
    """
    import numcodecs

    from pyr._malloc import tune_once

    tune_once()
    if numcodecs.blosc.use_threads is None:
        numcodecs.blosc.use_threads = False
    return func(*args)


def _each(func: Callable[..., Any], head: tuple[Any, ...], items: list[Any]) -> list[Any]:
    """``func(*head, item)`` for each item in turn, in a tuned process (one task of ``bound-dask-K``)."""
    return [_tuned(func, *head, item) for item in items]


def _sum_each(root: str, dtype: str, keys: list[str]) -> float:
    """The sum of these chunk files (one read-back task of ``bound-dask[-K]``)."""
    return sum(_each(_chunk_sum, (root, dtype), keys))


def _dask_write_and_read_back(
    job: Job,
    steps: Steps,
    chunk: Callable[[tuple[int, int, int, int, int, int]], str],
    windows: list[Any],
    root: str,
    dtype: str,
) -> Steps:
    """``bound-dask[-K]``: a task per K chunks, then a flat read-back, on dask's current scheduler."""
    import dask

    k = int(job.impl.rsplit("-", 1)[1]) if job.impl.startswith("bound-dask-") else 1
    batches = [windows[i : i + k] for i in range(0, len(windows), k)]
    writes = [dask.delayed(_each, pure=False)(chunk, (), b) for b in batches]
    keys = [f"0.{i}.{j}" for i, j, *_ in windows]
    parts = [dask.delayed(_sum_each, pure=False)(root, dtype, keys[i : i + k]) for i in range(0, len(keys), k)]
    total = dask.delayed(sum)(parts)
    return steps.write_and_read_back(dask.delayed(len)(writes), lambda: checksum(total.compute()))


def band1_dask(job: Job) -> Steps:
    """(a) as a plain dask graph on the run's scheduler."""
    steps = Steps()
    with steps.step("open"):
        path, root, nodata, windows = _band1_open(job)
    return _dask_write_and_read_back(job, steps, partial(_band1_chunk, path, nodata, root), windows, root, "float32")


def fused_dask(job: Job) -> Steps:
    """(d) as a plain dask graph on the run's scheduler."""
    steps = Steps()
    with steps.step("open"):
        root, nodata, windows, dtype = _fused_open(job)
    chunk = partial(_fused_chunk, tuple(job.paths), job.pipeline, nodata, root)
    return _dask_write_and_read_back(job, steps, chunk, windows, root, dtype)


DASK_IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1_dask,
    "mean": fused_dask,
    "median": fused_dask,
    "count": fused_dask,
}

IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1,
    "decode": decode,
    "zarr_write": zarr_write,
    "mean": fused,
    "median": fused,
    "count": fused,
    "http": http_read,
}
