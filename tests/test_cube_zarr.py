"""Cubes in Zarr: CF time round trip, xarray/rioxarray as clients, appending later dates."""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from pathlib import Path

import attrs
import dask
import dask.array as da
import numpy as np
import pytest
import zarr
from _direct import spy_direct
from affine import Affine
from dask.delayed import Delayed
from hypothesis import given
from hypothesis import strategies as st

import pyr
from pyr import Cube, GeoBox, GridMismatch, InvalidArgument, Raster, read_zarr, write_zarr
from pyr.testing import assert_raster_equal
from pyr.testing.strategies import cube_splits, cubes, gappy_cubes

FORMATS = [2, 3]


def snapshot(store: Path) -> dict[str, tuple[int, bytes]]:
    """mtime and content of every file in the store."""
    out = {}
    for dirpath, _, files in os.walk(store):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(store))] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


def data_chunks(snap: dict[str, tuple[int, bytes]]) -> dict[str, tuple[int, bytes]]:
    """The data variable's chunk files (not its metadata)."""
    return {k: v for k, v in snap.items() if k.startswith("band_data/") and "zarr.json" not in k and "/." not in k}


@pytest.mark.parametrize("zarr_format", FORMATS)
@given(cube=gappy_cubes(max_side=12, max_times=5))
def test_round_trip_with_times(zarr_format, cube):
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "c.zarr"
        write_zarr(cube, store, zarr_format=zarr_format)
        assert zarr.open_array(store, path="band_data", mode="r").chunks[0] == 1  # one date per chunk
        lazy = read_zarr(store)
        assert isinstance(lazy, Cube)
        assert lazy.is_lazy
        assert_raster_equal(lazy, cube)
        assert_raster_equal(read_zarr(store, chunks=None), cube)


def test_xarray_and_rioxarray_open_the_cube_store(tmp_path):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    gb = GeoBox((6, 5), Affine(20.0, 0.0, 399960.0, 0.0, -20.0, 3300040.0), "EPSG:32629")
    rng = np.random.default_rng(1)
    values = rng.integers(1, 5000, (3, 2, 6, 5)).astype("uint16")
    values[1, :, :2, :2] = 0
    times = np.array(["2024-01-03T10:30:00", "2024-01-13", "2024-02-02"], "datetime64[ns]")
    cube = Cube(da.from_array(values, chunks=(1, 2, 3, 5)), gb, nodata=0, bands=("B04", "B08"), times=times)
    store = tmp_path / "cube.zarr"
    write_zarr(cube, store)
    ds = xr.open_zarr(store, mask_and_scale=False)
    arr = ds["band_data"]
    assert arr.dims == ("time", "band", "y", "x")
    np.testing.assert_array_equal(ds["time"].values, times)
    assert list(ds["band"].values) == ["B04", "B08"]
    assert arr.rio.crs.to_epsg() == 32629
    assert arr.rio.transform() == gb.transform
    assert arr.rio.nodata == 0
    np.testing.assert_array_equal(arr.values, values)
    masked = xr.open_zarr(store)["band_data"].values
    assert np.isnan(masked[1, :, :2, :2]).all()


# --- append -----------------------------------------------------------------------


def later(cube: Cube, days: int = 400) -> Cube:
    """The same cube, every date shifted ``days`` later (after anything it held)."""
    assert cube.times is not None
    return attrs.evolve(cube, times=cube.times + np.timedelta64(days * 86400, "s"))


@pytest.mark.parametrize("zarr_format", FORMATS)
@given(cube=cubes(max_side=10, max_times=6).filter(lambda c: c.ntimes > 1), data=st.data())
def test_append_round_trip_without_rewriting_existing_chunks(zarr_format, cube, data):
    k = data.draw(cube_splits(cube))
    head = attrs.evolve(cube, data=cube.data[:k], times=cube.times[:k])
    tail = attrs.evolve(cube, data=cube.data[k:], times=cube.times[k:])
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "c.zarr"
        write_zarr(head, store, zarr_format=zarr_format)
        before = data_chunks(snapshot(store))
        assert write_zarr(tail, store, mode="a") is None
        after = data_chunks(snapshot(store))
        assert {k: v for k, v in after.items() if k in before} == before  # same files, same mtimes and bytes
        assert_raster_equal(read_zarr(store), cube)
        assert_raster_equal(read_zarr(store, chunks=None), cube)


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_append_lazy_cube_twice_and_read_lazily_between(tmp_path, zarr_format):
    gb = GeoBox.from_bounds((0, 0, 60, 40), 10, "EPSG:32631")
    values = np.arange(5 * 4 * 6, dtype="float32").reshape(5, 1, 4, 6)
    times = np.array([f"2024-0{m}-01" for m in range(1, 6)], "datetime64[ns]")
    cube = Cube(da.from_array(values, chunks=(1, 1, 2, 3)), gb, nodata=-1.0, times=times)
    store = tmp_path / "c.zarr"
    write_zarr(attrs.evolve(cube, data=cube.data[:2], times=times[:2]), store, zarr_format=zarr_format)
    assert read_zarr(store).data.compute().shape[0] == 2  # a lazy read caches handles in this thread
    write_zarr(attrs.evolve(cube, data=cube.data[2:3], times=times[2:3]), store, mode="a")
    np.testing.assert_array_equal(read_zarr(store).data.compute(), values[:3])
    # differently chunked lazy data is aligned to the store's chunks
    write_zarr(attrs.evolve(cube, data=cube.data[3:].rechunk((2, 1, 4, 6)), times=times[3:]), store, mode="a")
    assert_raster_equal(read_zarr(store), cube)
    assert dict(zarr.open_group(store, mode="r").attrs)["pyr"]["complete"] is True


