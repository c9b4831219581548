"""Reading COGs from S3 and writing Zarr to S3, against moto's S3 server on loopback.

GDAL reaches moto through ``/vsis3/`` (``AWS_S3_ENDPOINT`` = the server,
path-style, plain HTTP, dummy credentials); zarr and xarray reach it through
s3fs (``client_kwargs={"endpoint_url": ...}``). The test process's own AWS
settings point at a closed loopback port, so only a read that carries the
right env reaches a server, and nothing ever goes to the real AWS.
"""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from servers import (
    SECRET,
    all_objects,
    cog_array,
    put_object,
    s3_env,
    storage_options,
    write_cog,
)

import pyr
from pyr import ReadError
from pyr.testing import assert_raster_equal, raise_if_dask_computes

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.network, pytest.mark.usefixtures("offline_aws_module"), pytest.mark.timeout(120)]

METADATA = (".zattrs", ".zarray", ".zgroup", ".zmetadata", "zarr.json")


@pytest.fixture
def s3_cog(s3_endpoint, bucket, cog):
    path, data = cog
    url = put_object(s3_endpoint, bucket, "tiles/31UFT/B04.tif", path.read_bytes())
    return url, path, data


def test_lazy_s3_read_equals_local_read(s3_endpoint, s3_cog):
    url, path, data = s3_cog
    with raise_if_dask_computes():
        r = pyr.read(url, chunks=(256, 512), env=s3_env(s3_endpoint))
    assert r.is_lazy
    assert_raster_equal(r, pyr.read(path))
    np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)
    eager = pyr.read(url, env=s3_env(s3_endpoint), overview=0)
    assert_raster_equal(eager, pyr.read(path, overview=0))


def test_s3_read_without_the_env_is_a_read_error(s3_cog):
    url, _, _ = s3_cog
    with pytest.raises(ReadError, match=url.replace(".", r"\.")):
        pyr.read(url, env={"GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_CONNECTTIMEOUT": "2"})


def test_missing_object_is_a_read_error_naming_it(s3_endpoint, bucket):
    url = f"s3://{bucket}/nothing/here.tif"
    with pytest.raises(ReadError, match=r"nothing/here\.tif") as info:
        pyr.read(url, env=s3_env(s3_endpoint))
    assert SECRET not in str(info.value)


