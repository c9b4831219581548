"""The hand-written bounds of :mod:`benchmarks.bounds` with GDAL's tile reads replaced by libdeflate.

Implementation ``bound-libdeflate``: the same pipelines, threads and Zarr
writes as ``bound``, but each window is read by ``os.pread`` of its tiles
(tile index from tifffile, once per file per process), decoded with
imagecodecs' ``deflate_decode`` (libdeflate) / ``zstd_decode`` and undone
predictor (``delta_decode``), in the calling thread. No pyr, no GDAL in the
reads: the bound a native reader can reach on this machine.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

_lock = threading.Lock()
_files: dict[str, Any] = {}


class _Tiles:
    """One single-image tiled TIFF: its descriptor and tile index (from tifffile)."""

    def __init__(self, path: str) -> None:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            self.offsets = np.asarray(page.dataoffsets, dtype=np.int64)
            self.counts = np.asarray(page.databytecounts, dtype=np.int64)
            self.th, self.tw = int(page.tilelength), int(page.tilewidth)
            self.height, self.width = int(page.imagelength), int(page.imagewidth)
            self.dtype = np.dtype(page.dtype)
            self.predictor = int(page.predictor)
            self.compression = int(page.compression)
        self.across = -(-self.width // self.tw)
        self.fd = os.open(path, os.O_RDONLY)

    def tile(self, ty: int, tx: int) -> np.ndarray:
        import imagecodecs

        k = ty * self.across + tx
        data = os.pread(self.fd, int(self.counts[k]), int(self.offsets[k]))
        n = self.th * self.tw * self.dtype.itemsize
        buf = np.empty(n, np.uint8)
        if self.compression == 50000:
            imagecodecs.zstd_decode(data, out=buf)
        else:
            imagecodecs.deflate_decode(data, out=buf)
        a = buf.view(self.dtype).reshape(self.th, self.tw)
        if self.predictor == 2:
            imagecodecs.delta_decode(a, axis=-1, out=a)
        return a

    def read(self, band: int, window: Any, out: np.ndarray | None = None) -> np.ndarray:
        """rasterio's ``read(1, window=..., out=...)`` for the tile-aligned windows the bounds ask for."""
        r0, c0 = int(window.row_off), int(window.col_off)
        r1, c1 = r0 + int(window.height), c0 + int(window.width)
        if out is None:
            out = np.empty((r1 - r0, c1 - c0), self.dtype)
        for ty in range(r0 // self.th, (r1 - 1) // self.th + 1):
            for tx in range(c0 // self.tw, (c1 - 1) // self.tw + 1):
                y0, x0 = ty * self.th, tx * self.tw
                ya, yb, xa, xb = max(r0, y0), min(r1, y0 + self.th), max(c0, x0), min(c1, x0 + self.tw)
                out[ya - r0 : yb - r0, xa - c0 : xb - c0] = self.tile(ty, tx)[ya - y0 : yb - y0, xa - x0 : xb - x0]
        return out


def _handle(path: str) -> _Tiles:
    with _lock:
        tiles = _files.get(path)
        if tiles is None:
            tiles = _files[path] = _Tiles(path)
        return tiles


def install() -> None:
    """Make :mod:`benchmarks.bounds` read through libdeflate in this (worker) process."""
    from benchmarks import bounds

    bounds._handle = _handle
