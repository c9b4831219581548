"""Issue 13's defects of write_zarr: refused arguments, killed writes, Zarr v3 fill values.

Each test here failed on the code before the storage layer (pyr/io/storage) and the protocol
package (pyr/io/zarr). The kills run a write in a child process that ``pyr._faults`` ends at a
named step (``PYR_FAULT_AT``), as the crash harness (tests/crash/) does for every step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import zarr

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr._faults import EXIT_CODE
from pyr.testing import assert_raster_equal

ROOT = Path(__file__).resolve().parents[1]
GB = GeoBox.from_bounds((0, 0, 80, 40), 10, "EPSG:32631")


def small_cube(value: int = 1, times=("2024-01-01", "2024-01-11")) -> Cube:
    return Cube(np.full((2, 1, 4, 8), value, "int16"), GB, nodata=-1, times=list(times))


# --- arguments checked before anything is touched --------------------------------------


@pytest.mark.parametrize("place", ["", " ", ".", "..", "cwd", "parent", "home", "root"])
def test_store_paths_that_must_never_be_replaced_are_refused(tmp_path, monkeypatch, place):
    # Issue 13: write_zarr(r, "", mode="w") (and ".", "..", the current folder, its parent)
    # replaced the folder with a store, deleting the user's files.
    work = tmp_path / "work"
    work.mkdir()
    (work / "precious.txt").write_text("keep me")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = {"cwd": str(work), "parent": str(tmp_path), "home": "~", "root": "/"}.get(place, place)
    if place == "home":
        path = str(tmp_path)
    r = Raster(np.ones((1, 4, 8), "uint8"), GB)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for mode in ("w", "w-"):
        with pytest.raises(InvalidArgument, match="store="):
            pyr.write_zarr(r, path, mode=mode)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert (work / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize("store", [None, 123, 1.5, b"bytes.zarr", ["a.zarr"]])
def test_a_store_of_the_wrong_type_is_an_invalid_argument(store):
    # Issue 13: store=None raised FileNotFoundError: '', store=123 a TypeError deep in zarr.
    r = Raster(np.ones((1, 4, 8), "uint8"), GB)
    with pytest.raises(InvalidArgument, match="store="):
        pyr.write_zarr(r, store)


@pytest.mark.parametrize("name", [".zattrs", ".zgroup", "zarr.json", ".zarray", "1band", "a b", "a/b", "", 3])
def test_bad_variable_names_are_invalid_arguments(tmp_path, name):
    # Issue 13: name=".zattrs" raised a WriteError blaming "another write of the same store".
    r = Raster(np.ones((1, 4, 8), "uint8"), GB)
    with pytest.raises(InvalidArgument, match="name="):
        pyr.write_zarr(r, tmp_path / "n.zarr", name=name)
    assert not any(tmp_path.iterdir())


# --- Zarr v3 fill values that the pinned xarray and zarr-python read ---------------------


@pytest.mark.parametrize("kind", ["raster", "cube"])
@pytest.mark.parametrize("nodata", [-9999.0, float("nan")])
def test_v3_float_nodata_opens_in_plain_xarray_and_zarr_python(tmp_path, kind, nodata):
    # Issue 13: xarray.open_zarr failed on pyr's v3 stores with a float nodata
    # ("Failed to decode fill_value").
    xr = pytest.importorskip("xarray")
    data = np.arange(2 * 4 * 8, dtype="float32").reshape(2, 1, 4, 8)
    data[0, 0, 0, 0] = nodata
    obj: Raster | Cube
    if kind == "cube":
        obj = Cube(data, GB, nodata=nodata, times=["2024-01-01", "2024-01-11"])
    else:
        obj = Raster(data[0], GB, nodata=nodata)
    store = tmp_path / "v3.zarr"
    pyr.write_zarr(obj, store, zarr_format=3)
    ds = xr.open_zarr(store)
    values = ds["band_data"].values
    assert np.isnan(values.reshape(-1)[0])  # the nodata cell, masked by xarray
    np.testing.assert_array_equal(values.reshape(-1)[1:], data.reshape(-1)[1 : values.size])
    arr = zarr.open_group(store, mode="r")["band_data"]
    np.testing.assert_array_equal(arr[...].reshape(-1)[1:], data.reshape(-1)[1 : values.size])
    assert_raster_equal(pyr.read_zarr(store), obj)


# --- killed writes ------------------------------------------------------------------------

CHILD = r"""
import sys
import dask
import dask.array as da
import numpy as np
import pyr

