"""The reprojection pipeline: every date read onto a 20 m EPSG:3857 grid, temporal median, to Zarr.

The grid covers the first file's footprint (``transform_bounds`` with
densified edges), its edges snapped to multiples of 20 m; every implementation
gets the same grid and nearest-neighbour resampling, and reduces with the
median of ``pipelines_common.reduce_kernel`` (nodata skipped, float32, NaN
where no date is valid). Output: one float32 array, pyr's codec, Zarr v2.

* ``bound``: hand-written: per 1024 x 1024 output chunk, one rasterio
  ``WarpedVRT`` per date (opened once per thread onto the whole grid) reads
  the chunk's window, median, the chunk encoded and written straight to its
  Zarr file; a ``ThreadPoolExecutor(2)``, no dask.
* ``pyr``: ``read_cube(paths, geobox=grid)`` -> ``reduce_time(cube, "median")``
  -> ``write_zarr``, with pyr's default chunks.
* ``odc-stac``: ``odc.stac.load`` of STAC items describing the same files
  (``proj`` and ``raster`` extensions), onto the same grid (an odc-geo
  ``GeoBox``), ``chunks={"x": 2048, "y": 2048}`` (odc-stac's documented
  example), then xarray's median over time and ``to_zarr``.
* ``rioxarray``: ``rio.reproject`` of each date (eager: rioxarray reprojects
  in memory), the dates concatenated and chunked 2048 x 2048, xarray's median
  over time and ``to_zarr``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import numpy as np

from benchmarks.pipelines_common import CHUNK, Job, Steps, dask_checksum, reduce_kernel

CRS = "EPSG:3857"
RESOLUTION = 20.0
RESAMPLING = "nearest"
XCHUNK = 2048  # odc-stac's and rioxarray's chunks
_local = threading.local()


def grid(path: str) -> tuple[tuple[int, int], Any]:
    """``(shape, transform)`` of the target grid: ``path``'s footprint in :data:`CRS`, snapped to 20 m."""
    import math

    import rasterio
    from affine import Affine
    from rasterio.warp import transform_bounds

    with rasterio.open(path) as ds:
        left, bottom, right, top = transform_bounds(ds.crs, CRS, *ds.bounds, densify_pts=21)
    r = RESOLUTION
    x0, x1 = math.floor(left / r) * r, math.ceil(right / r) * r
    y0, y1 = math.floor(bottom / r) * r, math.ceil(top / r) * r
    return (round((y1 - y0) / r), round((x1 - x0) / r)), Affine(r, 0.0, x0, 0.0, -r, y1)


def times(n: int) -> list[datetime]:
    """Dates for ``n`` sources, 5 days apart (file names need not carry them)."""
    return [datetime(2024, 1, 5) + timedelta(days=5 * i) for i in range(n)]


# --- the hand-written bound ----------------------------------------------------------


def _vrt(path: str, shape: tuple[int, int], transform: Any) -> Any:
    """This thread's ``WarpedVRT`` of ``path`` onto the whole grid (opened once per thread)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    from benchmarks.bounds import _handle

    cache = getattr(_local, "vrts", None)
    if cache is None:
        cache = _local.vrts = {}
    vrt = cache.get(path)
    if vrt is None:
        vrt = cache[path] = WarpedVRT(
            _handle(path),
            crs=CRS,
            transform=transform,
            width=shape[1],
            height=shape[0],
            resampling=Resampling[RESAMPLING],
        )
    return vrt


def _bound_chunk(
    paths: tuple[str, ...], shape: tuple[int, int], transform: Any, nodata: Any, root: str, win: tuple[int, ...]
) -> str:
    """Every date's window of the grid through its WarpedVRT, median, one Zarr chunk written; its key."""
    from rasterio.windows import Window

    from benchmarks.bounds import _enc, _write_chunk

    i, j, r0, r1, c0, c1 = win
    window = Window(c0, r0, c1 - c0, r1 - r0)
    stack = np.empty((len(paths), r1 - r0, c1 - c0), dtype="uint16")
    for t, p in enumerate(paths):
        _vrt(p, shape, transform).read(1, window=window, out=stack[t])
    key = f"0.{i}.{j}"
    _write_chunk(root, key, reduce_kernel(stack, "median", nodata)[None], (1, CHUNK, CHUNK), np.float32(np.nan), _enc())
    return key


def bound(job: Job) -> Steps:
    from benchmarks.bounds import _create, _pool_map, _read_back, _windows

    steps = Steps()
    with steps.step("open"):
        shape, transform = grid(job.paths[0])
        root = _create(os.path.join(job.out, "reproject.zarr"), (1, *shape), (1, CHUNK, CHUNK), "float32", np.nan)
        windows = _windows(*shape, CHUNK)
    with steps.step("compute_write"):
        chunk = partial(_bound_chunk, tuple(job.paths), shape, transform, job.nodata, root)
        keys = _pool_map(chunk, windows)
    with steps.step("read_back"):
        steps.checksum = _read_back(root, keys, "float32")
    steps.extra["chunks"] = [CHUNK, CHUNK]
    return steps


# --- pyr ---------------------------------------------------------------------------


