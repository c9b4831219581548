"""``read_cube(sources, geobox=..., group_by=...)``: sources on any grids read onto one grid.

The real case: the gdalcubes Landsat series (19 scenes, 3 path/rows, 38
distinct grids), band 4 of every scene onto one grid from
``GeoBox.from_bbox``, against ``rasterio.warp.reproject`` of each scene and,
grouped by date, the first valid pixel of those (``rasterio.merge``'s
``method="first"``).
"""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
import rasterio
from _warp import warp_oracle
from rasterio.warp import transform_bounds
from servers import FAST, serve

import pyr
from pyr import GeoBox, GridMismatch, InvalidArgument
from pyr.io import warp_read
from pyr.io.cube_warp import group_sources
from pyr.io.tiff import source_spec
from pyr.types import parse_times

pytest_plugins = ["conftest_cloud"]


@pytest.fixture(scope="module")
def series(real_data):
    """(B4 paths in date order, their dates, a 3 km EPSG:3857 grid over all of them)."""
    folder = real_data / "landsat8_l1tp_ny2018_gdalcubes"
    paths = sorted(folder.glob("*/*_B4.TIF"), key=lambda p: (p.name.split("_")[3], p.name))
    dates = [p.name.split("_")[3] for p in paths]
    boxes = []
    for p in paths:
        with rasterio.open(p) as ds:
            boxes.append(transform_bounds(ds.crs, "EPSG:4326", *ds.bounds))
    west, south = min(b[0] for b in boxes), min(b[1] for b in boxes)
    east, north = max(b[2] for b in boxes), max(b[3] for b in boxes)
    geobox = GeoBox.from_bbox((west, south, east, north), crs="EPSG:3857", resolution=4000)
    return paths, dates, geobox


def _first_valid(blocks):
    out = blocks[0].copy()
    for b in blocks[1:]:
        out[out == 0] = b[out == 0]
    return out


def test_series_on_38_grids_onto_one_grid(series):
    paths, dates, geobox = series
    assert len(paths) == 19
    with pytest.raises(GridMismatch):  # without a geobox the grids must match (checked by the tasks)
        pyr.read_cube(paths, times=dates).data.compute()
    warp_read._HEADERS.clear()
    whole = pyr.read_cube(paths, times=dates, geobox=geobox, nodata=0, chunks=geobox.shape)
    assert not warp_read._HEADERS  # only the first source was opened, for its header (not cached)
    assert whole.geobox == geobox
    assert whole.shape[0] == 19
    assert whole.nodata == 0
    got = whole.data.compute()
    for t, p in enumerate(paths):
        np.testing.assert_array_equal(got[t, 0], warp_oracle(p, geobox), err_msg=p.name)
    # small chunks: each date is the lazy warped read of its file (same tasks), near GDAL's whole warp
    lazy = pyr.read_cube(paths, times=dates, geobox=geobox, nodata=0, chunks=(40, 40)).data.compute()
    for t, p in enumerate(paths):
        one = pyr.read(p, geobox=geobox, nodata=0, chunks=(40, 40)).data.compute()
        np.testing.assert_array_equal(lazy[t], one)
    assert (lazy != got).mean() < 0.05


def test_group_by_date_mosaics_the_scenes_of_a_day(series):
    paths, dates, geobox = series
    cube = pyr.read_cube(paths, times=dates, geobox=geobox, nodata=0, group_by="date", chunks=geobox.shape)
    days = sorted(set(dates))
    assert cube.shape[0] == len(days) == 17
    np.testing.assert_array_equal(cube.times, parse_times(days))
    got = cube.data.compute()
    for t, day in enumerate(days):
        members = [p for p, d in zip(paths, dates, strict=True) if d == day]
        expected = _first_valid([warp_oracle(p, geobox) for p in members])
        np.testing.assert_array_equal(got[t, 0], expected, err_msg=day)
    two = [days.index(d) for d in days if dates.count(d) == 2]
    assert len(two) == 2
    for t in two:  # the second scene filled cells the first does not cover
        members = [p for p, d in zip(paths, dates, strict=True) if d == days[t]]
        assert ((warp_oracle(members[0], geobox) == 0) & (got[t, 0] != 0)).any()


def test_solar_day_reads_headers_and_shifts_by_longitude(series):
    paths, dates, _ = series
    specs = [source_spec(p) for p in paths]
    # about 74 degrees west: local solar time is UTC - 4.9 h, so 03:00 UTC is the day before
    times = np.array([f"{d[:4]}-{d[4:6]}-{d[6:]}T03:00" for d in dates], dtype="M8[us]")
    steps, labels = group_sources(specs, times, "solar_day")
    assert len(steps) == 17
    assert labels[0] == times[0]
    utc, _ = group_sources(specs, times, "date")
    assert [sorted(s) for s in steps] == [sorted(s) for s in utc]  # same groups, days shifted alike
    # two scenes 4 h apart across UTC midnight: two UTC dates, one local solar day (UTC - 4.9 h)
    pair = np.array(["2018-04-28T02:00", "2018-04-27T22:00"], dtype="M8[us]")
    assert len(group_sources(specs[:2], pair, "date")[0]) == 2
    steps, labels = group_sources(specs[:2], pair, "solar_day")
    assert steps == [[0, 1]]
    assert labels[0] == pair[1]  # labelled with the earliest time; the given order still decides the mosaic
    with pytest.raises(InvalidArgument, match="times"):
        group_sources(specs, None, "date")
    with pytest.raises(InvalidArgument, match="group_by"):
        group_sources(specs, times, "month")