def base_cube(nodata: float | int | None = 0, **changes) -> Cube:
    gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    cube = Cube(
        np.ones((2, 2, 2, 4), "uint16"),
        gb,
        nodata=nodata,
        bands=("red", "nir"),
        times=["2024-01-01", "2024-01-11"],
    )
    return attrs.evolve(cube, **changes)


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_appended_chunks_are_written_by_the_fast_path(tmp_path, monkeypatch, zarr_format):
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store, zarr_format=zarr_format)
    done = spy_direct(monkeypatch, "write_region")
    tail = later(base_cube(data=np.arange(32, dtype="uint16").reshape(2, 2, 2, 4)))
    write_zarr(tail, store, mode="a")
    assert done  # every block of the new dates (whole chunks) was written directly
    assert all(done)
    back = read_zarr(store, chunks=None)
    np.testing.assert_array_equal(back.data[2:], tail.data)
    np.testing.assert_array_equal(back.data[:2], base_cube().data)


@pytest.mark.parametrize("per_task", [1, 3])
def test_append_computes_and_writes_each_block_in_one_task(tmp_path, per_task):
    # As write_zarr: each new block is computed and written by one task (no pixels cross
    # processes), several blocks per task with pyr.chunks-per-task; the store is the same.
    values = np.arange(4 * 2 * 2 * 4, dtype="uint16").reshape(4, 2, 2, 4)
    tail = later(
        base_cube(data=da.from_array(values, chunks=(1, 2, 2, 4)) + 1, times=[f"2024-0{m}-01" for m in range(1, 5)])
    )
    for name, setting in (("one", 1), ("grouped", per_task)):
        store = tmp_path / f"{name}.zarr"
        write_zarr(base_cube(), store)
        with dask.config.set({"pyr.chunks-per-task": setting}):
            job = write_zarr(tail, store, mode="a", compute=False)
        chunk_tasks = [k for k in dict(job.__dask_graph__()) if isinstance(k, tuple)]
        assert len(chunk_tasks) == math.ceil(4 / setting)  # the "+ 1" of every block is inside its write task
        job.compute(scheduler="processes", num_workers=2)
    one, grouped = (data_chunks(snapshot(tmp_path / f"{n}.zarr")) for n in ("one", "grouped"))
    assert {k: v[1] for k, v in grouped.items()} == {k: v[1] for k, v in one.items()}
    back = read_zarr(tmp_path / "grouped.zarr", chunks=None)
    np.testing.assert_array_equal(back.data[2:], values + 1)


