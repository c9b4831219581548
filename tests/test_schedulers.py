"""The reference pipeline (read -> rescale -> write_zarr) gives the same store under every dask scheduler.

Graphs hold picklable specs, never handles, so the same graph runs on threads,
processes and a distributed cluster; each chunk is read and written by
whichever worker computes it.
"""

from __future__ import annotations

import os

import dask
import numpy as np
import pytest
import rasterio
from _tiffs import write_tif
from affine import Affine

import pyr
from pyr import GeoBox
from pyr.testing import assert_raster_equal

GB = GeoBox((150, 190), Affine(20, 0, 600000, 0, -20, 4200000), "EPSG:32631")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    rng = np.random.default_rng(7)
    data = rng.integers(0, 12000, (2, *GB.shape)).astype("uint16")
    data[:, :5, :] = 0
    return write_tif(tmp_path_factory.mktemp("src") / "s2like.tif", data, geobox=GB, nodata=0, block=(32, 32))


@pytest.fixture(scope="module")
def expected(source):
    with rasterio.open(source) as src:
        raw = src.read()
    out = np.clip(raw.astype("float32") * np.float32(1e-4), 0, 1)
    out[raw == 0] = np.nan
    return out


def pipeline(source, store, chunks=64, **compute_kwargs):
    lazy = pyr.read(source, chunks=chunks)
    delayed = pyr.write_zarr(pyr.rescale(lazy, scale=1e-4, clip=(0, 1)), store, compute=False)
    delayed.compute(**compute_kwargs)
    return pyr.read_zarr(store)


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_local_schedulers(source, expected, tmp_path, scheduler):
    back = pipeline(source, tmp_path / f"{scheduler}.zarr", scheduler=scheduler)
    np.testing.assert_array_equal(back.data.compute(), expected)
    assert back.geobox == GB
    assert back.chunks[1:] == ((64, 64, 22), (64, 64, 62))


@pytest.mark.slow
def test_processes_scheduler(source, expected, tmp_path):
    with dask.config.set(num_workers=2):
        back = pipeline(source, tmp_path / "processes.zarr", scheduler="processes")
    np.testing.assert_array_equal(back.data.compute(), expected)
    assert_raster_equal(back, pipeline(source, tmp_path / "sync.zarr", scheduler="sync"))


@pytest.mark.slow
def test_distributed_local_cluster(source, expected, tmp_path):
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        with distributed.get_task_stream(client) as stream:
            back = pipeline(source, tmp_path / "cluster.zarr")
        # Every chunk was read, rescaled and written by a worker process.
        writes = [t for t in stream.data if "pyr-zarr-write" in str(t["key"])]
        assert len(writes) == 9
        assert {t["worker"] for t in writes} <= set(client.scheduler_info()["workers"])
        assert len(set(client.run(os.getpid).values())) == 2
        lazy_back = pyr.read_zarr(tmp_path / "cluster.zarr")
        np.testing.assert_array_equal(lazy_back.data.compute(), expected)  # read tasks on the cluster too
        # With many small chunks, each write task on the cluster writes several in turn (pyr.chunks-per-task
        # "auto": at least 4 tasks per worker thread are left, here 120 chunks // 8 = 15 per task).
        with distributed.get_task_stream(client) as stream:
            small = pipeline(source, tmp_path / "grouped.zarr", chunks=16)
        writes = [t for t in stream.data if "pyr-zarr-write" in str(t["key"])]
        assert len(writes) == 8
        assert len({t["worker"] for t in writes}) == 2
        np.testing.assert_array_equal(small.data.compute(scheduler="sync"), expected)
        assert small.chunks[1:] == ((16,) * 9 + (6,), (16,) * 11 + (14,))
        # write_tiff groups its chunk tasks the same way, and the file is the one written locally
        rescaled = pyr.rescale(pyr.read(source, chunks=16), scale=1e-4, clip=(0, 1))
        with distributed.get_task_stream(client) as stream:
            pyr.write_tiff(rescaled, tmp_path / "cluster.tif")
        saves = [t for t in stream.data if "pyr-tiff-chunk" in str(t["key"])]
        assert len(saves) == 8
        np.testing.assert_array_equal(pyr.read(tmp_path / "cluster.tif").data, expected)
    np.testing.assert_array_equal(back.data.compute(scheduler="sync"), expected)
    assert_raster_equal(back, pipeline(source, tmp_path / "sync.zarr", scheduler="sync"))


@pytest.mark.slow
def test_asynchronous_client_writes_a_task_per_chunk(source, expected, tmp_path):
    # An asynchronous client cannot tell its cluster's size while a graph is built, so
    # write tasks are not grouped; the graph runs on it all the same.
    import asyncio

    distributed = pytest.importorskip("distributed")

    async def main():
        async with (
            distributed.LocalCluster(
                n_workers=1, threads_per_worker=2, processes=False, asynchronous=True, dashboard_address=None
            ) as cluster,
            distributed.Client(cluster, asynchronous=True) as client,
        ):
            lazy = pyr.rescale(pyr.read(source, chunks=16), scale=1e-4, clip=(0, 1))
            job = pyr.write_zarr(lazy, tmp_path / "async.zarr", compute=False)
            assert len(dict(job.__dask_graph__())) == lazy.data.npartitions + 2
            await client.compute(job)

    asyncio.run(main())
    np.testing.assert_array_equal(pyr.read_zarr(tmp_path / "async.zarr").data.compute(scheduler="sync"), expected)
