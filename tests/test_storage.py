"""One suite for every storage backend (as zarr-python's ``testing/store.py::StoreTests``).

The same tests run against a local directory, ``memory://``, moto's S3 server and a zarr
store object: first the storage layer's operations (pyr/io/storage), then write_zarr's
three protocols on it. A backend's declared capabilities (``atomic_publish``,
``atomic_claim``) decide what is checked, never its kind.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from servers import storage_options

import pyr
from pyr.io.storage import Storage, ZarrStoreStorage, storage_of
from pyr.testing import assert_raster_equal

pytest_plugins = ["conftest_cloud"]
pytestmark = pytest.mark.timeout(180)

BACKENDS = ["local", "memory", "s3", "zarr store"]


@attrs.frozen
class Place:
    """Where a test's store lives: what ``write_zarr`` takes, and the ``Storage`` it makes."""

    store: Any
    options: dict[str, Any] | None

    @property
    def storage(self) -> Storage:
        return storage_of(self.store, self.options)

    def beside(self) -> list[str]:
        """What lies beside the store (staging places, claims, locks)."""
        return sorted(s.name for s in self.storage.besides(".pyr"))


@pytest.fixture(params=BACKENDS)
def place(request, tmp_path) -> Iterator[Place]:
    kind = request.param
    if kind == "local":
        yield Place(str(tmp_path / "s.zarr"), None)
    elif kind == "memory":
        run = uuid.uuid4().hex
        yield Place(f"memory://{run}/s.zarr", None)
        import fsspec

        with contextlib.suppress(FileNotFoundError):
            fsspec.filesystem("memory").rm(f"/{run}", recursive=True)
    elif kind == "s3":
        with pytest.MonkeyPatch.context():
            request.getfixturevalue("offline_aws_module")
            endpoint = request.getfixturevalue("s3_endpoint")
            bucket = request.getfixturevalue("bucket")
            yield Place(f"s3://{bucket}/d/s.zarr", storage_options(endpoint))
    else:
        yield Place(zarr.storage.MemoryStore(), None)


# --- the storage layer ----------------------------------------------------------------


def test_put_get_keys_remove(place):
    s = place.storage
    assert not s.exists()
    assert s.get("a/b") is None
    s.put("a/b", b"1")
    s.put("a/c/d", b"2")
    s.put("e", b"3")
    assert s.exists()
    assert s.get("a/b") == b"1"
    assert sorted(s.list_keys()) == ["a/b", "a/c/d", "e"]
    s.put("a/b", b"4")  # replaced whole
    assert s.get("a/b") == b"4"
    s.remove("a")
    assert sorted(s.list_keys()) == ["e"]
    s.remove("missing")  # nothing there is fine
    s.remove()
    assert s.list_keys() == []
    assert not s.has_group()


def test_claim_creates_only_once(place):
    lock = place.storage.beside(".pyr-test-lock")
    assert lock.claim("", b"first")
    assert not lock.claim("", b"second")
    assert lock.get("") == b"first"
    lock.remove()
    assert lock.get("") is None


def test_places_beside_are_found_and_apart(place):
    s = place.storage
    s.put("k", b"store")
    one = s.beside(".pyr-staging-a")
    one.put("k", b"staged")
    assert [p.name for p in s.besides(".pyr-staging-")] == [one.name]
    assert s.get("k") == b"store"
    assert sorted(s.list_keys()) == ["k"]  # a place beside is not part of the store
    one.remove()
    assert s.besides(".pyr-staging-") == []
    assert s.get("k") == b"store"


def test_publish_where_the_backend_declares_it(place):
    s = place.storage
    staged = s.beside(".pyr-staging-x")
    staged.put(".zgroup", b"{}")
    if not s.atomic_publish:
        with pytest.raises(NotImplementedError):
            s.publish(staged, replace=False)
        return
    assert s.publish(staged, replace=False)
    assert s.get(".zgroup") == b"{}"
    other = s.beside(".pyr-staging-y")
    other.put(".zgroup", b"new")
    assert not s.publish(other, replace=False)  # never over an existing store
    assert s.publish(other, replace=True)  # an exchange: the old store is now at ``other``
    assert s.get(".zgroup") == b"new"
    assert other.get(".zgroup") == b"{}"


# --- write_zarr's protocols on every backend ----------------------------------------------


def cube(value: int, first: str = "2024-01-01") -> pyr.Cube:
    gb = pyr.GeoBox.from_bounds((0, 0, 80, 40), 10, "EPSG:32631")
    data = da.from_array(np.full((2, 1, 4, 8), value, "int16"), chunks=(1, 1, 2, 4))
    return pyr.Cube(data, gb, nodata=-1, times=[first, first[:-2] + "11"])


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_write_replace_append_round_trip_and_leave_nothing_beside(place, zarr_format):
    kw = {"storage_options": place.options} if place.options else {}
    pyr.write_zarr(cube(1), place.store, zarr_format=zarr_format, **kw)
    assert_raster_equal(pyr.read_zarr(place.store, **kw), cube(1))
    with pytest.raises(pyr.StoreExists):
        pyr.write_zarr(cube(2), place.store, zarr_format=zarr_format, **kw)
    pyr.write_zarr(cube(2), place.store, mode="w", zarr_format=zarr_format, **kw)
    assert_raster_equal(pyr.read_zarr(place.store, **kw), cube(2))
    pyr.write_zarr(cube(3, "2024-03-01"), place.store, mode="a", **kw)
    back = pyr.read_zarr(place.store, chunks=None, **kw)
    assert back.data[:, 0, 0, 0].tolist() == [2, 2, 3, 3]
    assert place.beside() == []
    if not isinstance(place.storage, ZarrStoreStorage):  # plain xarray reads it too
        xr = pytest.importorskip("xarray")
        assert xr.open_zarr(place.store, storage_options=place.options).sizes["time"] == 4