@pytest.mark.parametrize(
    ("other", "what"),
    [
        (later(base_cube(geobox=GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32632"))), "EPSG:32632"),
        (later(base_cube(geobox=GeoBox.from_bounds((10, 0, 50, 20), 10, "EPSG:32631"))), "origin"),
        (later(base_cube(data=np.ones((2, 2, 2, 4), "int16"))), "int16"),
        (later(base_cube(nodata=None)), "nodata None"),
        (later(base_cube(bands=("nir", "red"))), "bands"),
    ],
)
def test_append_refuses_a_mismatch_and_changes_nothing(tmp_path, other, what):
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    before = snapshot(store)
    with pytest.raises(GridMismatch, match=what):
        write_zarr(other, store, mode="a")
    assert snapshot(store) == before


def test_append_refuses_dates_not_after_the_last(tmp_path):
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    before = snapshot(store)
    for times in (["2024-01-11", "2024-02-01"], ["2023-12-01", "2024-03-01"], ["2024-03-01", "2024-02-01"]):
        with pytest.raises(InvalidArgument, match=r"later dates|strictly increasing"):
            write_zarr(base_cube(times=times), store, mode="a")
    with pytest.raises(InvalidArgument, match="needs a cube with times"):
        write_zarr(base_cube(times=None), store, mode="a")
    assert snapshot(store) == before


def test_append_refuses_other_targets(tmp_path):
    with pytest.raises(InvalidArgument, match="does not exist"):
        write_zarr(base_cube(), tmp_path / "nothing.zarr", mode="a")
    raster_store = tmp_path / "r.zarr"
    cube = base_cube()
    write_zarr(Raster(cube.data[0], cube.geobox, nodata=0, bands=cube.bands), raster_store)
    with pytest.raises(InvalidArgument, match="not a pyr cube store"):
        write_zarr(later(cube), raster_store, mode="a")
    store = tmp_path / "c.zarr"
    write_zarr(cube, store)
    with pytest.raises(InvalidArgument, match="appends dates of a Cube"):
        write_zarr(Raster(cube.data[0], cube.geobox, nodata=0, bands=cube.bands), store, mode="a")


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_append_compute_false_touches_nothing_until_computed(tmp_path, zarr_format):
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store, zarr_format=zarr_format)
    before = snapshot(store)
    delayed = write_zarr(later(base_cube(data=np.full((2, 2, 2, 4), 7, "uint16"))), store, mode="a", compute=False)
    assert isinstance(delayed, Delayed)
    assert snapshot(store) == before
    delayed.compute()
    back = read_zarr(store, chunks=None)
    assert back.ntimes == 4
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 7, 7]
    np.testing.assert_array_equal(back.times[2:], later(base_cube()).times)


def test_old_dates_stay_readable_while_appending_and_after_a_failure(tmp_path, monkeypatch):
    # Issue 13: an unfinished append made read_zarr refuse the previous dates (IncompleteStore).
    # The new dates are written beyond the shape readers see, published at the end.
    from pyr.io.zarr import append

    store = tmp_path / "c.zarr"
    old = base_cube()
    write_zarr(old, store)
    before = data_chunks(snapshot(store))
    seen_during: list[object] = []
    real_write = append.write_block

    def failing_write(storage, name, shape, region, block, run):
        seen_during.append(read_zarr(store, chunks=None))  # what every reader sees while the append runs
        if region[0].start == 3:
            raise RuntimeError("disk on fire")
        real_write(storage, name, shape, region, block, run)

    monkeypatch.setattr(append, "write_block", failing_write)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_zarr(later(base_cube(data=np.full((2, 2, 2, 4), 5, "uint16"))), store, mode="a")
    assert seen_during
    for seen in [*seen_during, read_zarr(store, chunks=None)]:
        assert_raster_equal(seen, old)
    xr = pytest.importorskip("xarray")
    assert xr.open_zarr(store).sizes["time"] == 2
    after = data_chunks(snapshot(store))
    assert {k: v for k, v in after.items() if k in before} == before  # existing dates untouched
    monkeypatch.setattr(append, "write_block", real_write)
    lock = tmp_path / "c.zarr.pyr-append"
    assert lock.exists()  # the failed append still holds the store
    good = later(base_cube(data=np.full((2, 2, 2, 4), 6, "uint16")), days=30)
    with pytest.raises(pyr.WriteError, match="another append running, or one that failed") as info:
        write_zarr(good, store, mode="a")  # another append: refused, nothing changed
    assert str(lock) in str(info.value)
    assert_raster_equal(read_zarr(store, chunks=None), old)
    lock.unlink()  # what the message says to do when no append is running
    write_zarr(good, store, mode="a")  # the failed one's unpublished dates are written over
    back = read_zarr(store, chunks=None)
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 6, 6]
    np.testing.assert_array_equal(back.times[2:], good.times)
    assert not lock.exists()


def test_the_same_append_resumes_itself_after_a_failure(tmp_path, monkeypatch):
    from pyr.io.zarr import append

    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    real_write = append.write_block

    def failing_write(storage, name, shape, region, block, run):
        if region[0].start == 3:
            raise RuntimeError("disk on fire")
        real_write(storage, name, shape, region, block, run)

    new = later(base_cube(data=np.full((2, 2, 2, 4), 5, "uint16")))
    monkeypatch.setattr(append, "write_block", failing_write)
    with pytest.raises(RuntimeError, match="disk on fire"):
        write_zarr(new, store, mode="a")
    monkeypatch.undo()
    write_zarr(new, store, mode="a")  # the same append holds the lock already: it resumes
    back = read_zarr(store, chunks=None)
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 5, 5]
    assert not (tmp_path / "c.zarr.pyr-append").exists()


