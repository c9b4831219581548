"""STAC items as plain values: what ``read_stac`` needs of each item and of each chosen asset.

Items come as ``pystac.Item`` objects, plain GeoJSON dicts, an
``ItemCollection`` (or a FeatureCollection dict), or a ``pystac_client``
search; all become plain dicts here (duck-typed: pystac is never imported).
From each item :func:`parse_item` takes its id, time (``datetime``, else
``start_datetime``), the longitude of its centre (for ``group_by="solar_day"``)
and, for each chosen asset key, an :class:`Asset`: the href (made absolute
against the item's ``self`` link when relative), the grid from the projection
extension (``proj:code``/``proj:epsg``/``proj:wkt2``/``proj:projjson``,
``proj:transform``, ``proj:shape``, each taken from the asset, else from
the item's properties) and the first band's ``nodata``, ``data_type``,
``scale`` and ``offset`` (from ``raster:bands``, or the STAC 1.1 ``bands``
and asset fields ``nodata``, ``data_type``, ``raster:scale``,
``raster:offset``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

import attrs
import numpy as np
from affine import Affine

from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.types import parse_times

__all__ = ["Asset", "Item", "item_dicts", "parse_item"]

_COMPLEX = ("cint16", "cint32", "cfloat32", "cfloat64")


@attrs.frozen
class Asset:
    """One chosen asset of one item: where it is and what the item says about it (``None``: not said)."""

    href: str
    geobox: GeoBox | None
    dtype: str | None
    nodata: float | int | None
    scale: float | None
    offset: float | None


@attrs.frozen
class Item:
    """One STAC item: its id, time, centre longitude (``None`` if unknown) and chosen assets by key."""

    id: str
    time: np.datetime64
    lon: float | None
    assets: Mapping[str, Asset]


def item_dicts(items: Any) -> list[dict[str, Any]]:
    """``items`` as a list of plain STAC item dicts (see the module docstring for what is accepted)."""
    if hasattr(items, "items_as_dicts") and callable(items.items_as_dicts):  # pystac_client ItemSearch
        return [dict(d) for d in items.items_as_dicts()]
    if isinstance(items, Mapping):
        if items.get("type") == "FeatureCollection":
            return item_dicts(list(items.get("features") or []))
        return [_as_dict(items)]
    if hasattr(items, "to_dict") and hasattr(items, "assets"):  # one pystac.Item
        return [_as_dict(items)]
    if isinstance(items, str | bytes) or not isinstance(items, Iterable):
        raise InvalidArgument(
            f"items={items!r}: expected STAC items (pystac.Item, dicts, an ItemCollection or a pystac_client search)."
        )
    return [_as_dict(i) for i in items]


def _as_dict(item: Any) -> dict[str, Any]:
    if isinstance(item, Mapping):
        if item.get("type") not in ("Feature", None) or "assets" not in item:
            raise InvalidArgument(f"items: {str(item)[:80]!r}... is not a STAC item (a GeoJSON Feature with assets).")
        return dict(item)
    if hasattr(item, "to_dict") and hasattr(item, "assets"):  # pystac.Item: hrefs made absolute
        out: dict[str, Any] = item.to_dict(transform_hrefs=False)
        for key, asset in item.assets.items():
            href = asset.get_absolute_href()
            if href:
                out["assets"][key]["href"] = href
        return out
    raise InvalidArgument(f"items: {item!r} is not a STAC item (a pystac.Item or a GeoJSON dict).")


def parse_item(item: Mapping[str, Any], bands: Sequence[str]) -> Item:
    """The :class:`Item` of a STAC item dict, with the assets ``bands``."""
    ident = str(item.get("id", "?"))
    props = item.get("properties") or {}
    when = props.get("datetime") or props.get("start_datetime")
    if when is None:
        raise InvalidArgument(f"STAC item {ident!r} has no datetime (nor start_datetime).")
    time = parse_times([when], name=f"item {ident!r} datetime")
    assert time is not None
    assets = item.get("assets") or {}
    base = _self_href(item)
    chosen = {}
    for key in bands:
        if key not in assets:
            raise InvalidArgument(f"STAC item {ident!r} has no asset {key!r}; it has {sorted(assets)}.")
        chosen[key] = _asset(ident, key, assets[key], props, base)
    return Item(ident, time[0], _longitude(item, chosen), chosen)


def _self_href(item: Mapping[str, Any]) -> str | None:
    for link in item.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") == "self" and isinstance(link.get("href"), str):
            return str(link["href"])
    return None


def _asset(ident: str, key: str, asset: Mapping[str, Any], props: Mapping[str, Any], base: str | None) -> Asset:
    href = asset.get("href")
    if not isinstance(href, str) or not href:
        raise InvalidArgument(f"STAC item {ident!r}: asset {key!r} has no href.")
    if base is not None and "://" not in href and not href.startswith("/"):
        href = urljoin(base, href)

    def field(name: str) -> Any:
        return asset[name] if name in asset else props.get(name)

    where = f"STAC item {ident!r}, asset {key!r}"
    band = _first_band(asset)
    dtype = band.get("data_type", asset.get("data_type"))
    return Asset(
        href=href,
        geobox=_geobox(field, where),
        dtype=_dtype(dtype, where),
        nodata=_number(band.get("nodata", asset.get("nodata")), f"{where} nodata"),
        scale=_number(band.get("scale", band.get("raster:scale", asset.get("raster:scale"))), f"{where} scale"),
        offset=_number(band.get("offset", band.get("raster:offset", asset.get("raster:offset"))), f"{where} offset"),
    )


def _first_band(asset: Mapping[str, Any]) -> Mapping[str, Any]:
    for name in ("raster:bands", "bands"):
        bands = asset.get(name)
        if isinstance(bands, Sequence) and bands and isinstance(bands[0], Mapping):
            return bands[0]
    return {}


def _dtype(value: Any, where: str) -> str | None:
    if value is None or value == "other":
        return None
    if value in _COMPLEX:
        raise InvalidArgument(f"{where}: data_type {value!r} is complex; pyr reads real-valued bands.")
    try:
        return np.dtype(str(value)).str
    except TypeError:
        raise InvalidArgument(f"{where}: data_type {value!r} is not a STAC data type.") from None


def _number(value: Any, where: str) -> float | int | None:
    if value is None:
        return None
    if isinstance(value, str):  # the STAC raster extension writes "nan", "inf", "-inf" as strings
        try:
            return float(value)
        except ValueError:
            raise InvalidArgument(f"{where}: {value!r} is not a number.") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgument(f"{where}: {value!r} is not a number.")
    return value


def _crs(field: Any, where: str) -> Any:
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    for name in ("proj:code", "proj:epsg", "proj:wkt2", "proj:projjson"):
        value = field(name)
        if value is None:
            continue
        try:
            if name == "proj:epsg":
                return CRS.from_epsg(int(value))
            if name == "proj:projjson":
                import json

                return CRS.from_user_input(json.dumps(value) if isinstance(value, Mapping) else value)
            return CRS.from_user_input(value)
        except (CRSError, TypeError, ValueError) as err:
            raise InvalidArgument(f"{where}: {name}={value!r} is not a CRS: {err}") from None
    return None


def _geobox(field: Any, where: str) -> GeoBox | None:
    """The asset's grid from the projection extension, or ``None`` when a part is missing."""
    crs = _crs(field, where)
    shape, transform = field("proj:shape"), field("proj:transform")
    if crs is None or shape is None:
        return None
    try:
        rows, cols = (int(v) for v in shape)
        if transform is None:
            left, bottom, right, top = (float(v) for v in field("proj:bbox"))
            t = Affine((right - left) / cols, 0.0, left, 0.0, -(top - bottom) / rows, top)
        else:
            t = Affine(*(float(v) for v in list(transform)[:6]))
    except (TypeError, ValueError, ZeroDivisionError):
        raise InvalidArgument(
            f"{where}: proj:shape={shape!r} / proj:transform={transform!r} do not describe a grid."
        ) from None
    return GeoBox((rows, cols), t, crs)


