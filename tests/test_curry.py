"""Every public function in ``pyr.__all__`` curries and pickles (as toolz's tests/test_curried.py checks).

An options-only call returns a callable of the data that fits ``toolz.pipe``
and gives what the full call gives; the function and its partials pickle (by
reference), so they can travel into task graphs.
"""

from __future__ import annotations

import inspect
import pickle

import cloudpickle
import numpy as np
import pytest
import toolz
from _tiffs import write_tif
from toolz import pipe

import pyr
from pyr import Cube, GeoBox, Raster
from pyr._curry import _Curried
from pyr.testing import assert_raster_equal

# Keyword-only functions with no data argument: calling them with options *is* the call.
NO_DATA_ARGUMENT = {"cloud_env", "configure"}
# Public functions that do not curry yet (owners outside this test's module set; see the report).
PUBLIC_FUNCTIONS = sorted(
    name for name in pyr.__all__ if inspect.isroutine(getattr(pyr, name)) or isinstance(getattr(pyr, name), toolz.curry)
)

GB = GeoBox.from_bounds((0, 0, 60, 40), 10, "EPSG:32631")


def test_the_list_of_public_functions_is_what_we_think():
    assert set(PUBLIC_FUNCTIONS) >= {"read", "read_zarr", "write_zarr", "rescale", "map_blocks", "stack"}
    assert not set(PUBLIC_FUNCTIONS) & {"Raster", "Cube", "GeoBox", "ReadError"}


@pytest.mark.parametrize(
    "name",
    [n for n in PUBLIC_FUNCTIONS if n not in NO_DATA_ARGUMENT],
)
def test_public_function_is_curried_and_pickles(name):
    func = getattr(pyr, name)
    assert isinstance(func, toolz.curry), f"pyr.{name} is not curried"
    assert type(func) is _Curried, f"pyr.{name} is not curried by pyr._curry (which never swallows TypeError)"
    for dumps in (pickle.dumps, cloudpickle.dumps):
        assert pickle.loads(dumps(func)) is func  # pickled by reference
    partial = func(**_options(name))
    assert callable(partial)
    assert isinstance(partial, toolz.curry)
    back = pickle.loads(pickle.dumps(partial))
    assert type(back) is _Curried
    assert back.keywords == partial.keywords
    assert back.func is func.func


@pytest.mark.parametrize("name", sorted(NO_DATA_ARGUMENT))
def test_option_only_functions_take_no_positional_argument(name):
    params = inspect.signature(getattr(pyr, name)).parameters.values()
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in params)
    assert pickle.loads(pickle.dumps(getattr(pyr, name))) is getattr(pyr, name)


def _options(name):
    return {
        "read": {"chunks": 16},
        "read_zarr": {"chunks": None},
        "read_cube": {"chunks": 16},
        "rescale": {"scale": 1e-4, "clip": (0, 1)},
        "map_blocks": {"func": np.negative},
        "write_zarr": {"store": "unused.zarr", "mode": "w"},
        "stack": {"times": ["2020-01-01", "2020-01-02"]},
        "reduce_time": {"how": "max"},
        "to_xarray": {},
        "from_xarray": {},
        "compute": {"progress": False},
        "write_tiff": {"cog": False},
    }.get(name, {})


@pytest.fixture
def raster():
    return Raster(np.arange(24, dtype="int16").reshape(1, 4, 6), GB, nodata=0)


def test_pipe_read(tmp_path, raster):
    path = write_tif(tmp_path / "a.tif", raster.data, geobox=GB, nodata=0, tiled=False)
    assert_raster_equal(pipe(path, pyr.read(chunks=2)), pyr.read(path, chunks=2))
    assert pipe(path, pyr.read(chunks=2)).is_lazy


def test_pipe_rescale_map_blocks(raster):
    got = pipe(raster, pyr.rescale(scale=0.5), pyr.map_blocks(np.negative))
    assert_raster_equal(got, pyr.map_blocks(np.negative, pyr.rescale(raster, scale=0.5)))


