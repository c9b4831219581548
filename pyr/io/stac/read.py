"""``read_stac``: a lazy cube from STAC items, one band per asset key, on one grid."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pyr import _gridding
from pyr._curry import curried
from pyr._imports import ensure
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.io.cube_warp import GROUP_BY, centre_longitude, group_sources
from pyr.io.gdal.sources import SourceSpec
from pyr.io.stac.graph import Plan, Source, Steps, stac_array
from pyr.io.stac.grid import plan_geobox
from pyr.io.stac.items import Item, item_dicts, parse_item
from pyr.io.tiff import Header, auto_chunks, source_spec
from pyr.io.warp_read import cached_header, check_geobox, output_chunks, output_nodata
from pyr.types import parse_chunks2d, parse_nodata

__all__ = ["read_stac"]


def _keys(bands: Any) -> tuple[str, ...]:
    keys = (bands,) if isinstance(bands, str) else bands
    if not isinstance(keys, Sequence) or not keys or not all(isinstance(k, str) and k for k in keys):
        raise InvalidArgument(f"bands={bands!r}: expected asset keys, e.g. ['red', 'nir'] or 'B04'.")
    if len(set(keys)) != len(keys):
        raise InvalidArgument(f"bands={bands!r}: an asset key appears twice.")
    return tuple(keys)


def _check_options(group_by: Any, on_error: Any, scaled: Any, geobox: Any, overrides: Mapping[str, Any]) -> None:
    if group_by not in GROUP_BY:
        raise InvalidArgument(f"group_by={group_by!r}: expected None, 'date' or 'solar_day'.")
    if on_error not in ("raise", "nodata"):
        raise InvalidArgument(f"on_error={on_error!r}: expected 'raise' or 'nodata'.")
    if not isinstance(scaled, bool):
        raise InvalidArgument(f"scaled={scaled!r}: expected True or False.")
    given = [k for k, v in overrides.items() if v is not None]
    if geobox is not None and given:
        raise InvalidArgument(f"geobox= and {given[0]}= together: geobox= fixes the whole grid; pass one or the other.")


class _Headers:
    """Headers read at call time, only for what the items do not say (each at most once per process)."""

    def __init__(self, specs: Mapping[tuple[int, str], SourceSpec]) -> None:
        self.specs = specs

    def get(self, i: int, key: str) -> Header:
        return cached_header(self.specs[(i, key)])


def _band_dtype(items: Sequence[Item], key: str, headers: _Headers) -> np.dtype[Any]:
    for item in items:
        if item.assets[key].dtype is not None:
            return np.dtype(item.assets[key].dtype)
    return np.dtype(headers.get(0, key).dtype)


def _cube_nodata(
    items: Sequence[Item], keys: tuple[str, ...], dtype: np.dtype[Any], nodata: Any, headers: _Headers
) -> float | int:
    """The cube's nodata: ``nodata=``, else the first band's that the items give, else its first file's."""
    if nodata is not None:
        return output_nodata(dtype, parse_nodata(nodata, dtype), "nodata=")
    for key in keys:
        for item in items:
            if item.assets[key].nodata is not None:
                return output_nodata(dtype, parse_nodata(item.assets[key].nodata, dtype), item.assets[key].href)
    found = None if dtype.kind == "f" else headers.get(0, keys[0]).nodata
    return output_nodata(dtype, None if found is None else parse_nodata(found, dtype), items[0].assets[keys[0]].href)


def _factors(items: Sequence[Item], key: str, scaled: bool) -> tuple[list[tuple[float, float]], tuple[float, float]]:
    """Each item's ``(scale, offset)`` for ``key`` (the items' raster:bands; 1 and 0 when absent) and the band's."""
    per_item = []
    for item in items:
        asset = item.assets[key]
        per_item.append(
            (1.0 if asset.scale is None else float(asset.scale), 0.0 if asset.offset is None else float(asset.offset))
        )
    distinct = sorted(set(per_item))
    if len(distinct) > 1 and not scaled:
        raise InvalidArgument(
            f"read_stac: the items give band {key!r} different scale/offset ({distinct[0]} and {distinct[1]}, ...), "
            "which one cube cannot record; pass scaled=True to apply each item's own."
        )
    return per_item, distinct[0]