dask.config.set(scheduler="sync")
store, mode, value, first = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
gb = pyr.GeoBox.from_bounds((0, 0, 80, 40), 10, "EPSG:32631")
pixels = da.from_array(np.full((2, 1, 4, 8), value, "int16"), chunks=(1, 1, 2, 4))
times = [first, first[:-2] + "11"]
pyr.write_zarr(pyr.Cube(pixels, gb, nodata=-1, times=times), store, mode=mode)
"""


def child(store: Path, mode: str, value: int, first: str = "2024-01-01", at: str | None = None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYR_FAULT")}
    if at:
        env["PYR_FAULT_AT"] = at
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), mode, str(value), first],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode in (0, EXIT_CODE), done.stderr[-3000:]
    return done.returncode


def beside(store: Path) -> list[str]:
    return sorted(p.name for p in store.parent.iterdir() if p.name != store.name)


@pytest.mark.parametrize("at", ["zarr.write:chunk#3"])  # every step: tests/crash
def test_a_killed_new_write_never_looks_complete_and_the_rerun_cleans_up(tmp_path, at):
    # Issue 13: a killed mode="w-" write left a store xarray and GDAL opened with fill
    # values for chunks, and the rerun failed with StoreExists on it.
    xr = pytest.importorskip("xarray")
    store = tmp_path / "s.zarr"
    assert child(store, "w-", 2, at=at) == EXIT_CODE
    assert not store.exists()
    with pytest.raises(pyr.IncompleteStore):
        pyr.read_zarr(store)
    with pytest.raises((FileNotFoundError, OSError, ValueError, KeyError)):  # there is no store to open
        xr.open_zarr(store)
    assert beside(store)  # the killed run's staging place
    assert child(store, "w-", 2) == 0
    assert beside(store) == []
    assert pyr.read_zarr(store, chunks=None).data.min() == 2


@pytest.mark.parametrize("at", ["zarr.replace:publish", "zarr.replace:cleanup"])  # every step: tests/crash
def test_a_killed_replace_leaves_a_store_at_the_path_and_the_rerun_cleans_up(tmp_path, at):
    # Issue 13: a replace killed between its two renames left no store at the path, and
    # a successful rerun left the old and the staged copies behind for good.
    store = tmp_path / "s.zarr"
    assert child(store, "w-", 1) == 0
    assert child(store, "w", 2, at=at) == EXIT_CODE
    values = set(np.unique(pyr.read_zarr(store, chunks=None).data).tolist())
    assert values in ({1}, {2})  # the old store or the new one, whole
    assert child(store, "w", 2) == 0
    assert beside(store) == []
    assert set(np.unique(pyr.read_zarr(store, chunks=None).data).tolist()) == {2}


@pytest.mark.parametrize("at", ["zarr.append:metadata", "zarr.append:unlock"])  # every step: tests/crash
def test_a_killed_append_keeps_the_old_dates_readable_and_the_rerun_finishes_it(tmp_path, at):
    # Issue 13: an append killed in its last step wedged the store (rerun: "appends only
    # later dates"), and while unfinished read_zarr refused the previous dates.
    store = tmp_path / "c.zarr"
    assert child(store, "w-", 1) == 0
    assert child(store, "a", 2, first="2024-03-01", at=at) == EXIT_CODE
    seen = pyr.read_zarr(store, chunks=None)
    if seen.ntimes == 2:
        assert set(np.unique(seen.data).tolist()) == {1}
    else:  # killed after publishing: the whole append is in
        assert seen.data[:, 0, 0, 0].tolist() == [1, 1, 2, 2]
    assert child(store, "a", 2, first="2024-03-01") == 0
    back = pyr.read_zarr(store, chunks=None)
    assert back.data[:, 0, 0, 0].tolist() == [1, 1, 2, 2]
    assert set(np.unique(back.data[2:]).tolist()) == {2}
    assert beside(store) == []


STEPS = {
    # (protocol, storage that publishes atomically): the steps in order, chunk steps collapsed
    ("write", True): ["clean", "stage", "chunk", "metadata", "publish"],
    ("replace", True): ["clean", "stage", "chunk", "metadata", "publish", "cleanup"],
    ("write", False): ["clean", "claim", "stage", "chunk", "publish", "release"],
    ("replace", False): ["clean", "stage", "chunk", "metadata", "unpublish", "remove", "copy", "publish", "cleanup"],
    ("append", True): ["lock", "times", "chunk", "metadata", "unlock"],
    ("append", False): ["lock", "times", "chunk", "metadata", "unlock"],
}


@pytest.mark.parametrize("local", [True, False])
def test_every_protocol_names_its_steps(tmp_path, monkeypatch, local):
    # The crash harness finds the kill points by these names (docs/design.md, "What a crash leaves").
    import uuid

    import dask.array as da

    trace = tmp_path / "trace"
    monkeypatch.setenv("PYR_FAULT_TRACE", str(trace))
    store = str(tmp_path / "s.zarr") if local else f"memory://{uuid.uuid4().hex}/s.zarr"

    def cube(value, first):
        data = da.from_array(np.full((2, 1, 4, 8), value, "int16"), chunks=(1, 1, 2, 4))
        return Cube(data, GB, nodata=-1, times=[first, first[:-2] + "11"])

    for protocol, mode, obj in (
        ("write", "w-", cube(1, "2024-01-01")),
        ("replace", "w", cube(2, "2024-01-01")),
        ("append", "a", cube(3, "2024-03-01")),
    ):
        trace.write_text("")
        pyr.write_zarr(obj, store, mode=mode)
        names = trace.read_text().split()
        assert all(n.startswith(f"zarr.{protocol}:") for n in names)
        steps = [n.split(":", 1)[1] for n in names]
        assert steps.count("chunk") == 8  # one per chunk task
        collapsed = [s for i, s in enumerate(steps) if not (s == "chunk" and i and steps[i - 1] == "chunk")]
        assert collapsed == STEPS[protocol, local]