def pyr_pipeline(job: Job) -> Steps:
    import pyr

    steps = Steps()
    store = os.path.join(job.out, "reproject.zarr")
    with steps.step("open"):
        shape, transform = grid(job.paths[0])
        target = pyr.GeoBox(shape, transform, CRS)
        cube = pyr.read_cube(list(job.paths), times=times(len(job.paths)), geobox=target, resampling=RESAMPLING)
        median = pyr.reduce_time(cube, "median")
        delayed = pyr.write_zarr(median, store, compute=False)
    steps.extra["chunks"] = [int(c[0]) for c in cube.data.chunks[2:]]
    return steps.write_and_read_back(delayed, lambda: dask_checksum(pyr.read_zarr(store).data))


# --- odc-stac ------------------------------------------------------------------------


def _items(paths: tuple[str, ...]) -> list[Any]:
    """STAC items of the files (one B04 asset each, ``proj`` and ``raster`` extensions), as a catalogue holds them."""
    import pystac
    import rasterio
    from rasterio.warp import transform_bounds, transform_geom
    from shapely.geometry import box, mapping

    with rasterio.open(paths[0]) as ds:  # the files share one grid: one header describes all
        crs, bounds, shape, transform, nodata = ds.crs, ds.bounds, ds.shape, ds.transform, ds.nodata
    footprint = transform_geom(crs, "EPSG:4326", mapping(box(*bounds)))
    lonlat = transform_bounds(crs, "EPSG:4326", *bounds, densify_pts=21)
    items = []
    for p, when in zip(paths, times(len(paths)), strict=True):
        item = pystac.Item(
            id=os.path.basename(p).rsplit(".", 1)[0],
            geometry=footprint,
            bbox=list(lonlat),
            datetime=when,
            properties={"proj:code": f"EPSG:{crs.to_epsg()}", "proj:shape": list(shape)},
            stac_extensions=[
                "https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
            ],
        )
        item.add_asset(
            "B04",
            pystac.Asset(
                href=p,
                media_type=pystac.MediaType.COG,
                roles=["data"],
                extra_fields={
                    "proj:transform": list(transform)[:6],
                    "raster:bands": [{"nodata": nodata, "data_type": "uint16"}],
                },
            ),
        )
        items.append(item)
    return items


def _masked_median(cube: Any, nodata: Any) -> Any:
    """xarray's median over ``time`` of ``cube`` (dask-backed), nodata skipped, float32."""
    return cube.astype("float32").where(cube != nodata).chunk(time=-1).median("time", skipna=True)


def odc_stac(job: Job) -> Steps:
    import odc.stac
    from odc.geo.geobox import GeoBox

    from benchmarks.pipelines_rioxarray import _read_back, _write

    steps = Steps()
    store = os.path.join(job.out, "reproject.zarr")
    with steps.step("open"):
        shape, transform = grid(job.paths[0])
        items = _items(job.paths)
        ds = odc.stac.load(
            items,
            bands=["B04"],
            geobox=GeoBox(shape, transform, CRS),
            chunks={"x": XCHUNK, "y": XCHUNK},
            resampling=RESAMPLING,
        )
        median = _masked_median(ds["B04"], job.nodata)
        delayed = _write(median, store)
    steps.extra["chunks"] = [XCHUNK, XCHUNK]
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


# --- rioxarray -----------------------------------------------------------------------


def rioxarray_pipeline(job: Job) -> Steps:
    import pandas as pd
    import rioxarray
    import xarray as xr
    from rasterio.enums import Resampling

    from benchmarks.pipelines_rioxarray import _read_back, _write

    steps = Steps()
    store = os.path.join(job.out, "reproject.zarr")
    with steps.step("open"):
        shape, transform = grid(job.paths[0])
    with steps.step("reproject"):  # rio.reproject is eager: each date is read and warped here
        dates = []
        for p in job.paths:
            with rioxarray.open_rasterio(p) as a:
                dates.append(a.rio.reproject(CRS, shape=shape, transform=transform, resampling=Resampling[RESAMPLING]))
    with steps.step("build"):
        cube = xr.concat(dates, dim=pd.Index(times(len(dates)), name="time"), join="override", coords="minimal")
        cube = cube.chunk({"time": -1, "band": 1, "y": XCHUNK, "x": XCHUNK})
        median = _masked_median(cube, job.nodata).rio.write_crs(CRS)
        delayed = _write(median, store)
    steps.extra["chunks"] = [XCHUNK, XCHUNK]
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


IMPLS: dict[str, Callable[[Job], Steps]] = {
    "bound": bound,
    "pyr": pyr_pipeline,
    "odc-stac": odc_stac,
    "rioxarray": rioxarray_pipeline,
}


def available(impl: str) -> str | None:
    """Why ``impl`` cannot run here (a package missing), or ``None``."""
    import importlib

    needs = {"odc-stac": ("odc.stac", "odc.geo", "pystac", "shapely"), "rioxarray": ("rioxarray", "xarray")}
    for mod in needs.get(impl, ()):
        try:
            importlib.import_module(mod)
        except ImportError as err:
            return f"{impl} needs {mod}: {err}"
    return None
