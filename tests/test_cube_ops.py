"""rescale and map_blocks on cubes: date by date, lazy == eager, times kept."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

import pyr
from pyr import Cube, map_blocks, rescale
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import cubes, gappy_cubes


@given(cube=gappy_cubes(lazy=True), scale=st.sampled_from([1.0, 1e-4, 2.5]), offset=st.sampled_from([0.0, -1.0]))
def test_rescale_cube_lazy_equals_eager_equals_numpy(cube, scale, offset):
    with raise_if_dask_computes():
        lazy = rescale(cube, scale=scale, offset=offset)
    assert isinstance(lazy, Cube)
    assert lazy.is_lazy
    eager = rescale(pyr.compute(cube), scale=scale, offset=offset)
    assert_raster_equal(lazy, eager)
    values = np.asarray(pyr.compute(cube).data)
    expected = values.astype("float32")
    if scale != 1.0:
        expected = expected * np.float32(scale)
    if offset != 0.0:
        expected = expected + np.float32(offset)
    if cube.nodata is not None and not math.isnan(cube.nodata):
        expected[values == cube.nodata] = np.nan
    np.testing.assert_array_equal(eager.data, expected)
    np.testing.assert_array_equal(lazy.times, cube.times)
    assert math.isnan(lazy.nodata)


def box3(block: np.ndarray) -> np.ndarray:
    """3x3 neighbourhood sum of one (band, y, x) block, edges padded with zeros."""
    padded = np.pad(block.astype("float64"), ((0, 0), (1, 1), (1, 1)))
    out = np.zeros(block.shape, "float64")
    for dy in range(3):
        for dx in range(3):
            out += padded[:, dy : dy + block.shape[1], dx : dx + block.shape[2]]
    return out


@given(cube=cubes(lazy=True, dtype="int16", max_side=12))
def test_map_blocks_cube_with_halo_lazy_equals_eager_equals_per_date(cube):
    lazy = map_blocks(box3, cube, dtype="float64", depth=1)
    assert isinstance(lazy, Cube)
    eager = map_blocks(box3, pyr.compute(cube), dtype="float64", depth=1)
    assert_raster_equal(lazy, eager)
    values = np.asarray(pyr.compute(cube).data)
    expected = np.stack([box3(values[t]) for t in range(cube.ntimes)])
    np.testing.assert_array_equal(eager.data, expected)


@given(cube=cubes(lazy=True, max_side=10))
def test_map_blocks_two_cubes(cube):
    lazy = map_blocks(lambda a, b: a.astype("float64") * 2 - b, cube, cube, dtype="float64")
    values = np.asarray(lazy.data.compute())
    np.testing.assert_array_equal(values, np.asarray(cube.data.compute(), "float64"))
    np.testing.assert_array_equal(lazy.times, cube.times)