def test_pipe_write_and_read_zarr(tmp_path, raster):
    store = tmp_path / "p.zarr"
    assert pipe(raster, pyr.write_zarr(store=store)) is None
    assert_raster_equal(pipe(store, pyr.read_zarr(chunks=None)), raster)
    delayed = pipe(raster, pyr.write_zarr(store=tmp_path / "q.zarr", compute=False))
    delayed.compute()
    assert_raster_equal(pyr.read_zarr(tmp_path / "q.zarr"), raster)


def test_pipe_stack_and_reduce(raster):
    other = Raster(raster.data * 2, GB, nodata=0)
    cube = pipe([raster, other], pyr.stack(times=["2020-01-01", "2020-01-02"]))
    assert isinstance(cube, Cube)
    assert_raster_equal(pipe(cube, pyr.reduce_time(how="max")), pyr.reduce_time(cube, "max"))


def test_curried_partials_travel_in_task_graphs(raster):
    import dask.array as da

    step = pyr.rescale(scale=2.0)
    lazy = Raster(da.from_array(raster.data, chunks=2), GB, nodata=0)
    graph_fn = cloudpickle.loads(cloudpickle.dumps(step))
    assert_raster_equal(graph_fn(lazy), step(raster))


@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
def test_public_function_keeps_name_doc_signature_and_wrapped(name):
    func = getattr(pyr, name)
    plain = getattr(func, "__wrapped__", func)
    assert inspect.isfunction(plain)
    assert func.__name__ == plain.__name__ == name
    assert func.__doc__ == plain.__doc__
    assert func.__doc__
    assert inspect.signature(func) == inspect.signature(plain)


def _raises_type_error(x, *more, y=1):
    raise TypeError(f"bug inside the call ({x}, {more}, {y})")


def _takes_data(x, *, y=1):
    if y == "boom":
        raise TypeError("bug inside the call")
    return x + y


def test_curried_never_swallows_the_type_error_of_the_call():
    """toolz.curry returns a partial when the call raises TypeError and the function has *args."""
    from pyr._curry import curried

    f = curried(_raises_type_error)
    with pytest.raises(TypeError, match="bug inside the call"):
        f(1)
    with pytest.raises(TypeError, match="bug inside the call"):
        f(y=2)(1)
    g = curried(_takes_data)
    assert g(1) == 2
    assert g(y=3)(1) == 4
    with pytest.raises(TypeError, match="bug inside the call"):
        g(1, y="boom")
    with pytest.raises(TypeError, match="bug inside the call"):
        g(y="boom")(1)


def test_a_bug_in_a_map_blocks_kernel_raises_at_once(raster):
    def kernel(block):
        return block + "oops"  # numpy raises a TypeError (UFuncTypeError)

    with pytest.raises(TypeError, match="add"):
        pyr.map_blocks(kernel, raster)
    with pytest.raises(TypeError, match="add"):
        pipe(raster, pyr.map_blocks(kernel))


def test_arguments_that_cannot_bind_raise_at_once(raster):
    with pytest.raises(TypeError, match=r"rescale\(\).*scael"):
        pyr.rescale(raster, scael=2.0)
    with pytest.raises(TypeError, match=r"rescale\(\).*scael"):
        pyr.rescale(scael=2.0)
    with pytest.raises(TypeError, match=r"reduce_time\(\)"):
        pyr.reduce_time(raster, "mean", "extra")
    # Missing data only: a partial, as before.
    assert callable(pyr.rescale(scale=2.0))
    assert callable(pyr.map_blocks(np.negative, dtype="float32"))


def test_curried_partials_tokenize_deterministically():
    from dask.base import tokenize

    assert tokenize(pyr.rescale(scale=2.0)) == tokenize(pyr.rescale(scale=2.0))
    assert tokenize(pyr.rescale(scale=2.0)) != tokenize(pyr.rescale(scale=3.0))
    assert tokenize(pyr.rescale) == tokenize(pickle.loads(pickle.dumps(pyr.rescale)))
