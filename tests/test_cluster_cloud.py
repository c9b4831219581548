"""Cloud reads and writes on a ``distributed.LocalCluster`` of two worker processes.

The cluster starts once for the module, after ``configure`` set a marker
option and a decoy S3 endpoint (a closed loopback port) in the test
process; the test process then gets its environment back. So the workers
hold what ``configure`` gave them, and not the moto server's endpoint: an S3
read can only succeed on them when the env it carries reaches them.
"""

from __future__ import annotations

import os
import warnings

import dask
import numpy as np
import pytest
from rasterio._env import get_gdal_config
from servers import (
    FAST,
    OFFLINE_AWS,
    SECRET,
    all_objects,
    cog_array,
    put_object,
    restored_environ,
    s3_env,
    serve,
    storage_options,
    write_cog,
)

import pyr
from pyr import ReadError, cloud_env, configure
from pyr.io.gdal.env import apply_process_wide
from pyr.testing import assert_raster_equal

distributed = pytest.importorskip("distributed")

pytest_plugins = ["conftest_cloud"]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.network,
    pytest.mark.usefixtures("offline_aws_module"),
    pytest.mark.timeout(240),
]

MARKER = "PYR_CLUSTER_MARKER"


@pytest.fixture(scope="module")
def client(offline_aws_module):
    import logging

    with restored_environ():
        configure(**{MARKER: "from-configure", "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_CONNECTTIMEOUT": "2"})
        cluster = distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
            silence_logs=logging.ERROR,
        )
    assert MARKER not in os.environ  # the test process is back to its own environment
    with cluster, distributed.Client(cluster) as c:
        yield c


def _on_workers(client, func, *args, **kwargs):
    """``func(*args)`` in each worker process (never pass a bound method of a client-side object:
    cloudpickle would ship the object, e.g. this process's ``os.environ``)."""
    return [v for _, v in sorted(client.run(func, *args, **kwargs).items())]


def _worker_environ():
    return dict(os.environ)


def test_configure_reached_the_worker_processes(client):
    assert _on_workers(client, os.getenv, MARKER) == ["from-configure"] * 2
    assert _on_workers(client, get_gdal_config, MARKER, normalize=False) == ["from-configure"] * 2
    # and inside tasks
    futures = [
        client.submit(get_gdal_config, MARKER, normalize=False, pure=False, workers=[w]) for w in _workers(client)
    ]
    assert client.gather(futures) == ["from-configure"] * 2


def _workers(client):
    return list(client.scheduler_info()["workers"])


def test_configure_with_a_running_client_reaches_its_workers(client, fresh_environ):
    assert _on_workers(client, os.getenv, "PYR_LATE_MARKER") == [None, None]
    configure(cloud_defaults=False, PYR_LATE_MARKER="late")  # registers a worker plugin
    assert _on_workers(client, get_gdal_config, "PYR_LATE_MARKER", normalize=False) == ["late", "late"]
    client.unregister_worker_plugin("pyr-gdal-env")


def test_configure_run_on_the_workers_applies_there_only(client):
    # client.run(pyr.configure, ...) from the docs: applied in each worker, no plugin registered
    client.run(configure, cloud_defaults=False, PYR_RUN_MARKER="run")
    assert _on_workers(client, get_gdal_config, "PYR_RUN_MARKER", normalize=False) == ["run", "run"]
    assert "PYR_RUN_MARKER" not in os.environ
    assert "pyr-gdal-env" not in client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.worker_plugins))


def test_s3_read_on_the_cluster_succeeds_only_through_the_env(client, s3_endpoint, bucket, cog):
    path, data = cog
    url = put_object(s3_endpoint, bucket, "B04.tif", path.read_bytes())
    # the workers' environment does not reach moto
    assert _on_workers(client, os.getenv, "AWS_S3_ENDPOINT") == [OFFLINE_AWS["AWS_S3_ENDPOINT"]] * 2
    assert s3_endpoint not in str(_on_workers(client, _worker_environ))
    env = s3_env(s3_endpoint)
    r = pyr.read(url, chunks=(256, 512), env=env)
    np.testing.assert_array_equal(client.compute(r.data, sync=True)[0], data)
    # The same lazy read without the env: built here, where the endpoint is
    # set process-wide for the moment; it fails on the workers, at compute.
    with restored_environ():
        apply_process_wide(env)
        lazy = pyr.read(url, chunks=(256, 512))
    assert lazy.data.__dask_graph__()  # built
    with pytest.raises(ReadError, match=r"B04\.tif"):
        client.compute(lazy.data, sync=True)


