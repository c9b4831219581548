"""Scale and offset recorded on Raster and Cube, applied by ``rescale`` with no factors, kept where units are."""

from __future__ import annotations

import math
import pickle

import dask.array as da
import numpy as np
import pytest

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr.testing import assert_raster_equal

GB = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
RAW = np.array([[[0, 10000], [20000, 30000]], [[5, 6], [7, 0]]], "uint16")
RAW = np.pad(RAW, ((0, 0), (0, 0), (0, 2)))  # (2, 2, 4): two bands on GB


def landsat() -> Raster:
    return Raster(RAW, GB, nodata=0, scales=(2.75e-5, 2.0), offsets=(-0.2, 1.0))


def test_factors_are_one_per_band_and_identity_is_none() -> None:
    r = landsat()
    assert r.scales == (2.75e-5, 2.0)
    assert r.offsets == (-0.2, 1.0)
    only_scale = Raster(RAW, GB, scales=[1e-4, 1e-4])
    assert only_scale.offsets == (0.0, 0.0)
    assert Raster(RAW, GB, scales=[1, 1], offsets=[0, 0]).scales is None
    assert "scales=(2.75e-05, 2.0)" in repr(r)


@pytest.mark.parametrize(
    ("scales", "offsets", "match"),
    [
        ([1e-4], None, "1 factor"),
        (["a", "b"], None, "sequence of numbers"),
        ([math.nan, 1.0], None, "finite"),
        (None, [0.0, 1.0, 2.0], "3 factor"),
    ],
)
def test_bad_factors_name_the_field(scales: object, offsets: object, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Raster(RAW, GB, scales=scales, offsets=offsets)


@pytest.mark.parametrize("lazy", [False, True])
def test_rescale_without_factors_applies_the_recorded_ones(lazy: bool) -> None:
    r = landsat()
    if lazy:
        r = Raster(da.from_array(RAW, chunks=(1, 1, 2)), GB, nodata=0, scales=r.scales, offsets=r.offsets)
    out = pyr.rescale(r)
    assert out.is_lazy == lazy
    assert out.scales is None
    assert out.offsets is None
    expected = (
        RAW.astype("float32") * np.float32([2.75e-5, 2.0])[:, None, None] + np.float32([-0.2, 1.0])[:, None, None]
    )
    expected[RAW == 0] = np.nan
    np.testing.assert_array_equal(pyr.compute(out).data, expected)


def test_given_factors_win_over_recorded_ones() -> None:
    out = pyr.rescale(landsat(), scale=1e-4)
    expected = RAW.astype("float32") * np.float32(1e-4)
    expected[RAW == 0] = np.nan
    np.testing.assert_array_equal(out.data, expected)


def test_cube_factors_survive_pickle_stack_and_same_unit_reductions() -> None:
    r = landsat()
    cube = pyr.stack([r, r], times=["2024-01-01", "2024-01-02"])
    assert (cube.scales, cube.offsets) == (r.scales, r.offsets)
    back = pickle.loads(pickle.dumps(cube))
    assert_raster_equal(back, cube)
    assert pyr.reduce_time(cube, "median").scales == r.scales
    assert pyr.reduce_time(cube, "sum").scales is None
    assert pyr.reduce_time(cube, "count").scales is None
    # The mean of the raw values scaled equals the mean of the scaled values.
    np.testing.assert_allclose(
        pyr.rescale(pyr.reduce_time(cube, "mean")).data,
        pyr.reduce_time(pyr.rescale(cube), "mean").data,
        rtol=1e-6,
    )


def test_stack_and_mosaic_refuse_different_factors() -> None:
    a = landsat()
    b = Raster(RAW, GB, nodata=0)
    with pytest.raises(pyr.GridMismatch, match="scales/offsets"):
        pyr.stack([a, b])
    with pytest.raises(pyr.GridMismatch, match="scales/offsets"):
        pyr.mosaic([a, b])
    assert pyr.mosaic([a, a]).scales == a.scales


def test_map_blocks_output_has_no_factors() -> None:
    out = pyr.map_blocks(lambda a: a // 2, landsat())
    assert out.scales is None


def test_reproject_keeps_factors() -> None:
    r = landsat()
    assert pyr.reproject(r, GB.to_crs("EPSG:3857")).scales == r.scales


def test_cube_accepts_factors() -> None:
    c = Cube(RAW[None], GB, nodata=0, scales=[1.0, 2.0])
    assert c.scales == (1.0, 2.0)
    assert c.offsets == (0.0, 0.0)
