"""A Sentinel-2 SCL-like quality band for the synthetic series of :mod:`pyr.testing.synth`, from its own clouds.

For each date, :func:`cloud_mask` says which 10 m cells the generator
touched with cloud or cloud shadow (any cloud opacity, any shading), and
:func:`scl_array` classifies the tile at 20 m, as the real scene
classification layer is: 0 no data (outside the swath), 3 cloud shadow, 8
cloud (medium probability), 9 cloud (high probability), 4 clear
(vegetation). A 20 m cell takes the worst class of its four 10 m cells
(cloud over shadow over no data over clear), so masking classes 3, 8, 9 and
10 at 20 m removes every cloud- or shadow-touched 10 m cell.
:func:`make_scl_series` writes them beside the B04 files as
``SCL_<YYYYMMDD>.tif`` (uint8, nodata 0, DEFLATE, tiled, overviews).

Examples
--------
>>> scl = scl_array(128, 0, seed=1)
>>> scl.shape, scl.dtype.name, set(scl.ravel().tolist()) <= {0, 3, 4, 8, 9}
((64, 64), 'uint8', True)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pyr.testing._scene import CRS, RESOLUTION, _check, _Date, _Landscape, _strips, transform_of

__all__ = ["CLOUDY", "cloud_mask", "make_scl_series", "scl_array"]

#: The SCL classes a cloud mask removes: cloud shadow, cloud medium and high probability, thin cirrus.
CLOUDY = (3, 8, 9, 10)
_WORST = np.array([4, 0, 3, 8, 9])  # rank -> class: clear 4 < nodata 0 < shadow 3 < cloud 8 < cloud 9
_RANK = {4: 0, 0: 1, 3: 2, 8: 3, 9: 4}


def _classes(date: _Date, r0: int, r1: int) -> np.ndarray:
    """The 10 m classes of rows ``r0:r1`` (the generator's own cloud and shadow fields)."""
    size = date.land.size
    alpha = date._cloud(r0, r1)
    opac = np.minimum(alpha * 2.2, 1)
    dy, dx = date.shadow
    shade = date._cloud(r0, r1, -dy, -dx)
    out = np.full((r1 - r0, size), 4, np.uint8)
    out[shade > 0] = 3
    out[opac > 0] = 8
    out[opac > 0.35] = 9
    a, b = date.land.edge
    rows = np.arange(r0, r1)[:, None]
    cols = np.arange(size)[None, :]
    out[(rows > a * cols + size + b) & (out == 4)] = 0
    return out


def cloud_mask(size: int, date_index: int, seed: int = 0) -> np.ndarray:
    """Where date ``date_index`` of the series has cloud or cloud shadow at 10 m (``bool``, ``(size, size)``)."""
    _check(size, date_index, seed)
    date = _Date(_Landscape(size, seed), date_index)
    out = np.empty((size, size), bool)
    for r0, r1 in _strips(size):
        c = _classes(date, r0, r1)
        out[r0:r1] = (c == 3) | (c == 8) | (c == 9)
    return out


def scl_array(size: int, date_index: int, seed: int = 0) -> np.ndarray:
    """The 20 m classes of date ``date_index``: ``(ceil(size / 2),) * 2`` uint8 (see the module docstring)."""
    _check(size, date_index, seed)
    date = _Date(_Landscape(size, seed), date_index)
    half = (size + 1) // 2
    rank = np.zeros((half, half), np.uint8)
    lut = np.zeros(10, np.uint8)
    for cls, r in _RANK.items():
        lut[cls] = r
    for r0, r1 in _strips(size):
        c = lut[_classes(date, r0, r1)]
        if size % 2:
            c = np.pad(c, ((0, 0), (0, 1)), mode="edge")
        if (r1 - r0) % 2:
            c = np.pad(c, ((0, 1), (0, 0)), mode="edge")
        blocks = c.reshape(c.shape[0] // 2, 2, half, 2).max(axis=(1, 3))
        rank[r0 // 2 : r0 // 2 + blocks.shape[0]] = blocks
    return _WORST[rank].astype(np.uint8)


def make_scl_series(b04_paths: Sequence[Any], *, size: int, seed: int = 0, block: int = 256) -> list[Path]:
    """Write ``SCL_<YYYYMMDD>.tif`` beside each ``B04_<YYYYMMDD>.tif`` of the series (kept if already there)."""
    import rasterio
    from affine import Affine

    t = transform_of(size)
    profile = {
        "driver": "COG",
        "width": (size + 1) // 2,
        "height": (size + 1) // 2,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": Affine(2 * RESOLUTION, 0.0, t.c, 0.0, -2 * RESOLUTION, t.f),
        "nodata": 0,
        "compress": "DEFLATE",
        "blocksize": max(16, min(block, 512)),
        "overview_resampling": "nearest",
    }
    out = []
    for i, b04 in enumerate(b04_paths):
        path = Path(b04).with_name(Path(b04).name.replace("B04_", "SCL_"))
        tag = f"size={size} date={i} seed={seed} v=1"
        if not _is_current(path, tag):
            part = path.with_name(f".{path.name}.part")
            with rasterio.open(part, "w", **profile) as ds:
                ds.update_tags(PYR_SYNTH_SCL=tag)
                ds.write(scl_array(size, i, seed), 1)
            part.replace(path)
        out.append(path)
    return out


def _is_current(path: Path, tag: str) -> bool:
    import rasterio
    from rasterio.errors import RasterioError

    if not path.is_file():
        return False
    try:
        with rasterio.open(path) as ds:
            return bool(ds.tags().get("PYR_SYNTH_SCL") == tag)
    except (RasterioError, OSError):
        return False
