"""``read_cube(..., geobox=...)``: a cube of sources on any grids, each chunk read straight onto the target grid.

Only the first source is opened at call time (its dtype, bands and nodata
stand for all); every other source's header is read by the first task that
needs it, once per process (:func:`pyr.io.warp_read.cached_header`), except
with ``group_by="solar_day"``, which needs each source's footprint to know
its local day and so reads every header at call time. One task per (time
step, spatial chunk) reads the sources of its step onto the chunk, the first
valid pixel winning in the given order (:func:`pyr.io.warp_read.mosaic_warped`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from rasterio.crs import CRS

from pyr import _gridding
from pyr._imports import ensure
from pyr.cube import Cube
from pyr.errors import InvalidArgument, ReadError
from pyr.geobox import GeoBox
from pyr.io.gdal.sources import SourceSpec
from pyr.io.tiff import Header, split
from pyr.io.warp_read import WarpTarget, cached_header, check_geobox, mosaic_warped, output_chunks, output_nodata
from pyr.types import parse_nodata

__all__ = ["GROUP_BY", "centre_longitude", "group_sources", "warped_cube"]

GROUP_BY = (None, "date", "solar_day")
_log = logging.getLogger("pyr.io.cube")


def centre_longitude(grid: GeoBox, no_crs: str) -> float:
    """The longitude of ``grid``'s centre (for local solar days); ``no_crs``: the error when it has no CRS."""
    if grid.crs is None:
        raise InvalidArgument(no_crs)
    x, y = grid.transform @ (grid.width / 2, grid.height / 2)
    lon, _ = _gridding.transform_points(grid.crs, CRS.from_epsg(4326), np.array([x]), np.array([y]))
    return float(lon[0])


def _solar_offset(spec: SourceSpec) -> np.timedelta64:
    """Local solar time minus UTC at the centre of ``spec``'s footprint: longitude / 15 hours."""
    no_crs = f"group_by='solar_day': {spec.name!r} has no CRS, so no longitude."
    return _lon_offset(centre_longitude(cached_header(spec).geobox, no_crs))


def _lon_offset(lon: float) -> np.timedelta64:
    return np.timedelta64(round(lon / 15.0 * 3600e6), "us")


def group_sources(
    specs: Sequence[Any],
    times: np.ndarray | None,
    group_by: str | None,
    *,
    longitudes: Sequence[float] | None = None,
) -> tuple[list[list[int]], np.ndarray | None]:
    """The sources of each time step (indices, in the given order) and the steps' times.

    ``None``: one step per source. ``"date"``: one per UTC day,
    ``"solar_day"``: one per local solar day (from the longitude of each
    source's centre: ``longitudes`` when given, else read from the
    :class:`SourceSpec`'s header); a step is labelled with the earliest time
    of its sources, and steps are in time order.
    """
    if group_by not in GROUP_BY:
        raise InvalidArgument(f"group_by={group_by!r}: expected None, 'date' or 'solar_day'.")
    if group_by is None:
        return [[i] for i in range(len(specs))], times
    if times is None:
        raise InvalidArgument(f"group_by={group_by!r} needs times= (the sources' dates).")
    local = times
    if group_by == "solar_day":
        shifts = [_solar_offset(s) for s in specs] if longitudes is None else [_lon_offset(x) for x in longitudes]
        local = np.array([t + d for t, d in zip(times, shifts, strict=True)], dtype=times.dtype)
    days = local.astype("M8[D]")
    groups: dict[Any, list[int]] = {}
    for i, day in enumerate(days):
        groups.setdefault(day, []).append(i)
    ordered = sorted(groups.values(), key=lambda g: (times[g].min(), g[0]))
    return ordered, np.array([times[g].min() for g in ordered], dtype=times.dtype)


def _skip(spec: SourceSpec, err: ReadError) -> None:
    """``on_error="nodata"``: a failed source is left out of its chunk, with a warning."""
    _log.warning("read_cube: source %r failed, left out of its chunk (on_error='nodata'): %s", spec.name, err)


def _region(
    groups: tuple[tuple[SourceSpec, ...], ...],
    first: tuple[SourceSpec, Header],
    indexes: tuple[int, ...],
    target: WarpTarget,
    skip: bool,
    region: tuple[slice, ...],
) -> np.ndarray:
    """One task: time step ``region[0]`` read onto the chunk ``region[2:]``: ``(1, band, y, x)``."""
    ts, _, ys, xs = region
    block = mosaic_warped(
        groups[ts.start], first, indexes, target, (ys.start, ys.stop), (xs.start, xs.stop), _skip if skip else None
    )
    return block[None]


def warped_cube(
    specs: list[SourceSpec],
    header: Header,
    idx: tuple[int, ...],
    chunks: Any,
    times: np.ndarray | None,
    geobox: Any,
    *,
    resampling: Any,
    group_by: Any,
    nodata: Any,
    band_names: tuple[str, ...],
    on_error: str,
) -> Cube:
    """The cube of :func:`pyr.read_cube` with ``geobox``."""
    ensure("dask.array")
    from dask.base import tokenize

    from pyr.io._producer import producer_array
    from pyr.ops.reduce import max_cells

    dst = check_geobox(geobox)
    name = _gridding.resampling_name(resampling)
    dtype = np.dtype(header.dtype)
    given = None if nodata is None else parse_nodata(nodata, dtype)
    cube_nodata = output_nodata(dtype, header.nodata if given is None else given, specs[0].name)
    target = WarpTarget(dst, name, given, cube_nodata, dtype.str)
    steps, step_times = group_sources(specs, times, group_by)
    groups = tuple(tuple(specs[i] for i in g) for g in steps)
    if isinstance(chunks, str):
        limit = max_cells("median", len(groups), len(idx), dtype) * len(idx) * dtype.itemsize
        from pyr.io.tiff import auto_chunks

        size = auto_chunks(Header(dst, len(idx), dtype.str, None, (256, 256), (), ()), len(idx), dtype, limit=limit)
    else:
        size = output_chunks(dst, chunks, len(idx), dtype)
    indexes = tuple(i + 1 for i in idx)
    grid = ((1,) * len(groups), (len(idx),), split(dst.height, size[0]), split(dst.width, size[1]))
    first = (specs[0], header)
    skip = on_error == "nodata"
    token = "pyr-read-cube-warp-" + tokenize(groups, first, indexes, target, grid, skip)
    data = producer_array(token, _region, (groups, first, indexes, target, skip), grid, dtype)
    return Cube(data, dst, nodata=cube_nodata, bands=band_names, times=step_times)