def test_a_source_outside_a_chunk_is_not_read(series, monkeypatch):
    paths, dates, _ = series
    with rasterio.open(paths[0]) as ds:
        crs, (left, bottom, right, top) = ds.crs, ds.bounds
    # a 30 km square in the middle of the first scene
    cx, cy = (left + right) / 2, (bottom + top) / 2
    small = GeoBox.from_bounds((cx - 15_000, cy - 15_000, cx + 15_000, cy + 15_000), 3000, crs)
    read = []
    real = warp_read.read_window
    monkeypatch.setattr(warp_read, "read_window", lambda spec, *a: read.append(spec.name) or real(spec, *a))
    cube = pyr.read_cube(paths, times=dates, geobox=small, nodata=0, chunks=small.shape)
    cube.data.compute(scheduler="sync")
    box = transform_bounds(crs, "EPSG:4326", *small.bounds)
    inside = []
    for p in paths:
        with rasterio.open(p) as ds:
            b = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
        if b[0] < box[2] and box[0] < b[2] and b[1] < box[3] and box[1] < b[3]:
            inside.append(str(p))
    assert 0 < len(inside) < len(paths)
    assert set(read) <= set(inside)
    assert str(paths[0]) in read


def test_threads_and_processes_agree_and_the_graph_pickles(series):
    paths, dates, geobox = series
    cube = pyr.read_cube(paths[:6], times=dates[:6], geobox=geobox, nodata=0, group_by="date", chunks=64)
    graph = dict(cube.data.__dask_graph__())
    assert set(pickle.loads(pickle.dumps(graph))) == set(graph)
    threads = cube.data.compute(scheduler="threads")
    with dask.config.set(scheduler="processes", num_workers=2):
        procs = cube.data.compute()
    np.testing.assert_array_equal(threads, procs)


def test_bad_arguments(series):
    paths, dates, geobox = series
    with pytest.raises(InvalidArgument, match="nodata"):
        pyr.read_cube(paths, times=dates, geobox=geobox)  # uint16 without a nodata tag
    with pytest.raises(InvalidArgument, match="geobox"):
        pyr.read_cube(paths, times=dates, group_by="date")
    with pytest.raises(InvalidArgument, match="group_by"):
        pyr.read_cube(paths, times=dates, geobox=geobox, nodata=0, group_by="week")


def test_a_rewritten_file_is_read_with_its_new_header(tmp_path):
    utm = GeoBox.from_bounds((600_000, 5_000_000, 600_400, 5_000_400), 100, "EPSG:32631")
    first, other = tmp_path / "first.tif", tmp_path / "other.tif"
    pyr.write_tiff(pyr.Raster(np.full((1, 4, 4), 7, "uint16"), utm, nodata=0), first)
    pyr.write_tiff(pyr.Raster(np.full((1, 4, 4), 1, "uint16"), utm, nodata=0), other)
    target = utm.to_crs("EPSG:3857")
    before = pyr.read_cube([first, other], geobox=target, chunks=target.shape).data.compute(scheduler="sync")
    assert (before[1] == 1).any()
    # the same path rewritten on another grid (shifted one cell east): read with its new header
    moved = GeoBox.from_bounds((600_100, 5_000_000, 600_500, 5_000_400), 100, "EPSG:32631")
    other.unlink()
    pyr.write_tiff(pyr.Raster(np.full((1, 4, 4), 2, "uint16"), moved, nodata=0), other)
    after = pyr.read_cube([first, other], geobox=target, chunks=target.shape).data.compute(scheduler="sync")
    expected = pyr.read(other, geobox=target).data
    np.testing.assert_array_equal(after[1], expected)
    assert (after[1] == 2).any()


@pytest.mark.slow
def test_local_cluster_with_a_missing_source(series, tmp_path):
    """On a LocalCluster: equal to threads; on_error='nodata' leaves a missing source out of its day."""
    distributed = pytest.importorskip("distributed")
    paths, dates, geobox = series
    sources = [*paths[:4], tmp_path / "gone.tif"]
    times = [*dates[:4], dates[0]]
    cube = pyr.read_cube(sources, times=times, geobox=geobox, nodata=0, group_by="date", chunks=64, on_error="nodata")
    threads = cube.data.compute(scheduler="threads")
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster),
    ):
        np.testing.assert_array_equal(cube.data.compute(), threads)
    alone = pyr.read_cube(paths[:4], times=dates[:4], geobox=geobox, nodata=0, group_by="date", chunks=64)
    np.testing.assert_array_equal(threads, alone.data.compute(scheduler="threads"))


def test_over_http_only_the_first_source_is_fetched_at_call_time(http_server, cog):
    path, _ = cog
    served = [serve(http_server, path) for _ in range(4)]
    env = pyr.cloud_env(**FAST)
    geobox = pyr.read(path).geobox.to_crs("EPSG:3857", resolution=40)
    http_server.reset()
    cube = pyr.read_cube([url for _, url in served], geobox=geobox, chunks=64, env=env)
    assert http_server.requests(served[0][0]) > 0
    assert all(http_server.requests(name) == 0 for name, _ in served[1:])
    got = cube.data.compute(scheduler="threads")
    assert all(http_server.requests(name) > 0 for name, _ in served[1:])
    one = pyr.read(path, geobox=geobox, chunks=64).data.compute()
    for t in range(4):
        np.testing.assert_array_equal(got[t], one)
