"""``compute``: values, block-by-block assembly, and the progress bar locally and on a distributed cluster."""

from __future__ import annotations

import multiprocessing
import tracemalloc
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

import attrs
import dask
import dask.array as da
import numpy as np
import pytest
from dask.delayed import delayed
from hypothesis import given
from hypothesis import strategies as st

from pyr import Cube, GeoBox, Raster, compute
from pyr.testing import assert_raster_equal
from pyr.testing.strategies import chunkings, cubes

GB = GeoBox.from_bounds((0, 0, 640, 320), 10, "EPSG:32631")


def _lazy() -> Raster:
    data = da.arange(2 * 32 * 64, dtype="float32", chunks=512).reshape(2, 32, 64).rechunk((1, 16, 16))
    return Raster(data, GB, nodata=None, bands=("a", "b"))


def test_lazy_raster_to_eager() -> None:
    r = _lazy()
    out = compute(r)
    assert not out.is_lazy
    assert_raster_equal(out, Raster(np.arange(2 * 32 * 64, dtype="float32").reshape(2, 32, 64), GB, bands=("a", "b")))


def test_eager_is_returned_as_is() -> None:
    r = Raster(np.zeros((1, 32, 64), "uint8"), GB)
    assert compute(r) is r


def test_cube_and_delayed() -> None:
    times = np.array(["2024-01-01", "2024-01-06"], dtype="datetime64[ns]")
    cube = Cube(da.ones((2, 1, 32, 64), dtype="int16", chunks=(1, 1, 16, 16)), GB, nodata=-1, times=times)
    out = compute(cube)
    assert isinstance(out, Cube)
    assert not out.is_lazy
    np.testing.assert_array_equal(out.times, times)
    assert int(out.data.sum()) == 2 * 32 * 64
    assert compute(delayed(sum)([1, 2, 3])) == 6


def _big_lazy() -> tuple[Raster, np.ndarray]:
    """A 16 MiB lazy raster of 64 blocks, each made by one task from nothing, and its values."""

    def ramp(block_info: Any = None) -> np.ndarray:
        _, (y0, y1), (x0, x1) = block_info[None]["array-location"]
        return (np.arange(y0, y1, dtype="float32")[:, None] * 2048 + np.arange(x0, x1, dtype="float32"))[None]

    lazy = da.map_blocks(
        ramp, chunks=((1,), (256,) * 8, (256,) * 8), dtype="float32", meta=np.empty((0, 0, 0), "float32")
    )
    eager = np.fromfunction(lambda b, y, x: y * 2048 + x, (1, 2048, 2048), dtype="float32")
    return Raster(lazy, GeoBox.from_bounds((0, 0, 20480, 20480), 10, "EPSG:32631")), eager


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["processes", "threads", "sync"])
def test_the_result_is_assembled_block_by_block(scheduler: str) -> None:
    # dask.compute ends in one task concatenating every block: the calling process holds all the
    # blocks beside the result (twice the result on threads; on processes also the blocks pickled
    # to the concatenating worker and the result pickled back). compute copies each block into
    # one preallocated array as it arrives: the caller's peak is the result and a few blocks.
    raster, eager = _big_lazy()
    pool = ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) if scheduler == "processes" else None
    with dask.config.set(scheduler=scheduler, pool=pool):
        compute(_lazy())  # start-up costs (imports, the worker processes) out of the count
        tracemalloc.start()
        try:
            out = compute(raster)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
            if pool is not None:
                pool.shutdown()
    np.testing.assert_array_equal(out.data, eager)
    assert type(out.data) is np.ndarray
    assert out.data.flags.writeable
    assert peak < 1.75 * eager.nbytes, f"{peak / 2**20:.1f} MiB traced for a {eager.nbytes / 2**20:.0f} MiB result"


class _LargestResult(dask.callbacks.Callback):  # type: ignore[misc]  # dask is untyped
    """The largest value any task returned to the scheduler."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
        self.largest = max(self.largest, int(getattr(result, "nbytes", 0)))


def test_no_task_returns_the_whole_array() -> None:
    r = _lazy()
    with dask.config.set(scheduler="sync"), _LargestResult() as seen:
        out = compute(r)
    assert 0 < seen.largest < r.data.nbytes  # blocks, never the concatenated whole
    np.testing.assert_array_equal(out.data, r.data.compute())


@pytest.mark.parametrize(
    "scheduler",
    [lambda dsk, keys, **kw: dask.get(dsk, keys), ThreadPoolExecutor(2)],
    ids=["a get function", "an Executor"],
)
def test_other_schedulers(scheduler: Any) -> None:
    times = np.array(["2024-01-01", "2024-01-06"], dtype="datetime64[ns]")
    data = da.arange(2 * 2 * 32 * 64, dtype="int32", chunks=700).reshape(2, 2, 32, 64).rechunk((1, 2, 16, 24))
    cube = Cube(data, GB, nodata=-1, times=times)
    with dask.config.set(scheduler=scheduler):
        out = compute(cube)
    np.testing.assert_array_equal(out.data, np.arange(2 * 2 * 32 * 64, dtype="int32").reshape(2, 2, 32, 64))
    assert out.data.dtype == np.int32


@given(cubes(lazy=False), st.data())
def test_lazy_equals_eager_under_any_chunking(eager: Cube, data: st.DataObject) -> None:
    # the blocks land in their slots whatever the chunking (uneven edges, single cells, one block)
    chunks = data.draw(chunkings(eager.data.shape))
    lazy = attrs.evolve(eager, data=da.from_array(eager.data, chunks=chunks))
    with dask.config.set(scheduler="sync"):
        out = compute(lazy)
    assert type(out.data) is np.ndarray
    assert_raster_equal(out, eager)  # values (NaN equals NaN), dtype, grid, nodata, bands, times


def test_no_bar_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    compute(_lazy())
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("scheduler", ["threads", "sync", "processes"])
def test_local_progress_bar(capsys: pytest.CaptureFixture[str], scheduler: str) -> None:
    with dask.config.set(scheduler=scheduler):
        out = compute(_lazy(), progress=True)
    assert float(out.data.sum()) == float(np.arange(2 * 32 * 64).sum())
    text = capsys.readouterr().out
    assert "100% Completed" in text
    assert "[########################################]" in text


def test_delayed_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    assert compute(delayed(sum)([1, 2]), progress=True) == 3
    assert "100% Completed" in capsys.readouterr().out


def _worker_address() -> str:
    from distributed import get_worker

    return str(get_worker().address)


@pytest.mark.slow
def test_distributed_progress_bar(capsys: pytest.CaptureFixture[str]) -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster,
        Client(cluster),
    ):
        capsys.readouterr()
        out = compute(_lazy(), progress=True)
        text = capsys.readouterr().out
        where = compute(delayed(_worker_address)(), progress=True)
        workers = list(cluster.scheduler.workers)
    assert not out.is_lazy
    np.testing.assert_array_equal(out.data, np.arange(2 * 32 * 64, dtype="float32").reshape(2, 32, 64))
    assert "100% Completed" in text
    assert where in workers  # ran on the cluster, not in a local scheduler
