"""Whole-chunk I/O for local Zarr v2 arrays, in the calling thread.

zarr-python 3 runs every ``array[region] = block`` through its event loop
and codec thread pool; for pyr's writes (each task writes exactly one whole
chunk) that hand-off cost 0.6 s of a 2.3 s one-band pipeline at full size
(docs/benchmarks.md). Here a task encodes its chunk with the array's own
compressor and writes the chunk file itself (atomically: temporary file,
then rename); reads decode the chunk file directly. The bytes are those
zarr-python writes (tests/test_zarr_direct.py checks it), so every Zarr
reader sees the same store. Anything else (v3, remote stores, filters,
regions that are not one chunk, missing chunk files) goes through
zarr-python.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from typing import Any

import attrs
import numpy as np

from pyr._cache import ThreadCache

__all__ = ["read_region", "write_region"]

_FILES = ThreadCache(maxsize=32)


@attrs.frozen
class ChunkFiles:
    """How one local v2 array stores its chunks."""

    root: str
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill: Any
    compressor: Any
    separator: str

    def path(self, region: tuple[slice, ...], shape: tuple[int, ...]) -> str | None:
        """The chunk file holding exactly ``region`` (``None`` if it is not one chunk)."""
        index = []
        for s, c, n in zip(region, self.chunks, shape, strict=True):
            if s.start % c or s.stop - s.start != min(c, n - s.start):
                return None
            index.append(str(s.start // c))
        return os.path.join(self.root, self.separator.join(index))


def _locate(url: str, name: str, region: tuple[slice, ...], fingerprint: str) -> tuple[ChunkFiles, str] | None:
    """The array's chunk layout and the file of ``region``, when it is one chunk of a local v2 array."""
    found: tuple[ChunkFiles, tuple[int, ...]] | None = _FILES.get(
        (url, name, fingerprint), lambda: _load(os.path.join(url, name))
    )
    if found is None:
        return None
    files, shape = found
    path = files.path(region, shape)
    return None if path is None else (files, path)


def _load(root: str) -> tuple[ChunkFiles, tuple[int, ...]] | None:
    try:
        with open(os.path.join(root, ".zarray")) as f:
            meta = json.load(f)
    except (OSError, ValueError):
        return None  # not a local v2 array
    if meta.get("filters") or meta.get("order", "C") != "C" or not meta.get("compressor"):
        return None
    import numcodecs

    dtype = np.dtype(meta["dtype"])
    fill = meta.get("fill_value")
    if isinstance(fill, str):  # "NaN", "Infinity", "-Infinity"
        fill = float(fill.replace("Infinity", "inf"))
    _single_threaded_blosc()
    files = ChunkFiles(
        root=root,
        chunks=tuple(meta["chunks"]),
        dtype=dtype,
        fill=0 if fill is None else fill,
        compressor=numcodecs.get_codec(meta["compressor"]),
        separator=meta.get("dimension_separator", "."),
    )
    return files, tuple(meta["shape"])


def _single_threaded_blosc() -> None:
    """Let Blosc use its own threads no more, unless the user chose (``numcodecs.blosc.use_threads``).

    Left at its default (``None``), Blosc starts its own threads for every
    chunk encoded or decoded in a process's main thread: that is where dask's
    processes scheduler runs tasks, so two worker processes ran four busy
    threads on two cores (one band on two processes, 4 runs: 1.7-1.85 CPU-s per
    worker with Blosc's threads, 1.45-1.5 without). pyr already encodes one chunk
    per task in parallel, so intra-chunk threads only compete with that.
    """
    from numcodecs import blosc

    if blosc.use_threads is None:
        blosc.use_threads = False


def write_region(url: str, name: str, region: tuple[slice, ...], block: np.ndarray, fingerprint: str) -> bool:
    """Write ``block`` as one whole chunk; ``False`` when this path does not apply."""
    located = _locate(url, name, region, fingerprint)
    if located is None:
        return False
    files, path = located
    data = np.asarray(block, dtype=files.dtype)
    if data.shape != files.chunks:  # an edge chunk: v2 stores it padded with the fill value
        full = np.full(files.chunks, files.fill, dtype=files.dtype)
        full[tuple(slice(0, n) for n in data.shape)] = data
        data = full
    encoded = files.compressor.encode(np.ascontiguousarray(data))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    with open(tmp, "wb") as f:
        f.write(encoded)
    os.replace(tmp, path)
    return True


def read_region(url: str, name: str, region: tuple[slice, ...], fingerprint: str) -> np.ndarray | None:
    """Read one whole chunk; ``None`` when this path does not apply (or the chunk is missing).

    The chunk is decoded straight into the array that is returned, and the
    compressed bytes go through a buffer this thread reuses: one fresh
    allocation per chunk instead of three: fresh pages are much of what a
    chunk read costs where the allocator hands large buffers back to the OS
    (see pyr/_malloc.py).
    """
    located = _locate(url, name, region, fingerprint)
    if located is None:
        return None
    files, path = located
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            raw = _read_buffer(size)
            got = 0
            while got < size and (n := f.readinto(raw[got:])):
                got += n
    except FileNotFoundError:
        return None
    full = np.empty(files.chunks, dtype=files.dtype)
    files.compressor.decode(raw[:got], out=full)
    if all(s.stop - s.start == c for s, c in zip(region, files.chunks, strict=True)):
        return full
    return full[tuple(slice(0, s.stop - s.start) for s in region)].copy()  # an edge chunk: drop the padding


_BUFFERS = threading.local()


def _read_buffer(size: int) -> memoryview:
    """A writable buffer of at least ``size`` bytes, reused by this thread."""
    buf: bytearray | None = getattr(_BUFFERS, "buf", None)
    if buf is None or len(buf) < size:
        buf = _BUFFERS.buf = bytearray(max(size, 1 << 20))
    return memoryview(buf)[:size]