def test_write_zarr_to_s3_from_the_workers(client, s3_endpoint, bucket, cog):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    path, _ = cog
    url = put_object(s3_endpoint, bucket, "in/B04.tif", path.read_bytes())
    raster = pyr.rescale(pyr.read(url, chunks=(256, 256), env=s3_env(s3_endpoint)), scale=1e-4, clip=(0, 1))
    store = f"s3://{bucket}/out/b04.zarr"
    opts = storage_options(s3_endpoint)
    delayed = pyr.write_zarr(raster, store, compute=False, storage_options=opts)
    with distributed.get_task_stream(client) as stream:
        client.compute(delayed, sync=True)
    assert len({t["worker"] for t in stream.data}) == 2  # both workers read and wrote chunks
    back = pyr.read_zarr(store, storage_options=opts)
    expected = pyr.rescale(pyr.read(path), scale=1e-4, clip=(0, 1))
    assert_raster_equal(back, expected)
    ds = xr.open_zarr(store, storage_options=opts)
    assert ds[next(iter(ds.data_vars))].rio.crs.to_epsg() == 32631
    for key, blob in all_objects(s3_endpoint, bucket).items():
        assert SECRET.encode() not in blob, key


def test_reference_workflow_http_to_s3(client, http_server, s3_endpoint, bucket, tmp_path):
    # 1-3: one band COG over HTTP, lazily; rescale; parallel Zarr write to S3; read back
    data = cog_array((768, 1024), seed=7)
    _, url = serve(http_server, write_cog(tmp_path / "B04.tif", data, block=256))
    env = cloud_env(**FAST)
    opts = storage_options(s3_endpoint)
    raster = pyr.read(url, chunks="auto", env=env)
    assert raster.is_lazy
    scaled = pyr.rescale(raster, scale=1e-4, clip=(0, 1))
    client.compute(pyr.write_zarr(scaled, f"s3://{bucket}/b04.zarr", compute=False, storage_options=opts), sync=True)
    back = pyr.read_zarr(f"s3://{bucket}/b04.zarr", storage_options=opts)
    with dask.config.set(scheduler="sync"):
        assert_raster_equal(back, pyr.rescale(pyr.read(tmp_path / "B04.tif"), scale=1e-4, clip=(0, 1)))
    # 4-5: a small multi-date cube over HTTP, mean over time, cube Zarr on S3
    dates = [cog_array((512, 512), seed=s) for s in range(3)]
    urls = [serve(http_server, write_cog(tmp_path / f"d{k}.tif", a, block=256))[1] for k, a in enumerate(dates)]
    times = np.array(["2024-01-05", "2024-01-10", "2024-01-15"], dtype="datetime64[ns]")
    cube = pyr.read_cube(urls, chunks=(256, 256), times=list(times), env=env)
    mean = pyr.reduce_time(cube, "mean")
    client.compute(pyr.write_zarr(cube, f"s3://{bucket}/cube.zarr", compute=False, storage_options=opts), sync=True)
    client.compute(pyr.write_zarr(mean, f"s3://{bucket}/mean.zarr", compute=False, storage_options=opts), sync=True)
    stack = np.stack(dates).astype("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the nodata corner is empty on every date
        expected = np.nanmean(np.where(stack == 0, np.nan, stack), axis=0).astype("float32")
    got = pyr.read_zarr(f"s3://{bucket}/mean.zarr", chunks=None, storage_options=opts)
    np.testing.assert_allclose(got.data[0], expected, rtol=1e-6)
    cube_back = pyr.read_zarr(f"s3://{bucket}/cube.zarr", chunks=None, storage_options=opts)
    np.testing.assert_array_equal(cube_back.times, times)
    np.testing.assert_array_equal(cube_back.data[:, 0], np.stack(dates))
