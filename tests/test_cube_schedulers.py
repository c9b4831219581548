"""The reference workflow's cube steps under threads, processes and a distributed cluster.

read_cube -> reduce_time("mean") -> write_zarr (the mean and the cube) -> read back,
checked against numpy on plain rasterio reads. Small data, one cluster.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine

import pyr
from pyr import GeoBox, read_cube, read_zarr, reduce_time, write_zarr
from pyr.io.cube import LOGGER_NAME, check_sources
from pyr.testing import assert_raster_equal
from tests._tiffs import write_tif

GRID = GeoBox((96, 80), Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5700000.0), "EPSG:32631")
TIMES = [np.datetime64("2024-03-01") + np.timedelta64(10 * d, "D") for d in range(10)]


@pytest.fixture(scope="module")
def dates(tmp_path_factory) -> list[Path]:
    out = tmp_path_factory.mktemp("sched")
    rng = np.random.default_rng(7)
    paths = []
    for d in range(10):
        a = rng.integers(1, 3000, (1, *GRID.shape)).astype("uint16")
        a[rng.random(a.shape) < 0.3] = 0
        paths.append(write_tif(out / f"d{d}.tif", a, geobox=GRID, nodata=0, block=(32, 32)))
    return paths


def expected_mean(paths: list[Path]) -> np.ndarray:
    stack = []
    for p in paths:
        with rasterio.open(p) as src:
            a = src.read().astype("float64")
            a[a == 0] = np.nan
            stack.append(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.stack(stack), axis=0).astype("float32")


def workflow(paths: list[Path], out: Path) -> None:
    cube = read_cube(paths, chunks=32, times=TIMES)
    mean = reduce_time(cube, "mean")
    # Computed directly too: each reduce task reads its own chunks (fused), on every scheduler.
    np.testing.assert_allclose(pyr.compute(mean).data, expected_mean(paths), rtol=1e-6, equal_nan=True)
    write_zarr(mean, out / "mean.zarr", compute=False).compute()
    write_zarr(cube, out / "cube.zarr", compute=False).compute()
    back_mean = read_zarr(out / "mean.zarr")
    np.testing.assert_allclose(back_mean.data.compute(), expected_mean(paths), rtol=1e-6, equal_nan=True)
    assert back_mean.geobox == GRID
    back_cube = read_zarr(out / "cube.zarr")
    assert_raster_equal(back_cube, cube)
    np.testing.assert_array_equal(back_cube.times, np.array(TIMES, "datetime64[ns]"))


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["threads", "processes"])
def test_workflow_local_schedulers(dates, tmp_path, scheduler):
    with dask.config.set(scheduler=scheduler, num_workers=2):
        workflow(dates, tmp_path)


@pytest.mark.slow
def test_workflow_on_a_local_cluster(dates, tmp_path, caplog):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as cluster,
        distributed.Client(cluster) as client,
    ):
        workflow(dates, tmp_path)
        # on_error="nodata" across processes: the worker's warning reaches the client, and
        # check_sources answers as a value.
        missing = tmp_path / "gone.tif"
        sources = [*dates[:3], missing]
        client.forward_logging(LOGGER_NAME, level=logging.WARNING)
        with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
            mean = reduce_time(read_cube(sources, chunks=48, on_error="nodata"), "mean").data.compute()
        np.testing.assert_allclose(mean, expected_mean(dates[:3]), rtol=1e-6, equal_nan=True)
        assert any("gone.tif" in r.getMessage() for r in caplog.records if r.name == LOGGER_NAME)
        failed = check_sources(sources)
        assert list(failed) == [str(missing)]
