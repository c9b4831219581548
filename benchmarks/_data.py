"""The benchmark input: a cached series of Sentinel-2-like B04 COGs.

Uses ``pyr.testing.synth.make_series`` when it exists; until then (or when it fails)
a private generator writes the same kind of files: uint16 reflectance counts
with spatial structure and sensor-like noise, nodata 0 in a corner wedge,
DEFLATE, internal tiles of ``block`` pixels and overviews.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CACHE = Path(__file__).resolve().parent / ".cache"


def _private_series(out_dir: Path, *, size: int, dates: int, seed: int, block: int) -> list[str]:
    import rasterio
    from rasterio.transform import from_origin

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = np.random.default_rng(seed)
    yy, xx = np.ogrid[:size, :size]
    base = (1500 + 800 * np.sin(xx / 97.0) * np.cos(yy / 131.0)).astype("float32")
    wedge = (xx + yy) < size // 6  # nodata corner, as at a swath edge
    for d in range(dates):
        path = out_dir / f"T31UFQ_2024{d + 1:02d}01_B04.tif"
        paths.append(str(path))
        if path.exists():
            continue
        noise = rng.normal(0, 300, (size, size)).astype("float32")
        a = np.clip(base * (0.8 + 0.04 * d) + noise, 1, 12000).astype("uint16")
        a[wedge] = 0
        tmp = path.with_suffix(".tmp.tif")
        profile = {
            "driver": "COG",
            "width": size,
            "height": size,
            "count": 1,
            "dtype": "uint16",
            "crs": "EPSG:32631",
            "transform": from_origin(600000, 5700000, 10, 10),
            "nodata": 0,
            "compress": "DEFLATE",
            "blocksize": block,
            "overviews": "AUTO",
        }
        with rasterio.open(tmp, "w", **profile) as dst:
            dst.write(a, 1)
        os.replace(tmp, path)
    return paths


def series(*, size: int, dates: int, seed: int = 0, block: int = 1024) -> tuple[list[str], str]:
    """Paths of the cached series and which generator made them."""
    try:
        from pyr.testing.synth import make_series  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        make_series = None
    if make_series is not None:
        out = CACHE / f"synth-{size}-{dates}-{seed}-{block}"
        return [str(p) for p in make_series(out, size=size, dates=dates, seed=seed, block=block)], "pyr.testing.synth"
    out = CACHE / f"private-{size}-{dates}-{seed}-{block}"
    return _private_series(out, size=size, dates=dates, seed=seed, block=block), "benchmarks._data (private)"