def _longitude(item: Mapping[str, Any], assets: Mapping[str, Asset]) -> float | None:
    """The longitude of the item's centre: from ``bbox``, else ``geometry``, else a projected grid."""
    bbox = item.get("bbox")
    if isinstance(bbox, Sequence) and len(bbox) in (4, 6):
        west, east = float(bbox[0]), float(bbox[len(bbox) // 2])
        if east < west:  # across the antimeridian
            east += 360.0
        return (west + east) / 2.0 - (360.0 if (west + east) / 2.0 > 180.0 else 0.0)
    geometry = item.get("geometry")
    if isinstance(geometry, Mapping) and geometry.get("coordinates") is not None:
        lons = [p[0] for p in _points(geometry["coordinates"])]
        if lons:
            return (min(lons) + max(lons)) / 2.0
    for asset in assets.values():
        if asset.geobox is not None and asset.geobox.crs is not None:
            from rasterio.crs import CRS

            from pyr._gridding import transform_points

            g = asset.geobox
            x, y = g.transform @ (g.width / 2, g.height / 2)
            lon, _ = transform_points(g.crs, CRS.from_epsg(4326), np.array([x]), np.array([y]))
            if math.isfinite(lon[0]):
                return float(lon[0])
    return None


def _points(coords: Any) -> list[Sequence[float]]:
    if isinstance(coords, Sequence) and coords and isinstance(coords[0], int | float):
        return [coords]
    out: list[Sequence[float]] = []
    for c in coords if isinstance(coords, Sequence) else ():
        out += _points(c)
    return out
