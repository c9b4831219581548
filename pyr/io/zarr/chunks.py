"""Whole-chunk I/O for local Zarr v2 and v3 arrays, in the calling thread.

zarr-python 3 runs every ``array[region] = block`` through its event loop
and codec thread pool; for pyr's writes (each task writes exactly one whole
chunk) that hand-off costs a large share of a write (docs/benchmarks.md).
Here a task encodes its chunk with the array's own
compressor and writes the chunk file itself (atomically: temporary file,
then rename); reads decode the chunk file directly. The bytes are those
zarr-python writes (tests/test_zarr_direct.py checks it), so every Zarr
reader sees the same store. A region made of several whole chunks (a dask
chunk larger than the Zarr chunks, as ``read_zarr(store, chunks=4096)`` or
a cube chunk of several dates) is read or written chunk by chunk the same
way. A v3 array qualifies when its codecs are ``bytes`` followed by at most
one of ``blosc``, ``zstd`` or ``gzip`` (what pyr writes: the same numcodecs
codecs zarr-python runs) on a regular chunk grid; uncompressed chunks are
plain bytes in either format. Anything else (remote stores, filters,
sharding, transposes, regions that cut through a chunk, a missing chunk
file when the region is one chunk) goes through zarr-python.
"""

from __future__ import annotations

import json
import os
import threading
from itertools import product
from typing import Any

import attrs
import numpy as np

from pyr._cache import ThreadCache
from pyr.errors import ReadError
from pyr.io.storage.base import Storage
from pyr.io.storage.local import put_file

__all__ = ["chunk_layout", "put_file", "read_region", "write_1d", "write_region"]

_FILES = ThreadCache(maxsize=32)


