"""``times`` strings: ISO 8601 and the compact forms of satellite file names; nothing else, and no date ever wraps."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from _tiffs import write_tif

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster

GB = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")


def _d(text):
    return np.datetime64(text, "us")


@pytest.fixture
def rasters():
    a = Raster(np.ones((1, 2, 4), "uint16"), GB, nodata=0)
    return [a, a]


@pytest.mark.parametrize(
    ("times", "expected"),
    [
        (["20240612", "20240712"], ["2024-06-12", "2024-07-12"]),  # main gave 2181-09-14 and 1697-02-23
        (["20240612T103021", "20240712T000001"], ["2024-06-12T10:30:21", "2024-07-12T00:00:01"]),
        (["2024-06-12", "2024-07-12"], ["2024-06-12", "2024-07-12"]),
        (["2024-06-12T10:30:21", "2024-06-12 10:30:22"], ["2024-06-12T10:30:21", "2024-06-12T10:30:22"]),
        (["2024-06-12T10:30:21Z", "2024-06-12T10:30:21.5+02:00"], ["2024-06-12T10:30:21", "2024-06-12T08:30:21.5"]),
        (["2300-01-01", "1600-06-30"], ["2300-01-01", "1600-06-30"]),  # main gave 1715 for 2300 (ns wraps)
        ([dt.date(2024, 6, 12), dt.datetime(2024, 7, 12, 10, tzinfo=dt.UTC)], ["2024-06-12", "2024-07-12T10"]),
        ([np.datetime64("2024-06-12"), np.datetime64("2300-01-01T00:00:00", "s")], ["2024-06-12", "2300-01-01"]),
        (np.array(["2024-06-12", "2300-01-01"], "datetime64[D]"), ["2024-06-12", "2300-01-01"]),
        (np.array(["20240612", "2024-07-12T10:00Z"]), ["2024-06-12", "2024-07-12T10:00"]),
    ],
)
def test_stack_reads_dates_right(rasters, times, expected):
    cube = pyr.stack(rasters, times=times)
    assert cube.times.dtype == np.dtype("datetime64[us]")
    np.testing.assert_array_equal(cube.times, np.array([_d(e) for e in expected]))


@pytest.mark.parametrize(
    ("times", "culprit"),
    [
        ([20240612, 20240712], "20240612"),  # main gave 1970-01-01 plus 20 ms
        ([1.5, 2.5], "1.5"),
        ([True, False], "True"),
        (np.array([20240612, 20240712]), "20240612"),
        (["2024-13-01", "2024-01-01"], "2024-13-01"),
        (["2024-06-12", "yesterday"], "yesterday"),
        (["2024/06/12", "2024-06-13"], "2024/06/12"),
        (["240612", "240613"], "240612"),
        (["2024-06-12", None], "None"),
        (["2024-06-12", np.datetime64("NaT")], "NaT"),
        ("2024-06-12", "2024-06-12"),
        (np.array(["400000-01-01", "2024-01-01"], "datetime64[D]"), "400000-01-01"),
    ],
)
def test_anything_else_is_invalid_naming_times_and_the_value(rasters, times, culprit):
    with pytest.raises(InvalidArgument, match="times") as info:
        pyr.stack(rasters, times=times)
    assert culprit in str(info.value)


def test_the_count_must_match(rasters):
    with pytest.raises(InvalidArgument, match="times has 1 value"):
        pyr.stack(rasters, times=["2024-06-12"])


def test_times_are_read_only_and_the_cube_validates_them_too():
    from pyr.types import parse_times

    times = parse_times(["20240612"])
    with pytest.raises(ValueError, match="read-only"):
        times[0] = np.datetime64("2000-01-01")
    with pytest.raises(InvalidArgument, match="times"):
        Cube(np.zeros((1, 1, 2, 4)), GB, times=[20240612])
    cube = Cube(np.zeros((1, 1, 2, 4)), GB, times=["2300-01-01"])
    assert cube.times[0] == _d("2300-01-01")


def test_read_cube_takes_compact_and_iso_strings(tmp_path):
    paths = [
        write_tif(tmp_path / f"S2_{d}.tif", np.full((1, 2, 4), i + 1, "uint16"), geobox=GB, nodata=0, tiled=False)
        for i, d in enumerate(["20240612T103021", "20240712T103019"])
    ]
    cube = pyr.read_cube(paths, chunks=2, times=["20240612T103021", "2024-07-12T10:30:19Z"])
    np.testing.assert_array_equal(cube.times, [_d("2024-06-12T10:30:21"), _d("2024-07-12T10:30:19")])
    from_names = pyr.read_cube(paths, chunks=2, times=lambda p: str(p).rsplit("_", 1)[1][:-4])
    np.testing.assert_array_equal(from_names.times, cube.times)
    with pytest.raises(InvalidArgument, match=r"times.*20240612"):
        pyr.read_cube(paths, chunks=2, times=[20240612, 20240712])


def test_a_cube_after_2262_round_trips_through_zarr(tmp_path):
    a = Raster(np.arange(8, dtype="uint16").reshape(1, 2, 4), GB, nodata=0)
    cube = pyr.stack([a, a], times=["2024-06-12T10:30:21Z", "2300-01-01"])
    pyr.write_zarr(cube, tmp_path / "c.zarr")
    back = pyr.read_zarr(tmp_path / "c.zarr", chunks=None)
    np.testing.assert_array_equal(back.times, cube.times)
    xr = pytest.importorskip("xarray")
    # xarray decodes to nanoseconds unless asked for another unit (its own limit, not the store's).
    with xr.open_zarr(tmp_path / "c.zarr", decode_times=xr.coders.CFDatetimeCoder(time_unit="s")) as ds:
        assert str(ds.time.values[1])[:10] == "2300-01-01"