def _times_and_steps(items: Sequence[Item], group_by: Any, headers: _Headers, keys: tuple[str, ...]) -> Any:
    times = np.array([item.time for item in items], dtype="datetime64[us]")
    if group_by is None:
        order = np.argsort(times, kind="stable")
        return [[int(i)] for i in order], times[order]
    lons = None
    if group_by == "solar_day":
        lons = []
        for i, item in enumerate(items):
            lon = item.lon
            if lon is None:
                no_crs = f"group_by='solar_day': STAC item {item.id!r} has no bbox, geometry or CRS: no longitude."
                lon = centre_longitude(headers.get(i, keys[0]).geobox, no_crs)
            lons.append(lon)
    return group_sources(list(items), times, group_by, longitudes=lons)


@curried
def read_stac(
    items: Any,
    *,
    bands: str | Sequence[str],
    geobox: GeoBox | None = None,
    crs: Any = None,
    resolution: Any = None,
    bbox: Sequence[float] | None = None,
    group_by: str | None = "solar_day",
    chunks: Any = "auto",
    resampling: str = "nearest",
    scaled: bool = False,
    on_error: str = "raise",
    env: Mapping[str, Any] | None = None,
    nodata: float | int | None = None,
) -> Cube:
    """A lazy cube ``(time, band, y, x)`` from STAC items: one band per asset key, every item on one grid.

    Nothing is opened at call time when the items carry the projection
    extension (``proj:code`` or ``proj:epsg``, ``proj:transform``,
    ``proj:shape``, on the asset or the item) and ``raster:bands``
    ``data_type`` (and ``nodata`` for integer bands); what an item lacks is
    read from a header: at call time when the grid or the dtype needs it,
    else by the tasks, once per process. One task per (time step, spatial
    chunk) reads every band's asset of the step's items onto its chunk
    (:func:`pyr.read` with ``geobox``, band by band): an item whose grid
    misses the chunk costs the task nothing, not even its header.

    Parameters
    ----------
    items
        ``pystac.Item`` objects, STAC item dicts (GeoJSON Features; pystac is
        not needed), a ``pystac.ItemCollection`` or FeatureCollection dict,
        or a ``pystac_client`` search (its ``items_as_dicts()`` are used).
        Asset hrefs may be local paths, ``http(s)://``, ``s3://``, ... as for
        :func:`pyr.read`.
    bands
        Asset keys (``"red"``, ``"B04"``, ``"scl"``, ...), one band each,
        named after the key. Each asset's first band is read. Every item
        needs every key (else :class:`~pyr.errors.InvalidArgument` naming
        the item and the keys it has).
    geobox
        The output grid (north-up, any CRS). Default: the CRS most of the
        chosen assets share, the finest resolution among them in that CRS,
        covering the union of their footprints (or ``bbox``), on the items'
        own pixel lattice when they all share it in that CRS, else with
        edges on whole multiples of the resolution (as
        :meth:`~pyr.GeoBox.from_bbox`). Not with ``crs``, ``resolution`` or
        ``bbox``, which override parts of the default.
    crs, resolution, bbox
        The default grid's CRS, resolution (a number or ``(xres, yres)``, in
        units of the CRS) and extent (``(west, south, east, north)`` in
        EPSG:4326).
    group_by
        ``"solar_day"`` (default): one time step per local solar day (UTC
        plus the longitude of the item's centre / 15 hours, from its bbox or
        geometry); ``"date"``: per UTC day; ``None``: one step per item.
        The items of a step are mosaicked, the first valid pixel winning in
        the order given; a step is labelled with the earliest of their
        times, steps in time order.
    chunks
        ``"auto"``: spatial chunks of multiples of 256 cells, sized so that
        one chunk of every step (and the float copy a median needs) fits
        dask's ``array.chunk-size``; an int or ``(y, x)``: those chunks.
        Time is one step per chunk, bands whole.
    resampling
        Any name of ``rasterio.enums.Resampling``; bands coarser or finer
        than the grid are resampled onto it.
    scaled
        ``True``: float32 ``raw * scale + offset``, nodata as NaN, each item
        with its own ``raster:bands`` ``scale``/``offset`` (items whose
        factors differ, as across a Sentinel-2 processing baseline, are
        each scaled correctly). ``False``: raw values, the factors recorded
        on the cube (``cube.scales``/``cube.offsets``) for
        :func:`pyr.rescale` to apply; the items of a band must then agree
        on them. The items' factors win over any the files' GDAL metadata
        hold: read_stac does not open a file to look for them, and a band
        whose items give none is not scaled.
    on_error
        ``"raise"``: an unreadable asset fails the computation with
        :class:`~pyr.errors.ReadError` naming it. ``"nodata"``: it is left
        out of its chunks (a WARNING on the ``"pyr.io.stac"`` logger names
        it, where the task ran).
    env
        GDAL config options applied around every open and read, also in
        worker processes (e.g. :func:`pyr.cloud_env`).
    nodata
        The cube's nodata (unscaled reads): default the first band's
        ``raster:bands`` nodata (else its first file's). Cells equal to
        each asset's own nodata (its item's, else its file's) are not used,
        and cells no item covers get the cube's nodata: a band whose nodata
        differs from the cube's has its nodata cells written as the cube's.

    Returns
    -------
    Cube
        Lazy; dtype the widest of the bands' (float32 when ``scaled``).

    Examples
    --------
    >>> import pystac_client  # doctest: +SKIP
    >>> search = pystac_client.Client.open("https://earth-search.aws.element84.com/v1").search(
    ...     collections=["sentinel-2-l2a"], bbox=(4.8, 45.7, 4.9, 45.8), datetime="2024-06")  # doctest: +SKIP
    >>> cube = read_stac(search, bands=["red", "nir", "scl"], resolution=20)  # doctest: +SKIP
    >>> from toolz import pipe
    >>> median = pipe(search, read_stac(bands=["red"], scaled=True), pyr.reduce_time(how="median"))  # doctest: +SKIP
    """
    keys = _keys(bands)
    _check_options(group_by, on_error, scaled, geobox, {"crs": crs, "resolution": resolution, "bbox": bbox})
    chunks2d = parse_chunks2d(chunks)
    if chunks2d is None:
        raise InvalidArgument("chunks=None: read_stac is lazy; pass 'auto', an int or (y, x), and compute() it.")
    method = _gridding.resampling_name(resampling)
    parsed = [parse_item(d, keys) for d in item_dicts(items)]
    if not parsed:
        raise InvalidArgument("items is empty: read_stac needs at least one STAC item.")
    specs = {(i, k): source_spec(item.assets[k].href, env=env) for i, item in enumerate(parsed) for k in keys}
    headers = _Headers(specs)
    footprints = {(i, k): item.assets[k].geobox for i, item in enumerate(parsed) for k in keys}
    if geobox is None:  # the default grid needs every footprint: headers for items without proj info
        for (i, k), grid in footprints.items():
            if grid is None:
                footprints[(i, k)] = headers.get(i, k).geobox
        dst = plan_geobox([g for g in footprints.values() if g is not None], crs=crs, resolution=resolution, bbox=bbox)
    else:
        dst = check_geobox(geobox)
    band_dtypes = [_band_dtype(parsed, k, headers) for k in keys]
    factors = [_factors(parsed, k, scaled) for k in keys]
    dtype = np.dtype("float32") if scaled else np.result_type(*band_dtypes)
    cube_nodata = math.nan if scaled else _cube_nodata(parsed, keys, dtype, nodata, headers)
    groups, step_times = _times_and_steps(parsed, group_by, headers, keys)
    steps: Steps = tuple(
        tuple(
            tuple(
                Source(specs[(i, k)], footprints[(i, k)], parsed[i].assets[k].nodata, *factors[b][0][i]) for i in group
            )
            for b, k in enumerate(keys)
        )
        for group in groups
    )
    plan = Plan(dst, method, dtype.str, cube_nodata, scaled, on_error == "nodata")
    ensure("dask.array")
    if isinstance(chunks2d, str):
        from pyr.ops.reduce import max_cells

        limit = max_cells("median", len(steps), len(keys), dtype) * len(keys) * dtype.itemsize
        size = auto_chunks(Header(dst, len(keys), dtype.str, None, (256, 256), (), ()), len(keys), dtype, limit=limit)
    else:
        size = output_chunks(dst, chunks2d, len(keys), dtype)
    data = stac_array(steps, plan, size)
    scales = None if scaled else [f[1][0] for f in factors]
    offsets = None if scaled else [f[1][1] for f in factors]
    return Cube(data, dst, nodata=cube_nodata, bands=keys, times=step_times, scales=scales, offsets=offsets)
