"""Helpers that write small GeoTIFFs with plain rasterio, for tests of ``pyr.read``.

Expected values in tests come from the arrays given here (or from plain
rasterio reads), never from pyr itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

from pyr.geobox import GeoBox

DEFAULT_GEOBOX = GeoBox((50, 70), Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0), "EPSG:32631")


def write_tif(
    path: Path | str,
    data: np.ndarray,
    *,
    geobox: GeoBox | None = None,
    nodata: float | int | None = None,
    tiled: bool = True,
    block: tuple[int, int] = (16, 16),
    descriptions: Sequence[str | None] | None = None,
    overviews: Sequence[int] = (),
    compress: str | None = "deflate",
    **extra: Any,
) -> Path:
    """Write ``data`` (``(band, y, x)``) as a GeoTIFF and return its path.

    ``block`` is ``(y, x)`` for tiled files (multiples of 16); for striped
    files only its ``y`` (rows per strip) is used.
    """
    path = Path(path)
    gb = geobox if geobox is not None else GeoBox(data.shape[1:], DEFAULT_GEOBOX.transform, DEFAULT_GEOBOX.crs)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "height": data.shape[1],
        "width": data.shape[2],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": gb.transform,
        "crs": gb.crs,
        "nodata": nodata,
    }
    if compress:
        profile["compress"] = compress
    if tiled:
        profile.update(tiled=True, blockysize=block[0], blockxsize=block[1])
    else:
        profile.update(tiled=False, blockysize=block[0])
    profile.update(extra)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        if descriptions is not None:
            for i, d in enumerate(descriptions, start=1):
                if d is not None:
                    dst.set_band_description(i, d)
        if overviews:
            dst.build_overviews(list(overviews), rasterio.enums.Resampling.nearest)
    return path


def read_plain(path: Path | str, **kwargs: Any) -> np.ndarray:
    """Read every band with plain rasterio (the independent reference)."""
    with rasterio.open(path, **kwargs) as src:
        return src.read()
