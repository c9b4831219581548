"""Experiments: pyr with one internal function swapped, to measure a proposed change.

Nothing in ``pyr/`` is edited: the worker process replaces a function of
``pyr.io.zarrio`` before the graph is built (so only the ``threads``
scheduler sees the swap; other schedulers would unpickle the original).
An implementation name ``pyr-1024+direct`` runs ``pyr-1024`` with the
``direct`` experiment applied; several are joined with ``+``.

* ``direct``: ``write_chunk`` / ``read_chunk`` encode (decode) a whole
  Zarr v2 chunk with the array's own compressor in the calling thread and
  write (read) the chunk file directly, instead of going through
  zarr-python's async codec pipeline (``Array.__setitem__`` -> event loop
  -> thread pool). Falls back to zarr for anything but a whole chunk of a
  local v2 array.
* ``cache64``: ``GDAL_CACHEMAX=64`` (MB) in the worker: chunks are read once,
  so GDAL's block cache (5 % of RAM by default) only holds memory.
* ``readN`` (e.g. ``pyr+read2048``): the read-back uses
  ``read_zarr(store, chunks=N)`` instead of the store's own chunks (coarser
  read tasks, docs/cluster-and-cloud.md).
* ``pertaskN`` (e.g. ``pyr+pertask1``): the write graph is built with the
  dask config ``pyr.chunks-per-task`` set to N (1: a task per chunk on a
  cluster too, as before pyr grouped chunk writes there).
* ``v3``: the store is written as Zarr v3 (``zarr_format=3``).
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

_local = threading.local()


def _meta(target: Any, name: str) -> tuple[str, Any, tuple[int, ...], Any, str, str] | None:
    cache = getattr(_local, "meta", None)
    if cache is None:
        cache = _local.meta = {}
    key = (target.url, name)
    if key not in cache:
        import json

        import numcodecs

        root = os.path.join(target.url, name)
        try:
            with open(os.path.join(root, ".zarray")) as f:
                zmeta = json.load(f)
        except (OSError, AttributeError):
            cache[key] = None
            return None
        comp = numcodecs.get_codec(zmeta["compressor"]) if zmeta.get("compressor") else None
        fill = zmeta.get("fill_value")
        cache[key] = (
            root,
            comp,
            tuple(zmeta["chunks"]),
            fill,
            zmeta["dtype"],
            zmeta.get("dimension_separator", "."),
        )
    return cache[key]  # type: ignore[no-any-return]


def _chunk_index(region: tuple[slice, ...], chunks: tuple[int, ...]) -> tuple[int, ...] | None:
    idx = []
    for s, c in zip(region, chunks, strict=True):
        if s.start % c:
            return None
        idx.append(s.start // c)
    return tuple(idx)


def apply(name: str) -> None:
    """Apply the experiments named after ``+`` in the implementation name."""
    for exp in name.split("+")[1:]:
        if exp == "direct":
            _patch_direct()
        elif exp == "cache64":
            os.environ["GDAL_CACHEMAX"] = "64"
        elif exp == "v3" or any(exp.startswith(p) and exp[len(p) :].isdigit() for p in ("read", "pertask")):
            pass  # not swaps: pipelines_pyr applies these (read_zarr chunks, pyr.chunks-per-task, zarr_format=3)
        else:
            raise ValueError(f"unknown experiment {exp!r}")


def _patch_direct() -> None:
    import pyr.io.zarrio as z

    orig_write, orig_read = z.write_chunk, z.read_chunk

    def write_chunk(target: Any, name: str, region: tuple[slice, ...], block: np.ndarray, *rest: Any) -> None:
        m = _meta(target, name) if target.is_local else None
        idx = None if m is None else _chunk_index(region, m[2])
        if m is None or idx is None or m[1] is None:
            orig_write(target, name, region, block, *rest)
            return
        root, comp, chunks, fill, dtype, sep = m
        block = np.asarray(block, dtype=dtype)
        if block.shape != chunks:
            full = np.full(chunks, np.nan if fill == "NaN" else (0 if fill is None else fill), dtype=dtype)
            full[tuple(slice(0, s) for s in block.shape)] = block
            block = full
        with open(os.path.join(root, sep.join(map(str, idx))), "wb") as f:
            f.write(comp.encode(np.ascontiguousarray(block)))

    def read_chunk(target: Any, name: str, region: tuple[slice, ...], *rest: Any) -> np.ndarray:
        m = _meta(target, name) if target.is_local else None
        idx = None if m is None else _chunk_index(region, m[2])
        if m is None or idx is None or m[1] is None:
            return orig_read(target, name, region, *rest)
        root, comp, chunks, _, dtype, sep = m
        try:
            with open(os.path.join(root, sep.join(map(str, idx))), "rb") as f:
                raw = comp.decode(f.read())
        except FileNotFoundError:
            return orig_read(target, name, region, *rest)
        full = np.frombuffer(raw, dtype=dtype).reshape(chunks)
        return full[tuple(slice(0, s.stop - s.start) for s in region)]

    z.write_chunk = write_chunk
    z.read_chunk = read_chunk
