"""map_blocks keeps the dtype its kernel returns, checks its options up front and never hides a kernel's error."""

from __future__ import annotations

import pickle

import dask
import dask.array as da
import numpy as np
import pytest
from dask.base import tokenize

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr.testing import assert_raster_equal

GB = GeoBox.from_bounds((0, 0, 80, 60), 10, "EPSG:32631")
VALUES = np.arange(1, 49, dtype="uint16").reshape(1, 6, 8) * 500


def to_reflectance(a):
    """SPEC's own kernel."""
    return (a.astype("float32") / 10000).clip(0, 1)


def _no_compute(dsk, keys, **kwargs):
    raise AssertionError("something was computed")


@pytest.fixture
def eager():
    return Raster(VALUES, GB, nodata=0)


@pytest.fixture
def lazy():
    return Raster(da.from_array(VALUES, chunks=(1, 3, 5)), GB, nodata=0)


def test_the_kernel_dtype_is_kept_eagerly(eager):
    got = pyr.map_blocks(to_reflectance, eager)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.data, to_reflectance(VALUES))
    assert got.data.max() > 0  # it was cast to uint16 (all 0) before


def test_the_kernel_dtype_is_known_lazily_without_computing_and_lazy_equals_eager(eager, lazy):
    with dask.config.set(scheduler=_no_compute):
        got = pyr.map_blocks(to_reflectance, lazy)
    assert got.is_lazy
    assert got.dtype == np.float32
    assert got.data.compute().dtype == np.float32
    assert_raster_equal(got, pyr.map_blocks(to_reflectance, eager))


@pytest.mark.parametrize("depth", [0, 1])
def test_cubes_keep_the_kernel_dtype_lazy_and_eager(eager, lazy, depth):
    eager_cube = pyr.stack([eager, eager], times=["2024-06-12", "2024-07-12"])
    lazy_cube = pyr.stack([lazy, lazy], times=["2024-06-12", "2024-07-12"])
    got = pyr.map_blocks(to_reflectance, lazy_cube, depth=depth)
    assert isinstance(got, Cube)
    assert got.dtype == np.float32
    assert_raster_equal(got, pyr.map_blocks(to_reflectance, eager_cube, depth=depth))


def test_dtype_casts_when_asked(eager, lazy):
    for r in (eager, lazy):
        got = pyr.map_blocks(to_reflectance, r, dtype="float64")
        assert got.dtype == np.float64
        np.testing.assert_allclose(np.asarray(got.data), to_reflectance(VALUES))


def _dtype_depends_on_width(a):
    return a.astype("float32") if a.shape[-1] > 3 else a.astype("float64")


def test_a_block_of_another_dtype_raises_naming_the_kernel(eager, lazy):
    # Lazily, the trial block (2 wide) says float64; the first chunk (5 wide) returns float32.
    got = pyr.map_blocks(_dtype_depends_on_width, lazy)
    assert got.dtype == np.float64
    with pytest.raises(InvalidArgument, match=r"_dtype_depends_on_width returned a float32 block.*dtype="):
        got.data.compute()
    # Eagerly, the trial block (the first 2 x 2 cells) says float64, the whole array float32.
    with pytest.raises(InvalidArgument, match=r"_dtype_depends_on_width returned a float32 block"):
        pyr.map_blocks(_dtype_depends_on_width, eager)
    # dtype= says what the output is: every block is cast to it.
    assert pyr.map_blocks(_dtype_depends_on_width, lazy, dtype="float32").data.compute().dtype == np.float32


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"dtype": "bad"}, "dtype"),
        ({"dtype": "complex64"}, "dtype"),
        ({"dtype": object}, "dtype"),
        ({"bands": 3}, "bands"),
        ({"bands": ()}, "bands"),
        ({"depth": True}, "depth"),
        ({"depth": 1.5}, "depth"),
        ({"depth": -1}, "depth"),
        ({"nodata": "x"}, "nodata"),
    ],
)
def test_bad_options_raise_at_once_naming_the_argument(eager, lazy, options, argument):
    for r in (eager, lazy):
        with pytest.raises(InvalidArgument, match=argument):
            pyr.map_blocks(np.negative, r, **options)
        with pytest.raises(InvalidArgument, match=argument):
            pyr.map_blocks(np.negative, **options)(r)


def test_func_must_be_callable(eager):
    with pytest.raises(InvalidArgument, match="func"):
        pyr.map_blocks("np.negative", eager)


def test_a_kernel_returning_objects_is_refused(eager):
    with pytest.raises(InvalidArgument, match="object"):
        pyr.map_blocks(lambda a: a.astype(object), eager)


def test_a_kernel_error_propagates_as_it_is_also_for_lazy_inputs(lazy):
    def buggy(a):
        return a.reshape(-1, 7)  # a bug: ValueError from numpy

    with pytest.raises(ValueError, match="reshape") as info:
        pyr.map_blocks(buggy, lazy)
    assert not isinstance(info.value, InvalidArgument)
    assert any("dtype=" in note for note in info.value.__notes__)

    def typo(a):
        return a.astype("float32") + None

    with pytest.raises(TypeError):
        pyr.map_blocks(typo, lazy)
    # With dtype= there is no trial call: the error comes when the block runs.
    later = pyr.map_blocks(typo, lazy, dtype="float32")
    with pytest.raises(TypeError):
        later.data.compute()


def test_band_count_changes_with_bands(eager, lazy):
    def two(a):
        return np.concatenate([a, a]).astype("float32")

    for r in (eager, lazy):
        got = pyr.map_blocks(two, r, bands=("a", "b"))
        assert got.bands == ("a", "b")
        assert got.dtype == np.float32
        assert np.asarray(got.data).shape == (2, 6, 8)


def test_the_checked_kernel_pickles_and_tokenizes():
    from pyr.ops.map_blocks import _SameDtype

    checked = _SameDtype(np.negative, np.dtype("float32"))
    back = pickle.loads(pickle.dumps(checked))
    assert back.func is np.negative
    assert back.dtype == np.float32
    assert tokenize(back) == tokenize(checked)
    assert tokenize(checked) != tokenize(_SameDtype(np.negative, np.dtype("float64")))


def test_one_band_name_as_a_string(eager):
    assert pyr.map_blocks(np.negative, eager, bands="red").bands == ("red",)
