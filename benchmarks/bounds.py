"""Hand-written lower bounds: no dask, no xarray, no pyr; threads, one GDAL handle each.

* ``band1``   (a) tile-aligned rasterio block reads, one handle per thread in a
  ``ThreadPoolExecutor(2)``, rescale, and each chunk encoded with pyr's codec
  and written straight to its Zarr v2 chunk file; read back the same way.
* ``decode``  (b) GDAL's own multi-threaded decode of the whole band
  (``GDAL_NUM_THREADS=ALL_CPUS``), nothing else.
* ``zarr_write`` (c) the Zarr write alone of an in-memory float32 band (2 threads).
* ``fused``   (d) per spatial chunk, read every date (per-thread handles),
  reduce (mean / median / count, nodata skipped), write the output chunk.

The Zarr metadata is created with zarr-python (same codec, chunks, fill) so
the stores are ordinary Zarr v2 arrays; only the chunk bytes bypass it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from benchmarks.pipelines_common import CHUNK, Job, Steps, checksum, codec, reduce_kernel, rescale_kernel

WORKERS = 2
_local = threading.local()


def _handle(path: str) -> Any:
    """This thread's rasterio dataset for ``path`` (opened once per thread)."""
    import rasterio

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


def _read_back(root: str, keys: Iterable[tuple[str, tuple[int, ...]]], dtype: str) -> float:
    """Decode every chunk file and sum it (NaN skipped), in two threads."""
    enc = codec()

    def one(item: tuple[str, tuple[int, ...]]) -> float:
        key, _ = item
        with open(os.path.join(root, key), "rb") as f:
            raw = enc.decode(f.read())
        a = np.frombuffer(raw, dtype=dtype)
        return float(np.nansum(a, dtype="float64"))

    with ThreadPoolExecutor(WORKERS) as pool:
        return checksum(sum(pool.map(one, list(keys))))


def _pool_map(func: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    # handles live in the pool's threads and close when the threads end with it
    with ThreadPoolExecutor(WORKERS) as pool:
        return list(pool.map(func, items))


def band1(job: Job) -> Steps:
    """(a) read -> rescale -> Zarr, one handle per thread; then read back."""
    import rasterio
    from rasterio.windows import Window

    steps = Steps()
    path = job.paths[0]
    store = os.path.join(job.out, "band1.zarr")
    with steps.step("open"):
        with rasterio.open(path) as ds:
            h, w, nodata = ds.height, ds.width, ds.nodata
        chunks = (1, CHUNK, CHUNK)
        root = _create(store, (1, h, w), chunks, "float32", float("nan"))
    enc = codec()

    def one(win: tuple[int, int, int, int, int, int]) -> str:
        i, j, r0, r1, c0, c1 = win
        a = _handle(path).read(1, window=Window(c0, r0, c1 - c0, r1 - r0))
        key = f"0.{i}.{j}"
        _write_chunk(root, key, rescale_kernel(a, nodata)[None], chunks, np.float32(np.nan), enc)
        return key

    with steps.step("compute_write"):
        keys = _pool_map(one, _windows(h, w, CHUNK))
    with steps.step("read_back"):
        steps.checksum = _read_back(root, ((k, chunks) for k in keys), "float32")
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
        steps.checksum = _read_back(root, ((k, chunks) for k in keys), "float32")
    return steps


def fused(job: Job) -> Steps:
    """(d) per spatial chunk: read all dates, reduce, write the output chunk."""
    import rasterio
    from rasterio.windows import Window

    how = job.pipeline
    steps = Steps()
    store = os.path.join(job.out, f"{how}.zarr")
    with steps.step("open"):
        with rasterio.open(job.paths[0]) as ds:
            h, w, nodata = ds.height, ds.width, ds.nodata
        chunks = (1, CHUNK, CHUNK)
        dtype = "int32" if how == "count" else "float32"
        fill: Any = 0 if how == "count" else float("nan")
        root = _create(store, (1, h, w), chunks, dtype, fill)
    enc = codec()
    fill_value = np.int32(0) if how == "count" else np.float32(np.nan)

    def one(win: tuple[int, int, int, int, int, int]) -> str:
        i, j, r0, r1, c0, c1 = win
        window = Window(c0, r0, c1 - c0, r1 - r0)
        stack = np.empty((len(job.paths), r1 - r0, c1 - c0), dtype="uint16")
        for t, p in enumerate(job.paths):
            _handle(p).read(1, window=window, out=stack[t])
        key = f"0.{i}.{j}"
        _write_chunk(root, key, reduce_kernel(stack, how, nodata)[None], chunks, fill_value, enc)
        return key

    with steps.step("compute_write"):
        keys = _pool_map(one, _windows(h, w, CHUNK))
    with steps.step("read_back"):
        steps.checksum = _read_back(root, ((k, chunks) for k in keys), dtype)
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


IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1,
    "decode": decode,
    "zarr_write": zarr_write,
    "mean": fused,
    "median": fused,
    "count": fused,
    "http": http_read,
}