def test_the_same_append_started_twice_never_publishes_half_filled_dates(tmp_path, monkeypatch):
    # Issue 13: the same append started twice, the second dying half-way, left the store
    # marked complete with a date half fill. Now the second takes the lock over; the
    # first then publishes nothing; a rerun finishes the append.
    from pyr.io.zarr import append

    store = tmp_path / "c.zarr"
    old = base_cube()
    write_zarr(old, store)
    new = later(base_cube(data=np.full((2, 2, 2, 4), 5, "uint16")))
    real_write = append.write_block
    calls = []

    def interleave(storage, name, shape, region, block, run):
        calls.append(region)
        real_write(storage, name, shape, region, block, run)
        if len(calls) == 1:  # the first append wrote one block: the second starts, and dies after one block
            monkeypatch.setattr(append, "write_block", dying)
            second = write_zarr(new, store, mode="a", compute=False)
            with pytest.raises(RuntimeError, match="killed"), dask.config.set(scheduler="sync"):
                second.compute()
            monkeypatch.setattr(append, "write_block", interleave)

    def dying(storage, name, shape, region, block, run):
        raise RuntimeError("killed")

    monkeypatch.setattr(append, "write_block", interleave)
    job = write_zarr(new, store, mode="a", compute=False)
    with pytest.raises(pyr.WriteError, match="took its lock over"), dask.config.set(scheduler="sync"):
        job.compute()
    assert_raster_equal(read_zarr(store, chunks=None), old)  # nothing half-filled was published
    monkeypatch.undo()
    write_zarr(new, store, mode="a")  # a rerun finishes it
    back = read_zarr(store, chunks=None)
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 5, 5]
    assert not (tmp_path / "c.zarr.pyr-append").exists()


def test_two_appends_at_once_never_mix(tmp_path):
    # The second append to start, while the first runs, is refused; each
    # date's pixels are the ones appended with that date.
    import threading

    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    first = later(base_cube(data=np.full((2, 2, 2, 4), 5, "uint16")), days=100)
    second = later(base_cube(data=np.full((2, 2, 2, 4), 7, "uint16")), days=200)
    outcomes: dict[int, str] = {}

    def append(value, cube):
        try:
            write_zarr(cube, store, mode="a")
            outcomes[value] = "appended"
        except pyr.WriteError:
            outcomes[value] = "refused"
        except (pyr.InvalidArgument, pyr.IncompleteStore) as err:  # planned while the other was running
            outcomes[value] = f"not planned: {type(err).__name__}"

    threads = [threading.Thread(target=append, args=item) for item in ((5, first), (7, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert "appended" in outcomes.values()
    back = read_zarr(store, chunks=None)
    values = back.data[:, 0, 0, 0].tolist()
    days = ((back.times - back.times[0]) // np.timedelta64(1, "D")).tolist()
    by_day = {0: 1, 10: 1, 100: 5, 110: 5, 200: 7, 210: 7}
    assert [by_day[d] for d in days] == values, (days, values, outcomes)


def test_appended_store_opens_in_xarray(tmp_path):
    xr = pytest.importorskip("xarray")
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    write_zarr(later(base_cube(nodata=0)), store, mode="a")
    ds = xr.open_zarr(store)
    expected = np.concatenate([base_cube().times, later(base_cube()).times])
    np.testing.assert_array_equal(ds["time"].values, expected)
    assert ds["band_data"].shape == (4, 2, 2, 4)
    assert not math.isnan(float(ds["band_data"].values[3, 1, 1, 3]))


def test_append_from_pyr_namespace_is_curried(tmp_path):
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    append = pyr.write_zarr(store=store, mode="a")
    append(later(base_cube()))
    assert read_zarr(store).ntimes == 4


@pytest.mark.parametrize("zarr_format", FORMATS)
def test_append_to_an_fsspec_url(zarr_format):
    url = f"memory://{uuid.uuid4().hex}/c.zarr"
    write_zarr(base_cube(), url, zarr_format=zarr_format)
    write_zarr(later(base_cube(data=np.full((2, 2, 2, 4), 3, "uint16"))), url, mode="a")
    back = read_zarr(url, chunks=None)
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 3, 3]
    np.testing.assert_array_equal(back.times, np.concatenate([base_cube().times, later(base_cube()).times]))


def test_an_append_refused_at_its_start_leaves_no_lock(tmp_path):
    # Planned, then the store changed before it ran: the append fails before
    # changing anything, so it must not leave a lock that refuses the next one.
    store = tmp_path / "c.zarr"
    write_zarr(base_cube(), store)
    stale = write_zarr(later(base_cube(), days=100), store, mode="a", compute=False)
    write_zarr(later(base_cube(), days=50), store, mode="a")  # the store now holds 4 dates
    with pytest.raises(pyr.InvalidArgument, match="changed since the append was planned"):
        stale.compute()
    assert not (tmp_path / "c.zarr.pyr-append").exists()
    write_zarr(later(base_cube(), days=100), store, mode="a")  # planned afresh: appends
    assert read_zarr(store).ntimes == 6
