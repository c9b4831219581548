"""reduce_time: lazy == eager == numpy's nan-reductions over a masked float copy, under any chunking.

The reference below is written independently of pyr's kernel: a float64 copy
with NaN at nodata, reduced by numpy's ``nan*`` functions.
"""

from __future__ import annotations

import math
import pickle
import warnings

import dask
import dask.array as da
import numpy as np
import pytest
from dask._task_spec import _execute_subgraph
from dask.callbacks import Callback
from hypothesis import given
from hypothesis import strategies as st
from toolz import pipe

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster, reduce_time
from pyr.ops.reduce import HOWS, max_cells
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import gappy_cubes

NUMPY = {
    "mean": np.nanmean,
    "median": np.nanmedian,
    "min": np.nanmin,
    "max": np.nanmax,
    "sum": np.nansum,
    "std": np.nanstd,
}


def masked(cube: Cube) -> np.ndarray:
    values = np.asarray(cube.data.compute() if cube.is_lazy else cube.data)
    x = values.astype("float64")
    if cube.nodata is not None and not (isinstance(cube.nodata, float) and math.isnan(cube.nodata)):
        x[values == cube.nodata] = np.nan
    return x


def reference(cube: Cube, how: str) -> tuple[np.ndarray, np.ndarray]:
    """numpy's answer (float64) and the number of valid dates per cell."""
    x = masked(cube)
    n = (~np.isnan(x)).sum(axis=0)
    if how == "count":
        return n, n
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells: numpy warns, gives NaN
        out = NUMPY[how](x, axis=0)
    out = np.where(n == 0, np.nan, out)
    return out, n


def spread(a: np.ndarray) -> np.ndarray:
    """A user reduction: max - min over time, NaN-skipping (fmin/fmax do not warn on all-NaN)."""
    return np.fmax.reduce(a, axis=0) - np.fmin.reduce(a, axis=0)


def check_against_numpy(result: Raster, cube: Cube, how: str) -> None:
    expected, n = reference(cube, how)
    got = np.asarray(result.data.compute() if result.is_lazy else result.data)
    assert got.shape == expected.shape
    assert result.geobox == cube.geobox
    assert result.bands == cube.bands
    if how == "count":
        assert got.dtype == np.int32
        assert result.nodata is None
        np.testing.assert_array_equal(got, expected)
    elif how in ("min", "max"):
        assert got.dtype == cube.dtype
        valid = n > 0
        np.testing.assert_array_equal(got[valid].astype("float64"), expected[valid])
        empty = got[~valid]
        if cube.nodata is None and cube.dtype.kind != "f":
            assert not empty.size  # every cell of an integer cube without nodata is valid
            assert result.nodata is None
        elif cube.nodata is None or math.isnan(cube.nodata):
            assert np.isnan(empty).all()
            assert math.isnan(result.nodata)
        else:
            assert (empty == cube.nodata).all()
            assert result.nodata == cube.nodata
    else:
        assert got.dtype == np.float32
        assert math.isnan(result.nodata)
        tol = {"std": 1e-4, "sum": 1e-5}.get(how, 1e-6)
        np.testing.assert_allclose(got, expected.astype("float32"), rtol=tol, atol=tol, equal_nan=True)
        assert np.isnan(got[n == 0]).all()


@pytest.mark.parametrize("how", HOWS)
@given(cube=gappy_cubes(lazy=True))
def test_lazy_equals_eager_equals_numpy(how, cube):
    lazy = reduce_time(cube, how)
    assert lazy.is_lazy
    eager = reduce_time(pyr.compute(cube), how)
    assert not eager.is_lazy
    assert_raster_equal(lazy, eager)  # same kernel: bit for bit
    check_against_numpy(eager, cube, how)


@pytest.mark.parametrize("how", ["median", "std", "max"])
@given(cube=gappy_cubes(lazy=True, max_side=12), budget=st.sampled_from(["64B", "300B", "2KiB"]))
def test_tiny_budget_splits_chunks_and_gives_the_same_answer(how, cube, budget):
    eager = reduce_time(pyr.compute(cube), how)
    with dask.config.set({"array.chunk-size": budget}):
        lazy = reduce_time(cube, how)
        eager_tiled = reduce_time(pyr.compute(cube), how)
        cells = max_cells(how, cube.ntimes, cube.count, cube.dtype)
    ys, xs = lazy.data.chunks[1:]
    assert max(ys) * max(xs) <= max(cells, 1) or (max(ys) == 1 and max(xs) == 1)
    assert_raster_equal(lazy, eager)
    assert_raster_equal(eager_tiled, eager)


