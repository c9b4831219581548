"""CF / GDAL georeferencing metadata: building it for writers, parsing it for readers.

Pure functions of a ``GeoBox`` (and times); no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox

__all__ = [
    "TIME_UNITS",
    "decode_times",
    "encode_times",
    "factor_attrs",
    "factors_from_attrs",
    "geobox_from_cf",
    "grid_mapping_attrs",
    "xy_attrs",
]

TIME_UNITS = "seconds since 1970-01-01T00:00:00"
TIME_CALENDAR = "proleptic_gregorian"


def _cf_params(crs: CRS) -> dict[str, Any]:
    """CF grid-mapping parameters (pyproj when installed, else UTM/geographic by hand)."""
    import importlib.util

    if importlib.util.find_spec("pyproj") is not None:  # comes with the xarray extra
        import pyproj

        try:
            cf = pyproj.CRS.from_wkt(crs.to_wkt()).to_cf()
        except Exception:
            cf = {}
        return {k: v for k, v in cf.items() if k not in ("crs_wkt", "spatial_ref")}
    params: dict[str, Any] = {}
    if crs.is_geographic:
        params["grid_mapping_name"] = "latitude_longitude"
    elif (zone := _utm(crs)) is not None:
        zone_no, north = zone
        params.update(
            grid_mapping_name="transverse_mercator",
            latitude_of_projection_origin=0.0,
            longitude_of_central_meridian=-183.0 + 6.0 * zone_no,
            false_easting=500000.0,
            false_northing=0.0 if north else 10000000.0,
            scale_factor_at_central_meridian=0.9996,
        )
    return params


def _utm(crs: CRS) -> tuple[int, bool] | None:
    epsg = crs.to_epsg()
    if epsg is not None and (32601 <= epsg <= 32660 or 32701 <= epsg <= 32760):
        return (epsg % 100, epsg < 32700)
    return None


def grid_mapping_attrs(geobox: GeoBox) -> dict[str, Any]:
    """Attributes of the 0-d ``spatial_ref`` variable (CF + GDAL + rioxarray)."""
    t = geobox.transform
    attrs: dict[str, Any] = {
        "GeoTransform": " ".join(repr(float(v)) for v in (t.c, t.a, t.b, t.f, t.d, t.e)),
    }
    if geobox.crs is not None:
        wkt = geobox.crs.to_wkt()
        attrs.update(_cf_params(geobox.crs))
        attrs["crs_wkt"] = wkt
        attrs["spatial_ref"] = wkt
    return attrs


def xy_attrs(geobox: GeoBox) -> tuple[dict[str, Any], dict[str, Any]]:
    """CF attributes of the ``y`` and ``x`` coordinate variables."""
    crs = geobox.crs
    if crs is not None and crs.is_geographic:
        return (
            {"standard_name": "latitude", "long_name": "latitude", "units": "degrees_north", "axis": "Y"},
            {"standard_name": "longitude", "long_name": "longitude", "units": "degrees_east", "axis": "X"},
        )
    units = "metre"
    if crs is not None:
        try:
            name, factor = crs.linear_units_factor
            units = "metre" if factor == 1.0 else name
        except Exception:
            units = "metre"
    y = {
        "standard_name": "projection_y_coordinate",
        "long_name": "y coordinate of projection",
        "units": units,
        "axis": "Y",
    }
    x = {
        "standard_name": "projection_x_coordinate",
        "long_name": "x coordinate of projection",
        "units": units,
        "axis": "X",
    }
    return y, x


def encode_times(times: np.ndarray) -> np.ndarray:
    """``datetime64`` -> int64 seconds since the epoch (exact for whole seconds; no ``ns`` wrap after 2262)."""
    seconds = times.astype("datetime64[s]")
    if (seconds != times).any():
        raise InvalidArgument("times with sub-second precision cannot be written; round them to seconds.")
    return seconds.astype("int64")


def decode_times(values: np.ndarray, units: str, calendar: str = TIME_CALENDAR) -> np.ndarray:
    """CF ``<unit> since <epoch>`` integers -> ``datetime64[us]`` (standard calendars only)."""
    if calendar not in ("standard", "gregorian", "proleptic_gregorian"):
        raise InvalidArgument(f"time calendar {calendar!r} is not supported.")
    unit, _, epoch = units.partition(" since ")
    scale = {
        "days": "D",
        "day": "D",
        "hours": "h",
        "hour": "h",
        "minutes": "m",
        "minute": "m",
        "seconds": "s",
        "second": "s",
        "milliseconds": "ms",
        "microseconds": "us",
        "nanoseconds": "ns",
    }.get(unit.strip().lower())
    if scale is None or not epoch:
        raise InvalidArgument(f"time units {units!r} are not CF '<unit> since <date>'.")
    base = np.datetime64(epoch.strip().replace(" ", "T").rstrip("Z").split("+")[0], "us")
    values = np.asarray(values)
    if values.dtype.kind == "f":
        if not np.all(values == np.round(values)):
            raise InvalidArgument("fractional time offsets are not supported.")
        values = values.astype("int64")
    return base + values.astype("int64").astype(f"timedelta64[{scale}]").astype("timedelta64[us]")


def geobox_from_cf(
    shape: tuple[int, int],
    y: np.ndarray | None,
    x: np.ndarray | None,
    grid_mapping: dict[str, Any] | None,
) -> GeoBox:
    """The grid of a CF variable: ``GeoTransform`` when present, else cell-centre coords."""
    gm = grid_mapping or {}
    crs = None
    for key in ("crs_wkt", "spatial_ref"):
        if gm.get(key):
            crs = CRS.from_wkt(gm[key])
            break
    gt = gm.get("GeoTransform")
    if gt:
        c, a, b, f, d, e = (float(v) for v in str(gt).split())
        return GeoBox(shape, Affine(a, b, c, d, e, f), crs)
    if x is None or y is None or len(x) < 1 or len(y) < 1:
        raise InvalidArgument("cannot find the grid: no GeoTransform and no x/y coordinates.")
    xres = float(x[1] - x[0]) if len(x) > 1 else 1.0
    yres = float(y[1] - y[0]) if len(y) > 1 else -1.0
    for name, coord, res in (("x", x, xres), ("y", y, yres)):
        if len(coord) > 2 and not np.allclose(np.diff(coord), res, rtol=1e-6, atol=0):
            raise InvalidArgument(f"coordinate {name!r} is not regularly spaced; it cannot define a grid.")
    if not (math.isfinite(xres) and math.isfinite(yres)):
        raise InvalidArgument("non-finite x/y coordinates.")
    transform = Affine(xres, 0.0, float(x[0]) - xres / 2, 0.0, yres, float(y[0]) - yres / 2)
    return GeoBox(shape, transform, crs)


def factor_attrs(scales: tuple[float, ...] | None, offsets: tuple[float, ...] | None) -> dict[str, Any]:
    """Attributes that record a raster's per-band ``raw * scale + offset`` on its data variable.

    One pair shared by every band: CF's ``scale_factor`` and ``add_offset``,
    which xarray applies when it decodes and GDAL reads as the band's scale
    and offset. Bands with different factors: ``scales`` and ``offsets``,
    one number per band, as ``rioxarray.open_rasterio`` names them (no CF
    reader applies those: the values stay raw). No factors: nothing.
    """
    if scales is None or offsets is None:
        return {}
    if len(set(scales)) == 1 and len(set(offsets)) == 1:
        return {"scale_factor": scales[0], "add_offset": offsets[0]}
    return {"scales": list(scales), "offsets": list(offsets)}


def factors_from_attrs(
    attrs: Mapping[str, Any], count: int, *, where: str
) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    """The per-band scales and offsets :func:`factor_attrs` (or rioxarray) wrote: ``(None, None)`` if none.

    ``scales``/``offsets`` lists win over ``scale_factor``/``add_offset``
    (rioxarray writes a list for one and a number for the other when only one
    differs between bands). ``where`` names the variable in errors.
    """
    keys = ("scales", "scale_factor", "offsets", "add_offset")
    if not any(attrs.get(k) is not None for k in keys):
        return None, None
    out = []
    for many, one, default in (("scales", "scale_factor", 1.0), ("offsets", "add_offset", 0.0)):
        value = attrs.get(many)
        if value is None:
            value = attrs.get(one, default)
        numbers = np.atleast_1d(np.asarray(value, dtype="float64")).ravel()
        if len(numbers) == 1:
            numbers = np.repeat(numbers, count)
        if len(numbers) != count or not np.isfinite(numbers).all():
            raise InvalidArgument(
                f"{where}: {many}/{one} {value!r} are not one finite number, or one per band ({count})."
            )
        out.append(tuple(float(v) for v in numbers))
    return out[0], out[1]
