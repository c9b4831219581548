"""stack: rasters of one grid -> a Cube; eager, lazy or mixed; mismatches refused by position."""

from __future__ import annotations

import math

import attrs
import dask.array as da
import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import pyr
from pyr import Cube, GeoBox, GridMismatch, InvalidArgument, Raster, stack
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import cubes


@given(cube=cubes(lazy=False), data=st.data())
def test_stack_of_dates_is_the_cube(cube, data):
    lazy_flags = data.draw(st.lists(st.booleans(), min_size=cube.ntimes, max_size=cube.ntimes))
    rasters = []
    for t, lazy in enumerate(lazy_flags):
        values = cube.data[t]
        if lazy:
            values = da.from_array(values, chunks=(1, *(max(1, s // 2) for s in values.shape[1:])))
        rasters.append(Raster(values, cube.geobox, nodata=cube.nodata, bands=cube.bands))
    with raise_if_dask_computes():
        result = stack(rasters, times=cube.times)
    assert result.is_lazy == any(lazy_flags)
    if result.is_lazy:
        assert set(result.data.chunks[0]) == {1}  # one date per chunk
    assert_raster_equal(result, cube)


def raster(value: int = 1, **changes) -> Raster:
    gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    r = Raster(np.full((2, 2, 4), value, "uint16"), gb, nodata=0, bands=("red", "nir"))
    return attrs.evolve(r, **changes)


@pytest.mark.parametrize(
    ("other", "what"),
    [
        (raster(geobox=GeoBox.from_bounds((10, 0, 50, 20), 10, "EPSG:32631")), "grid"),
        (raster(geobox=GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32632")), "grid"),
        (raster(data=np.ones((2, 2, 4), "int16")), "dtype int16"),
        (raster(nodata=65535), "nodata 65535"),
        (raster(nodata=None), "nodata None"),
        (raster(bands=("nir", "red")), "bands"),
    ],
)
def test_mismatch_names_the_first_offender_by_position(other, what):
    rasters = [raster(1), raster(2), other, raster(3, nodata=7)]
    with pytest.raises(GridMismatch, match=f"raster 2 .*{what}"):
        stack(rasters)


def test_nan_nodata_matches_nan_nodata():
    gb = GeoBox.from_bounds((0, 0, 20, 10), 10, None)
    a = Raster(np.array([[[1.0, math.nan]]], "float32"), gb, nodata=math.nan)
    cube = stack([a, a])
    assert math.isnan(cube.nodata)
    assert cube.times is None


def test_bad_arguments():
    with pytest.raises(InvalidArgument, match="at least one"):
        stack([])
    with pytest.raises(InvalidArgument, match="sequence of Rasters"):
        stack(raster())
    with pytest.raises(InvalidArgument, match="item 1 is a ndarray"):
        stack([raster(), np.zeros((2, 2, 4))])
    with pytest.raises(InvalidArgument, match="times has 1 value"):
        stack([raster(), raster()], times=["2024-01-01"])


def test_curried_in_a_pipe():
    cube = pipe([raster(1), raster(2)], stack(times=["2024-01-01", "2024-02-01"]))
    assert isinstance(cube, Cube)
    assert cube.data[:, 0, 0, 0].tolist() == [1, 2]
    assert str(cube.times[1])[:10] == "2024-02-01"


def test_real_sentinel2_bands_of_different_resolution_are_refused(real_data):
    folder = real_data / "s2l2a_cog_29RKH_20200219"
    b04 = pyr.read(folder / "B04.tif", chunks="auto")
    b08 = pyr.read(folder / "B08.tif", chunks="auto")
    b11 = pyr.read(folder / "B11.tif", chunks="auto")
    with pytest.raises(GridMismatch, match=r"raster 2 .*grid.*549"):
        stack([b04, b08, b11])
    cube = stack([b04, b08])  # same 10 m grid: fine, and lazy
    assert cube.is_lazy
    with rasterio.open(folder / "B08.tif") as src:
        np.testing.assert_array_equal(cube.data[1].compute(), src.read())