@given(cube=gappy_cubes(lazy=True))
def test_callable_reduces_a_nan_masked_float_block(cube):
    lazy = reduce_time(cube, spread)
    eager = reduce_time(pyr.compute(cube), spread)
    assert lazy.dtype == np.float32
    assert_raster_equal(lazy, eager)
    x = masked(cube)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmax(x, axis=0) - np.nanmin(x, axis=0)
    np.testing.assert_allclose(eager.data, expected.astype("float32"), rtol=1e-6, equal_nan=True)


def small_cube(lazy: bool = False) -> Cube:
    gb = GeoBox.from_bounds((0, 0, 30, 20), 10, "EPSG:32631")
    data = np.array(
        [
            [[[1, 0, 7], [4, 4, 0]]],
            [[[3, 0, 0], [6, 4, 0]]],
            [[[8, 5, 0], [5, 4, 0]]],
        ],
        "uint16",
    )
    if lazy:
        data = da.from_array(data, chunks=(1, 1, 1, 2))
    return Cube(data, gb, nodata=0, times=["2024-01-01", "2024-01-11", "2024-01-21"])


def test_hand_computed_values():
    cube = small_cube(lazy=True)
    assert reduce_time(cube, "count").data.compute().tolist() == [[[3, 1, 1], [3, 3, 0]]]
    assert reduce_time(cube, "min").data.compute().tolist() == [[[1, 5, 7], [4, 4, 0]]]
    assert reduce_time(cube, "max").data.compute().tolist() == [[[8, 5, 7], [6, 4, 0]]]
    median = reduce_time(cube, "median").data.compute()
    np.testing.assert_array_equal(median, np.array([[[3, 5, 7], [5, 4, np.nan]]], "float32"))
    mean = reduce_time(cube, "mean").data.compute()
    np.testing.assert_allclose(mean, np.array([[[4, 5, 7], [5, 4, np.nan]]], "float32"))


def test_reduce_time_is_lazy_curried_and_pickles():
    cube = small_cube(lazy=True)
    with raise_if_dask_computes():
        lazy = reduce_time(cube, "median")
        curried = pipe(cube, reduce_time(how="median"))
    assert_raster_equal(curried, lazy)
    restored = pickle.loads(pickle.dumps(lazy.data))
    np.testing.assert_array_equal(restored.compute(), lazy.data.compute())
    assert reduce_time(cube).data.dtype == np.float32  # mean by default


def inputs_of(task) -> set:
    """The keys a task reads: its dependencies, and the tasks fused into it (``Task.fuse``)."""
    keys = set(task.dependencies)
    if getattr(task, "func", None) is _execute_subgraph:
        keys |= set(task.args[0])
    return keys


def test_each_task_takes_one_spatial_chunk_of_every_date():
    cube = small_cube(lazy=True)
    result = reduce_time(cube, "median")
    graph = dict(result.data.__dask_graph__())
    read_keys = set(dask.core.flatten(cube.data.__dask_keys__()))
    for key in dask.core.flatten(result.data.__dask_keys__()):
        deps = inputs_of(graph[key]) & read_keys
        _, _, i, j = key
        assert {(d[0], d[3], d[4]) for d in deps} == {(cube.data.name, i, j)}  # one spatial chunk
        assert sorted(d[1] for d in deps) == [0, 1, 2]  # every date, no rechunk of time
    assert result.data.chunks == ((1,), (1, 1), (2, 1))  # spatial chunks kept (they fit the budget)


