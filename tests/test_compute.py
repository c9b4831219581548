"""``compute``: values, and the progress bar locally and on a distributed cluster."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
from dask.delayed import delayed

from pyr import Cube, GeoBox, Raster, compute
from pyr.testing import assert_raster_equal

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
    assert float(out.data.sum()) == float(np.arange(2 * 32 * 64).sum())
    assert "100% Completed" in text
    assert where in workers  # ran on the cluster, not in a local scheduler
