"""STAC items for raster files: what a catalogue would publish for them, read from the files themselves.

:func:`stac_item` opens each file with rasterio and writes a STAC 1.0 item
(a plain dict) with the projection extension (``proj:code`` or ``proj:epsg``,
``proj:shape``, ``proj:transform``, per asset) and the raster extension
(``raster:bands``: ``data_type``, ``nodata``, ``scale``, ``offset``), its
geometry and bbox the first asset's footprint in EPSG:4326. The hrefs may
differ from the files (e.g. the URLs a server publishes them at).

Examples
--------
>>> import tempfile, numpy as np
>>> from pyr import GeoBox, Raster, write_tiff
>>> path = tempfile.mkdtemp() + "/b04.tif"
>>> grid = GeoBox.from_bounds((0, 0, 40, 40), 10, "EPSG:32631")
>>> write_tiff(Raster(np.ones((1, 4, 4), "uint16"), grid, nodata=0), path)
>>> item = stac_item("s1", "2024-06-01T10:30:00Z", {"red": path})
>>> item["assets"]["red"]["proj:shape"], item["assets"]["red"]["raster:bands"][0]["data_type"]
([4, 4], 'uint16')
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["PROJ_SCHEMA", "RASTER_SCHEMA", "stac_item"]

PROJ_SCHEMA = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
RASTER_SCHEMA = "https://stac-extensions.github.io/raster/v1.1.0/schema.json"


def _number(value: float | int) -> float | int | str:
    """A nodata value as the raster extension writes it (``"nan"`` for NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return int(value) if float(value).is_integer() else float(value)


def _asset(
    path: Any, href: str, *, proj: bool, epsg_field: bool, factors: tuple[float, float] | None, nodata: Any
) -> dict[str, Any]:
    import rasterio

    with rasterio.open(path) as ds:
        band: dict[str, Any] = {"data_type": ds.dtypes[0]}
        nodata = ds.nodata if nodata is None else nodata
        if nodata is not None:
            band["nodata"] = _number(nodata)
        scale, offset = factors if factors is not None else (ds.scales[0], ds.offsets[0])
        if (scale, offset) != (1.0, 0.0):
            band["scale"], band["offset"] = scale, offset
        out: dict[str, Any] = {"href": href, "type": "image/tiff; application=geotiff", "roles": ["data"]}
        if proj and ds.crs is not None:
            epsg = ds.crs.to_epsg()
            if epsg is not None and epsg_field:
                out["proj:epsg"] = epsg
            elif epsg is not None:
                out["proj:code"] = f"EPSG:{epsg}"
            else:
                out["proj:wkt2"] = ds.crs.to_wkt()
            out["proj:shape"] = [ds.height, ds.width]
            out["proj:transform"] = list(ds.transform)[:6]
        out["raster:bands"] = [band]
        return out


def _footprint(path: Any) -> tuple[list[float], dict[str, Any]]:
    """The bbox and polygon of a file's footprint in EPSG:4326."""
    import rasterio
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        w, s, e, n = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return [w, s, e, n], {"type": "Polygon", "coordinates": [ring]}


def stac_item(
    item_id: str,
    datetime: str,
    assets: Mapping[str, Any],
    *,
    collection: str | None = None,
    hrefs: Mapping[str, str] | None = None,
    factors: Mapping[str, tuple[float, float]] | None = None,
    nodata: Mapping[str, float | int] | None = None,
    proj: bool = True,
    epsg_field: bool = False,
) -> dict[str, Any]:
    """A STAC item dict for the files ``assets`` (asset key -> path).

    Parameters
    ----------
    item_id, datetime
        The item's id and ``properties.datetime`` (ISO 8601, UTC).
    assets
        Asset key -> local path of the file (read for its grid and bands).
    collection
        The item's collection id, if any.
    hrefs
        Asset key -> the href to publish (default: the path).
    factors
        Asset key -> ``(scale, offset)`` to publish in ``raster:bands``
        (default: the file's GDAL scale and offset, when not 1 and 0).
    nodata
        Asset key -> the nodata to publish (default: the file's, if any).
    proj
        Write the projection extension (``False``: an item without it, whose
        readers must open the files for their grids).
    epsg_field
        Write ``proj:epsg`` (projection extension 1.x) instead of ``proj:code``.
    """
    first = next(iter(assets.values()))
    bbox, geometry = _footprint(first)
    out_assets = {
        key: _asset(
            path,
            (hrefs or {}).get(key, os.fspath(path)),
            proj=proj,
            epsg_field=epsg_field,
            factors=(factors or {}).get(key),
            nodata=(nodata or {}).get(key),
        )
        for key, path in assets.items()
    }
    item: dict[str, Any] = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "stac_extensions": [PROJ_SCHEMA, RASTER_SCHEMA] if proj else [RASTER_SCHEMA],
        "id": item_id,
        "geometry": geometry,
        "bbox": bbox,
        "properties": {"datetime": datetime},
        "links": [],
        "assets": out_assets,
    }
    if collection is not None:
        item["collection"] = collection
    return item