@attrs.frozen
class ChunkFiles:
    """How one local v2 array stores its chunks."""

    root: str
    chunks: tuple[int, ...]
    dtype: np.dtype[Any]
    fill: Any
    compressor: Any  # a numcodecs codec, or None: chunk files are the raw bytes
    separator: str
    prefix: str = ""  # v3's default chunk keys start with "c" ("c/0/1/2")

    def pieces(self, region: tuple[slice, ...], shape: tuple[int, ...]) -> list[tuple[tuple[slice, ...], str]] | None:
        """The chunks that make up ``region``: each one's slice of the region and its file.

        ``None`` unless the region starts on a chunk boundary on every axis
        and ends on one or at the array's edge (whole chunks only).
        """
        axes = []
        for s, c, n in zip(region, self.chunks, shape, strict=True):
            if s.start % c or s.stop <= s.start or (s.stop % c and s.stop != n):
                return None
            axes.append(
                [(str(o // c), slice(o - s.start, min(o + c, s.stop) - s.start)) for o in range(s.start, s.stop, c)]
            )
        return [
            (tuple(sl for _, sl in combo), os.path.join(self.root, self.key(i for i, _ in combo)))
            for combo in product(*axes)
        ]

    def key(self, index: Any) -> str:
        """The store key of the chunk at ``index`` (chunk numbers as text), relative to the array."""
        return self.separator.join((self.prefix, *index) if self.prefix else tuple(index))


def _pieces(
    url: str, name: str, region: tuple[slice, ...], fingerprint: str
) -> tuple[ChunkFiles, list[tuple[tuple[slice, ...], str]]] | None:
    """The array's chunk layout and the whole chunks making up ``region``, for a local array this module reads."""
    found: tuple[ChunkFiles, tuple[int, ...]] | None = _FILES.get(
        (url, name, fingerprint), lambda: _load(os.path.join(url, name))
    )
    if found is None:
        return None
    files, shape = found
    pieces = files.pieces(region, shape)
    return None if pieces is None else (files, pieces)


def _load(root: str) -> tuple[ChunkFiles, tuple[int, ...]] | None:
    """The chunk layout of the local array at ``root``; ``None`` when this module cannot handle it."""
    for name, parse in ((".zarray", _load_v2), ("zarr.json", _load_v3)):
        try:
            with open(os.path.join(root, name)) as f:
                meta = json.load(f)
        except FileNotFoundError:
            continue
        except (OSError, ValueError):
            return None
        try:
            return parse(root, meta)
        except (KeyError, TypeError, ValueError):  # a layout this module does not know: zarr-python reads it
            return None
    return None


def _load_v2(root: str, meta: dict[str, Any]) -> tuple[ChunkFiles, tuple[int, ...]] | None:
    if meta.get("filters") or meta.get("order", "C") != "C":
        return None
    import numcodecs

    compressor = meta.get("compressor")
    files = ChunkFiles(
        root=root,
        chunks=tuple(meta["chunks"]),
        dtype=np.dtype(meta["dtype"]),
        fill=_fill(meta.get("fill_value")),
        compressor=None if compressor is None else numcodecs.get_codec(compressor),
        separator=meta.get("dimension_separator", "."),
    )
    _single_threaded_blosc()
    return files, tuple(meta["shape"])


# zarr v3 data types that are one numpy dtype, and v3 codecs that are one numcodecs codec
_V3_TYPES = {
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "complex64", "complex128",
}  # fmt: skip
_BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


def _load_v3(root: str, meta: dict[str, Any]) -> tuple[ChunkFiles, tuple[int, ...]] | None:
    if meta.get("node_type") != "array" or meta.get("storage_transformers"):
        return None
    grid, keys = meta["chunk_grid"], meta["chunk_key_encoding"]
    if grid["name"] != "regular" or meta["data_type"] not in _V3_TYPES:
        return None
    codecs = meta["codecs"]
    if not codecs or codecs[0]["name"] != "bytes" or len(codecs) > 2:
        return None
    dtype = np.dtype(meta["data_type"])
    endian = codecs[0].get("configuration", {}).get("endian", "little")
    dtype = dtype.newbyteorder("<" if endian == "little" else ">") if dtype.itemsize > 1 else dtype
    compressor = None if len(codecs) == 1 else _v3_codec(codecs[1], dtype)
    if len(codecs) == 2 and compressor is None:
        return None
    separator = keys.get("configuration", {}).get("separator", "/" if keys["name"] == "default" else ".")
    files = ChunkFiles(
        root=root,
        chunks=tuple(grid["configuration"]["chunk_shape"]),
        dtype=dtype,
        fill=_fill(meta["fill_value"]),
        compressor=compressor,
        separator=separator,
        prefix="c" if keys["name"] == "default" else "",
    )
    _single_threaded_blosc()
    return files, tuple(meta["shape"])


def _v3_codec(codec: dict[str, Any], dtype: np.dtype[Any]) -> Any:
    """The numcodecs codec zarr-python runs for a v3 ``codec`` entry; ``None`` for any other."""
    import numcodecs

    name, cfg = codec["name"], codec.get("configuration", {})
    if name == "blosc" and cfg.get("typesize", dtype.itemsize) == dtype.itemsize:
        shuffle = _BLOSC_SHUFFLE[cfg["shuffle"]]
        return numcodecs.Blosc(cname=cfg["cname"], clevel=cfg["clevel"], shuffle=shuffle, blocksize=cfg["blocksize"])
    if name == "zstd":
        return numcodecs.Zstd(level=cfg["level"], checksum=cfg.get("checksum", False))
    if name == "gzip":
        return numcodecs.GZip(level=cfg["level"])
    return None


def _fill(value: Any) -> Any:
    """A Zarr fill value as numpy takes it (v2 and v3 write NaN and infinities as text)."""
    if value is None:
        return 0
    if isinstance(value, str):
        if value not in ("NaN", "Infinity", "-Infinity"):
            raise ValueError(value)  # v3's hex-encoded floats and the like: zarr-python reads those
        return float(value.replace("Infinity", "inf"))
    if isinstance(value, list):  # a complex number
        return complex(*(_fill(v) for v in value))
    return value


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
    """Write ``block`` as one or several whole chunks; ``False`` when this path does not apply."""
    located = _pieces(url, name, region, fingerprint)
    if located is None:
        return False
    files, pieces = located
    data = np.asarray(block, dtype=files.dtype)
    for sub, path in pieces:
        _write_chunk(files, path, data[sub])
    return True


def _write_chunk(files: ChunkFiles, path: str, data: np.ndarray) -> None:
    if data.shape != files.chunks:  # an edge chunk: v2 stores it padded with the fill value
        full = np.full(files.chunks, files.fill, dtype=files.dtype)
        full[tuple(slice(0, n) for n in data.shape)] = data
        data = full
    data = np.ascontiguousarray(data)
    put_file(path, data.data if files.compressor is None else files.compressor.encode(data))


def chunk_layout(meta: dict[str, Any]) -> ChunkFiles | None:
    """The chunk layout of an array from its parsed metadata (``.zarray`` or ``zarr.json``), keys relative to it."""
    parse = _load_v3 if meta.get("zarr_format") == 3 else _load_v2
    try:
        found = parse("", meta)
    except (KeyError, TypeError, ValueError):
        return None
    return None if found is None else found[0]


def write_1d(storage: Storage, name: str, meta: dict[str, Any], start: int, values: np.ndarray) -> bool:
    """Write ``values`` at ``start`` of the 1-D array ``name`` (whose metadata is ``meta``) in ``storage``.

    Each chunk touched is read, changed and put whole (an atomic put), so
    the values before ``start`` stay readable throughout; the array's shape
    is not changed. ``False`` when this module cannot encode the array.
    """
    files = chunk_layout(meta)
    if files is None or len(files.chunks) != 1:
        return False
    (c,) = files.chunks
    for i in range(start // c, (start + len(values) - 1) // c + 1):
        key = f"{name}/{files.key([str(i)])}"
        chunk = np.full(c, files.fill, dtype=files.dtype)
        raw = storage.get(key)
        if raw is not None:
            chunk[...] = _decode_bytes(files, raw)
        lo, hi = max(start, i * c), min(start + len(values), (i + 1) * c)
        chunk[lo - i * c : hi - i * c] = values[lo - start : hi - start]
        storage.put(key, bytes(chunk.data if files.compressor is None else files.compressor.encode(chunk)))
    return True


def _decode_bytes(files: ChunkFiles, raw: bytes) -> np.ndarray:
    if files.compressor is None:
        return np.frombuffer(raw, dtype=files.dtype).reshape(files.chunks)
    out = np.empty(files.chunks, dtype=files.dtype)
    files.compressor.decode(raw, out=out)
    return out


def read_region(url: str, name: str, region: tuple[slice, ...], fingerprint: str) -> np.ndarray | None:
    """Read one or several whole chunks; ``None`` when this path does not apply (or one chunk is missing).

    A single chunk is decoded straight into the array that is returned, and
    the compressed bytes go through a buffer this thread reuses: one fresh
    allocation per chunk instead of three: fresh pages are much of what a
    chunk read costs where the allocator hands large buffers back to the OS
    (see pyr/_malloc.py). Several chunks are decoded one by one straight into
    their place where that place is one run of memory, else into a chunk
    buffer this thread reuses and copied into place; a missing chunk file is
    the fill value there (what zarr-python reads).
    """
    located = _pieces(url, name, region, fingerprint)
    if located is None:
        return None
    files, pieces = located
    if len(pieces) == 1:
        path = pieces[0][1]
        full = np.empty(files.chunks, dtype=files.dtype)
        if not _decode_file(files, path, full):
            return None
        if all(s.stop - s.start == c for s, c in zip(region, files.chunks, strict=True)):
            return full
        return full[tuple(slice(0, s.stop - s.start) for s in region)].copy()  # an edge chunk: drop the padding
    out = np.empty(tuple(s.stop - s.start for s in region), dtype=files.dtype)
    for sub, path in pieces:
        part = out[sub]
        # a whole chunk that is one run of memory in the output (chunks several dates deep, or
        # stacked rows of full-width chunks) is decoded in place; any other through the buffer
        in_place = part.shape == files.chunks and part.flags.c_contiguous
        into = part if in_place else _chunk_buffer(files)
        if not _decode_file(files, path, into):
            part[...] = files.fill
        elif not in_place:
            part[...] = into[tuple(slice(0, n) for n in part.shape)]
    return out


def _decode_file(files: ChunkFiles, path: str, into: np.ndarray) -> bool:
    """Decode the chunk file at ``path`` into ``into`` (a whole chunk); ``False`` if there is no file."""
    try:
        with open(path, "rb", buffering=0) as f:
            size = os.fstat(f.fileno()).st_size
            # an uncompressed chunk is read straight into place; a compressed one into a reused buffer
            raw = into.reshape(-1).view(np.uint8).data if files.compressor is None else _read_buffer(size)
            if files.compressor is None and size != into.nbytes:
                raise ReadError(f"{path!r}: {size} bytes, expected {into.nbytes} for an uncompressed chunk.")
            got = 0
            while got < size and (n := f.readinto(raw[got:size])):
                got += n
    except FileNotFoundError:
        return False
    if files.compressor is not None:
        files.compressor.decode(raw[:got], out=into)
    return True


def _chunk_buffer(files: ChunkFiles) -> np.ndarray:
    """A whole-chunk array of ``files``' shape and dtype, reused by this thread."""
    buf: np.ndarray | None = getattr(_BUFFERS, "chunk", None)
    if buf is None or buf.shape != files.chunks or buf.dtype != files.dtype:
        buf = _BUFFERS.chunk = np.empty(files.chunks, dtype=files.dtype)
    return buf


_BUFFERS = threading.local()


def _read_buffer(size: int) -> memoryview:
    """A writable buffer of at least ``size`` bytes, reused by this thread."""
    buf: bytearray | None = getattr(_BUFFERS, "buf", None)
    if buf is None or len(buf) < size:
        buf = _BUFFERS.buf = bytearray(max(size, 1 << 20))
    return memoryview(buf)[:size]