def test_replace_by_a_smaller_store_leaves_no_stale_chunks(place):
    kw = {"storage_options": place.options} if place.options else {}
    gb = pyr.GeoBox.from_bounds((0, 0, 60, 80), 10, "EPSG:32631")
    old = pyr.Raster(da.from_array(np.ones((3, 8, 6), "int16"), chunks=(3, 2, 2)), gb)  # 12 chunks
    pyr.write_zarr(old, place.store, **kw)
    new = pyr.Raster(np.full((1, 4, 6), 7, "int16"), pyr.GeoBox.from_bounds((0, 0, 60, 40), 10, "EPSG:32631"))
    pyr.write_zarr(new, place.store, mode="w", **kw)
    assert_raster_equal(pyr.read_zarr(place.store, **kw), new)
    chunks = [
        k for k in place.storage.list_keys() if k.startswith("band_data/") and "/." not in k and "zarr.json" not in k
    ]
    assert chunks == ["band_data/0.0.0"]
    assert place.beside() == []


def test_a_failed_replace_keeps_the_old_store_and_leaves_nothing(place, monkeypatch):
    from test_zarr import fail_chunk_write_at

    kw = {"storage_options": place.options} if place.options else {}
    pyr.write_zarr(cube(1), place.store, **kw)
    before = {k: place.storage.get(k) for k in place.storage.list_keys()}
    fail_chunk_write_at(monkeypatch, row=2, col=4)
    with pytest.raises(OSError, match="on purpose"), dask.config.set(scheduler="threads"):
        pyr.write_zarr(cube(2), place.store, mode="w", **kw)
    assert {k: place.storage.get(k) for k in place.storage.list_keys()} == before
    assert place.beside() == []


def test_a_failed_new_write_leaves_nothing(place, monkeypatch):
    from test_zarr import fail_chunk_write_at

    kw = {"storage_options": place.options} if place.options else {}
    fail_chunk_write_at(monkeypatch, row=2, col=4)
    with pytest.raises(OSError, match="on purpose"), dask.config.set(scheduler="sync"):
        pyr.write_zarr(cube(2), place.store, **kw)
    assert not place.storage.has_group()
    assert place.storage.list_keys() == []
    assert place.beside() == []
    monkeypatch.undo()
    pyr.write_zarr(cube(2), place.store, **kw)  # the same call again succeeds
    assert_raster_equal(pyr.read_zarr(place.store, **kw), cube(2))


def test_local_publish_without_renameat2(tmp_path, monkeypatch):
    # Where renameat2 is missing, plain renames stand in (docs/design.md says what differs).
    from pyr.io.storage import local

    monkeypatch.setattr(local, "_RENAMEAT2", None)
    s = storage_of(str(tmp_path / "s.zarr"), None)
    staged = s.beside(".pyr-staging-x")
    staged.put(".zgroup", b"old")
    assert s.publish(staged, replace=False)
    other = s.beside(".pyr-staging-y")
    other.put(".zgroup", b"new")
    assert not s.publish(other, replace=False)
    assert s.publish(other, replace=True)
    assert s.get(".zgroup") == b"new"
    assert other.get(".zgroup") == b"old"


def test_owner_alive_is_the_one_liveness_rule() -> None:
    # write_tiff's staging folders used a flock and the Zarr protocols the owner tag: two rules
    # for one question. Both now name the owner (host hash, pid, then anything) and ask this.
    import subprocess
    import sys

    from pyr.io.storage import owner_alive, owner_tag

    host = owner_tag().split("-")[0]
    other_host = f"{(int(host, 16) + 1) % 2**32:08x}"
    assert owner_alive(owner_tag())
    assert owner_alive(f"{owner_tag()}-0a1b2c3d-run\n")  # a claim's content: the tag, an id, a run
    assert not owner_alive(f"{host}-4194305-0a1b2c3d")  # above Linux's largest pid: no such process
    assert owner_alive(f"{other_host}-4194305")  # another host's process: nothing here can tell
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert owner_alive(f"{host}-{writer.pid}-0a1b2c3d")
    finally:
        writer.communicate(b"")
    assert not owner_alive(f"{host}-{writer.pid}-0a1b2c3d")


def test_a_delayed_tiff_write_keeps_its_staging_between_its_tasks(tmp_path) -> None:
    # write_tiff(compute=False) used to hold its staging folder (a flock) only while one of its
    # tasks ran: another write to the same path between two of them removed the chunks already
    # staged and the delayed write failed (the gap design.md named). The folder now names its
    # owner, this live process, so no other write removes it.
    from dask.callbacks import Callback

    from pyr import GeoBox, Raster, read, write_tiff

    gb = GeoBox.from_bounds((0, 0, 640, 640), 10, "EPSG:32631")
    values = np.arange(64 * 64, dtype="uint16").reshape(1, 64, 64)
    path = tmp_path / "out.tif"
    delayed = write_tiff(Raster(da.from_array(values, chunks=(1, 32, 32)), gb), path, compute=False)
    meanwhile: list[str] = []

    class OtherWriteBetweenTasks(Callback):  # type: ignore[misc]  # dask is untyped
        def _posttask(self, key: Any, result: Any, dsk: Any, state: Any, worker_id: Any) -> None:
            if "pyr-tiff-chunk" in str(key) and not meanwhile:
                write_tiff(Raster(values[:, ::-1].copy(), gb), path)  # removes the staging of dead writes
                meanwhile.append(str(key))

    with dask.config.set(scheduler="sync"), OtherWriteBetweenTasks():
        delayed.compute()
    assert meanwhile, "no chunk task ran"
    np.testing.assert_array_equal(read(path).data, values)  # the delayed write published last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