def test_endpoints_do_not_leak_between_tasks(s3_endpoint, bucket, http_server, tmp_path):
    # One bucket/key, two S3 endpoints serving different bytes: moto, and the
    # Range server answering path-style requests. GDAL caches by URL per
    # process; each task must get its own endpoint's pixels, in one thread or many.
    a, b = cog_array((256, 512), seed=1), cog_array((256, 512), seed=2)
    key = "same/key.tif"
    url = put_object(s3_endpoint, bucket, key, write_cog(tmp_path / "a.tif", a).read_bytes())
    http_server.put(f"{bucket}/{key}", write_cog(tmp_path / "b.tif", b).read_bytes())
    env_a, env_b = s3_env(s3_endpoint), s3_env(http_server.endpoint)
    ra = pyr.read(url, chunks=128, env=env_a)
    rb = pyr.read(url, chunks=128, env=env_b)
    for _ in range(2):
        np.testing.assert_array_equal(ra.data.compute(scheduler="sync")[0], a)
        np.testing.assert_array_equal(rb.data.compute(scheduler="sync")[0], b)
    both = np.stack([ra.data, rb.data]).compute(scheduler="threads", num_workers=2)
    np.testing.assert_array_equal(both[:, 0], np.stack([a, b]))
    results: dict[str, np.ndarray] = {}

    def read(tag, env):
        results[tag] = pyr.read(url, env=env).data[0]

    threads = [threading.Thread(target=read, args=(t, e)) for t, e in (("a", env_a), ("b", env_b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(results["a"], a)
    np.testing.assert_array_equal(results["b"], b)


def test_zarr_to_s3_and_back_and_xarray_opens_it(s3_endpoint, bucket, cog):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    path, data = cog
    raster = pyr.rescale(pyr.read(path, chunks=(256, 512)), scale=1e-4)
    store = f"s3://{bucket}/out/b04.zarr"
    opts = storage_options(s3_endpoint)
    delayed = pyr.write_zarr(raster, store, compute=False, storage_options=opts)
    assert not all_objects(s3_endpoint, bucket)  # nothing written before compute
    delayed.compute(scheduler="threads")
    back = pyr.read_zarr(store, storage_options=opts)
    assert_raster_equal(back, raster)
    ds = xr.open_zarr(store, storage_options=opts)
    var = ds[next(iter(ds.data_vars))]
    assert var.rio.crs.to_epsg() == 32631
    assert tuple(var.rio.transform())[:6] == tuple(raster.geobox.transform)[:6]
    np.testing.assert_allclose(var.values[0], np.where(data == 0, np.nan, data * np.float32(1e-4)), rtol=1e-6)


def test_secrets_never_leak(s3_endpoint, bucket, s3_cog):
    url, _, _ = s3_cog
    env = s3_env(s3_endpoint, GDAL_HTTP_HEADERS=f"X-Extra: {SECRET}")
    opts = storage_options(s3_endpoint)
    r = pyr.read(url, chunks=(256, 512), env=env)
    texts = [repr(env), str(env), repr(r), str(r), repr(r.data), repr(r.data.dask)]
    graph = dict(r.data.__dask_graph__())
    texts += [str(k) for k in graph] + [repr(v) for v in graph.values()]
    out = pyr.rescale(r, scale=1e-4)
    store = f"s3://{bucket}/secret-check.zarr"
    delayed = pyr.write_zarr(out, store, compute=False, storage_options=opts)
    wgraph = dict(delayed.__dask_graph__())
    texts += [repr(delayed)] + [str(k) for k in wgraph] + [repr(v) for v in wgraph.values()]
    for text in texts:
        assert SECRET not in text, text[:300]
    delayed.compute(scheduler="threads")
    # a failing read (a missing object, same credentials): the message is clean
    with pytest.raises(ReadError) as info:
        pyr.read(url.replace("B04", "B05"), env=env)
    assert SECRET not in str(info.value)
    assert SECRET not in repr(info.value)
    # the store: no object, metadata key or attribute holds the secret
    objects = all_objects(s3_endpoint, bucket)
    meta = [k for k in objects if k.startswith("secret-check.zarr") and k.endswith(METADATA)]
    assert meta, sorted(objects)
    for key in meta:
        assert SECRET not in json.dumps(json.loads(objects[key]))
    for key, blob in objects.items():
        assert SECRET.encode() not in blob, key


def _small(values: np.ndarray, chunks: tuple[int, ...]) -> pyr.Raster:
    import dask.array as da

    gb = pyr.GeoBox.from_bounds((0, 0, 10 * values.shape[2], 10 * values.shape[1]), 10, "EPSG:32631")
    return pyr.Raster(da.from_array(values, chunks=chunks), gb, nodata=-1)


def test_an_s3_append_lock_is_a_conditional_write_and_refuses_another_append(s3_endpoint, bucket, monkeypatch):
    # The lock beside the store is created with If-None-Match: *, so S3 itself
    # refuses the second of two appends that start at once; here one lock is
    # already there (another append's), and a same-time PUT of it is refused too.
    import fsspec
    import s3fs

    modes = []
    real_pipe = s3fs.S3FileSystem._pipe_file

    async def spy(self, path, data, *args, **kwargs):
        if path.endswith(".pyr-append"):
            modes.append(kwargs.get("mode", "overwrite"))
        return await real_pipe(self, path, data, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_pipe_file", spy)

    # options of their own: fsspec's cached filesystems bound the real method when they were made
    opts = {**storage_options(s3_endpoint), "config_kwargs": {"user_agent_extra": "pyr-lock-test"}}
    store = f"s3://{bucket}/cubes/c.zarr"
    gb = pyr.GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    base = pyr.Cube(np.ones((2, 1, 2, 4), "uint16"), gb, nodata=0, times=["2024-01-01", "2024-01-11"])
    pyr.write_zarr(base, store, storage_options=opts)
    fs = fsspec.filesystem("s3", **opts)
    lock = f"{bucket}/cubes/c.zarr.pyr-append"
    fs.pipe_file(lock, b"another-append", mode="create")
    with pytest.raises(FileExistsError):  # what S3 answers a second conditional create
        fs.pipe_file(lock, b"mine", mode="create")
    later = pyr.Cube(np.full((2, 1, 2, 4), 3, "uint16"), gb, nodata=0, times=["2024-02-01", "2024-02-11"])
    modes.clear()
    with pytest.raises(pyr.WriteError, match="another append running"):
        pyr.write_zarr(later, store, mode="a", storage_options=opts)
    assert modes == ["create"]  # pyr asked S3 for a conditional create
    assert fs.cat_file(lock) == b"another-append"
    assert pyr.read_zarr(store, storage_options=opts).ntimes == 2  # nothing changed
    fs.rm_file(lock)
    pyr.write_zarr(later, store, mode="a", storage_options=opts)
    assert pyr.read_zarr(store, storage_options=opts).ntimes == 4
    assert not fs.exists(lock)


def test_two_creating_writes_to_one_s3_url_one_is_refused(s3_endpoint, bucket, monkeypatch):
    # A new store on S3 is written in place under a claim beside it, created with a
    # conditional write (If-None-Match: *): while one write holds it (simulated: a claim
    # by a live process), a second creating write is refused with StoreExists and
    # changes nothing.
    import fsspec
    import s3fs

    from pyr.io.storage import owner_tag

    modes = []
    real_pipe = s3fs.S3FileSystem._pipe_file

    async def spy(self, path, data, *args, **kwargs):
        if path.endswith(".pyr-write"):
            modes.append(kwargs.get("mode", "overwrite"))
        return await real_pipe(self, path, data, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_pipe_file", spy)
    opts = {**storage_options(s3_endpoint), "config_kwargs": {"user_agent_extra": "pyr-claim-test"}}
    store = f"s3://{bucket}/claims/r.zarr"
    fs = fsspec.filesystem("s3", **opts)
    claim = f"{bucket}/claims/r.zarr.pyr-write"
    fs.pipe_file(claim, f"{owner_tag()}-another".encode(), mode="create")
    modes.clear()
    first = _small(np.arange(48, dtype="int16").reshape(1, 8, 6), (1, 4, 3))
    with pytest.raises(pyr.StoreExists, match="another write is creating it"):
        pyr.write_zarr(first, store, storage_options=opts)
    assert modes == ["create"]  # pyr asked S3 for a conditional create
    assert not fs.exists(f"{bucket}/claims/r.zarr")
    fs.rm_file(claim)
    pyr.write_zarr(first, store, storage_options=opts)
    assert_raster_equal(pyr.read_zarr(store, storage_options=opts), pyr.compute(first))
    assert not fs.exists(claim)