class _Shipped(Callback):
    """Bytes of task results that other tasks consume: what the processes scheduler ships through the parent."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = set(outputs)
        self.bytes = 0
        self.tasks = 0

    def _posttask(self, key, result, dsk, state, worker_id):
        name = key[0] if isinstance(key, tuple) else key
        if key not in self.outputs and not name.startswith("finalize-"):  # finalize: compute's concatenation
            self.tasks += 1
            self.bytes += getattr(result, "nbytes", 0)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    from pyr.testing.synth import make_series

    return make_series(tmp_path_factory.mktemp("series"), size=256, dates=4, block=64)


@pytest.mark.parametrize("how", [*HOWS, "rescaled mean"])
def test_reducing_a_read_cube_ships_no_date_block_between_tasks(series, how):
    """Each reduce task reads its chunk of every date itself: only reduced chunks leave a task.

    Before, a reduce task received its inputs from separate read tasks, so on the processes
    scheduler every date's block went to the main process and on to the reducing worker (the
    whole cube passed through the main process: 2.7 GB there for a 2.3 GB cube's median).
    """
    cube = pyr.read_cube(series, chunks=64)
    if how == "rescaled mean":
        cube, how = pyr.rescale(cube, scale=1e-4), "mean"
    result = reduce_time(cube, how)
    graph = dict(result.data.__dask_graph__())
    outputs = set(dask.core.flatten(result.data.__dask_keys__()))
    assert set(graph) == outputs  # no read (or rescale) task left on its own
    for key in outputs:
        assert not graph[key].dependencies
    shipped = _Shipped(outputs)
    with shipped, dask.config.set(scheduler="sync"):
        got = pyr.compute(result)
    assert (shipped.tasks, shipped.bytes) == (0, 0)
    assert_raster_equal(got, reduce_time(pyr.compute(cube), how))


def test_empty_cube():
    gb = GeoBox.from_bounds((0, 0, 20, 10), 10, "EPSG:32631")
    floats = Cube(np.zeros((0, 1, 1, 2), "float32"), gb)
    assert np.isnan(reduce_time(floats, "mean").data).all()
    assert np.isnan(reduce_time(floats, "median").data).all()
    assert np.isnan(reduce_time(floats, "max").data).all()
    ints = Cube(np.zeros((0, 1, 1, 2), "int16"), gb)
    assert reduce_time(ints, "count").data.tolist() == [[[0, 0]]]
    with pytest.raises(InvalidArgument, match="no dates"):
        reduce_time(ints, "min")


def test_integer_cube_without_nodata_has_no_empty_cells():
    gb = GeoBox.from_bounds((0, 0, 20, 10), 10, "EPSG:32631")
    cube = Cube(np.array([[[[0, 5]]], [[[2, 1]]]], "int16"), gb)
    result = reduce_time(cube, "min")
    assert result.nodata is None
    assert result.data.tolist() == [[[0, 1]]]


def test_bad_arguments():
    cube = small_cube()
    with pytest.raises(InvalidArgument, match="how='mode'"):
        reduce_time(cube, "mode")
    with pytest.raises(InvalidArgument, match="expects a Cube"):
        reduce_time(Raster(cube.data[0], cube.geobox), "mean")
    with pytest.raises(InvalidArgument, match="reduce axis 0"):
        reduce_time(cube, np.max)  # reduces every axis: refused with a hint
    with pytest.raises(InvalidArgument, match="reduce axis 0"):
        reduce_time(small_cube(lazy=True), np.max).data.compute()


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 10, 16, 17, 31, 32])
def test_median_sorting_network_sorts(n):
    from pyr.ops._reducer import _sort_network

    rng = np.random.default_rng(n)
    values = rng.integers(0, 5, (n, 50)).astype("float32")  # many ties
    values[rng.random(values.shape) < 0.2] = np.inf
    layers = [v.copy() for v in values]
    _sort_network(layers)
    np.testing.assert_array_equal(np.stack(layers), np.sort(values, axis=0))


@pytest.mark.parametrize("ntimes", [33, 45])
def test_median_of_many_dates_sorts_a_stack(ntimes):
    rng = np.random.default_rng(ntimes)
    gb = GeoBox.from_bounds((0, 0, 70, 50), 10, "EPSG:32631")
    values = rng.integers(0, 9, (ntimes, 1, 5, 7)).astype("int16")
    values[:, :, 0, 0] = 0  # never valid
    cube = Cube(da.from_array(values, chunks=(4, 1, 3, 3)), gb, nodata=0)
    result = reduce_time(cube, "median")
    assert_raster_equal(result, reduce_time(pyr.compute(cube), "median"))
    check_against_numpy(result, cube, "median")


def test_split_chunks_stay_regular_so_the_result_can_be_written(tmp_path):
    # A chunk too large for one reduction task is split; the pieces must keep the
    # chunks regular (all equal but the last) or write_zarr would refuse them.
    gb = GeoBox.from_bounds((0, 0, 1000, 1000), 10, "EPSG:32631")
    values = np.random.default_rng(1).integers(0, 50, (6, 1, 100, 100)).astype("uint16")
    cube = Cube(da.from_array(values, chunks=(1, 1, 32, 32)), gb, nodata=0)
    with dask.config.set({"array.chunk-size": "30KiB"}):
        out = pyr.reduce_time(cube, "median")
    for sizes in out.data.chunks[1:]:
        assert len(set(sizes[:-1])) <= 1
        assert sizes[-1] <= sizes[0]
    assert out.data.chunks[1] != (32, 32, 32, 4)  # it did split
    pyr.write_zarr(out, tmp_path / "m.zarr")
    assert_raster_equal(pyr.read_zarr(tmp_path / "m.zarr"), pyr.reduce_time(Cube(values, gb, nodata=0), "median"))
