"""``write_zarr`` / ``read_zarr``: round trips, the CF metadata block, completeness, modes, real clients."""

from __future__ import annotations

import base64
import json
import math
import struct
import tempfile
import uuid
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import zarr
from affine import Affine
from dask.callbacks import Callback
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.crs import CRS

import pyr
from pyr import GeoBox, IncompleteStore, InvalidArgument, Raster, StoreExists
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import rasters

UTM = GeoBox((5, 7), Affine(600.079, 0, 300000, 0, -600.855, -100000), "EPSG:32620")  # non-square, south
GEO = GeoBox((6, 9), Affine(0.25, 0, -10.5, 0, -0.25, 50.0), "EPSG:4326")


def int_raster(gb=UTM, count=2, nodata=-1, lazy=False):
    data = np.arange(count * gb.height * gb.width, dtype="int16").reshape(count, *gb.shape)
    data[0, 0, 0] = -1
    if lazy:
        data = da.from_array(data, chunks=(count, 2, 3))
    return Raster(data, gb, nodata=nodata, bands=tuple(f"b{i}" for i in range(count)))


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def attrs_of(store: Path, name: str, fmt: int) -> dict:
    if fmt == 2:
        zattrs = store / name / ".zattrs"
        return json.loads(zattrs.read_text()) if zattrs.exists() else {}
    return json.loads((store / name / "zarr.json").read_text()).get("attributes", {})


# --- round trips ---------------------------------------------------------------


@settings(max_examples=20)
@given(rasters(max_side=21, max_bands=4), st.sampled_from([2, 3]), st.sampled_from([None, "auto", 4]))
def test_roundtrip_property(r, zarr_format, read_chunks):
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "r.zarr"
        pyr.write_zarr(r, store, zarr_format=zarr_format)
        back = pyr.read_zarr(store, chunks=read_chunks)
        assert back.is_lazy == (read_chunks is not None)
        assert_raster_equal(back, r)
        if r.is_lazy and read_chunks == "auto":
            assert back.chunks == r.chunks  # one dask chunk is one Zarr chunk


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("nodata", [None, 0.0, -9999.0, math.nan])
@pytest.mark.parametrize("gb", [UTM, GEO], ids=["utm-nonsquare", "geographic"])
@pytest.mark.parametrize("count", [1, 4])
def test_roundtrip_table(tmp_path, zarr_format, nodata, gb, count):
    rng = np.random.default_rng(count)
    data = rng.normal(size=(count, *gb.shape)).astype("float32")
    if nodata is not None:
        data[:, 1, 2] = nodata
    for lazy in (False, True):
        r = Raster(da.from_array(data, chunks=(count, 4, 4)) if lazy else data, gb, nodata=nodata)
        store = tmp_path / f"{lazy}.zarr"
        pyr.write_zarr(r, store, zarr_format=zarr_format)
        assert_raster_equal(pyr.read_zarr(store), r)
        assert_raster_equal(pyr.read_zarr(store, chunks=None), r)


def test_south_up_grid_roundtrip(tmp_path):
    gb = GeoBox((4, 3), Affine(0.5, 0, 10, 0, 0.5, -30), "EPSG:4326")
    r = Raster(np.arange(12, dtype="float32").reshape(1, 4, 3), gb, nodata=-9999.0)
    pyr.write_zarr(r, tmp_path / "s.zarr")
    back = pyr.read_zarr(tmp_path / "s.zarr", chunks=None)
    assert back.geobox == gb
    assert back.geobox.resolution == (0.5, 0.5)
    assert_raster_equal(back, r)


def test_lazy_write_equals_eager_write(tmp_path):
    r = int_raster()
    pyr.write_zarr(r, tmp_path / "eager.zarr")
    pyr.write_zarr(int_raster(lazy=True), tmp_path / "lazy.zarr")
    assert_raster_equal(pyr.read_zarr(tmp_path / "lazy.zarr"), pyr.read_zarr(tmp_path / "eager.zarr"))


def test_memory_store_and_named_variable():
    store = zarr.storage.MemoryStore()
    r = int_raster(lazy=True)
    pyr.write_zarr(r, store, name="ndvi")
    back = pyr.read_zarr(store)
    assert_raster_equal(back, r)
    assert "ndvi" in zarr.open_group(store, mode="r")
    for bad in ("x", "spatial_ref", "", "a/b"):
        with pytest.raises(InvalidArgument, match="name"):
            pyr.write_zarr(r, zarr.storage.MemoryStore(), name=bad)


def test_irregular_chunks_are_refused(tmp_path):
    data = da.from_array(np.zeros((1, 10, 10), "uint8"), chunks=((1,), (3, 5, 2), (10,)))
    with pytest.raises(InvalidArgument, match="regular chunks"):
        pyr.write_zarr(Raster(data, GeoBox.from_bounds((0, 0, 10, 10), 1)), tmp_path / "x.zarr")
    assert not (tmp_path / "x.zarr").exists()


def test_bad_arguments(tmp_path):
    r = int_raster()
    with pytest.raises(InvalidArgument, match="zarr_format"):
        pyr.write_zarr(r, tmp_path / "a.zarr", zarr_format=4)
    with pytest.raises(InvalidArgument, match="mode"):
        pyr.write_zarr(r, tmp_path / "a.zarr", mode="r")
    with pytest.raises(InvalidArgument, match="Raster or Cube"):
        pyr.write_zarr(r.data, tmp_path / "a.zarr")
    assert not (tmp_path / "a.zarr").exists()


# --- the CF block ----------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("gb", [UTM, GEO], ids=["utm", "geographic"])
def test_cf_metadata_block(tmp_path, zarr_format, gb):
    store = tmp_path / "cf.zarr"
    pyr.write_zarr(int_raster(gb), store, zarr_format=zarr_format)
    group = zarr.open_group(store, mode="r")

    def dims(name):
        arr = group[name]
        if zarr_format == 2:
            assert "dimension_names" not in json.dumps(arr.metadata.to_dict())
            return tuple(arr.attrs["_ARRAY_DIMENSIONS"])
        assert "_ARRAY_DIMENSIONS" not in arr.attrs
        return tuple(arr.metadata.dimension_names or ())  # 0-d: no names to give

    assert dims("band_data") == ("band", "y", "x")
    assert dims("x") == ("x",)
    assert dims("y") == ("y",)
    assert dims("band") == ("band",)
    assert dims("spatial_ref") == ()
    # x/y: cell centres, float64, CF attributes.
    y_expected, x_expected = gb.coords()
    for name, expected in (("x", x_expected), ("y", y_expected)):
        arr = group[name]
        assert arr.dtype == np.dtype("float64")
        np.testing.assert_array_equal(arr[:], expected)
        attrs = dict(arr.attrs)
        assert attrs["axis"] == name.upper()
        if gb.crs.is_geographic:
            assert attrs["standard_name"] == {"x": "longitude", "y": "latitude"}[name]
            assert attrs["units"] == {"x": "degrees_east", "y": "degrees_north"}[name]
        else:
            assert attrs["standard_name"] == f"projection_{name}_coordinate"
            assert attrs["units"] == "metre"
    np.testing.assert_array_equal(group["x"][:], gb.transform.c + gb.transform.a * (np.arange(gb.width) + 0.5))
    assert [str(b) for b in group["band"][:]] == ["b0", "b1"]
    # spatial_ref: 0-d, WKT twice, CF grid-mapping parameters, GDAL GeoTransform.
    sref = group["spatial_ref"]
    assert sref.shape == ()
    sattrs = dict(sref.attrs)
    assert CRS.from_wkt(sattrs["crs_wkt"]) == gb.crs
    assert sattrs["spatial_ref"] == sattrs["crs_wkt"]
    if gb.crs.is_geographic:
        assert sattrs["grid_mapping_name"] == "latitude_longitude"
    else:
        assert sattrs["grid_mapping_name"] == "transverse_mercator"
        assert sattrs["longitude_of_central_meridian"] == -63.0
        assert sattrs["false_easting"] == 500000.0
    gt = [float(v) for v in sattrs["GeoTransform"].split()]
    t = gb.transform
    assert gt == [t.c, t.a, t.b, t.f, t.d, t.e]
    # The data variable points at them.
    dattrs = dict(group["band_data"].attrs)
    assert dattrs["grid_mapping"] == "spatial_ref"
    assert dattrs["coordinates"] == "spatial_ref"
    assert dattrs["_FillValue"] == -1
    assert group["band_data"].dtype == np.dtype("int16")
    # Consolidated metadata and the completeness flag.
    if zarr_format == 2:
        zmeta = json.loads((store / ".zmetadata").read_text())["metadata"]
        assert {"band_data/.zattrs", "spatial_ref/.zattrs", "x/.zarray", ".zattrs"} <= set(zmeta)
    else:
        root = json.loads((store / "zarr.json").read_text())
        assert set(root["consolidated_metadata"]["metadata"]) >= {"band_data", "spatial_ref", "x", "y", "band"}
    assert dict(group.attrs)["pyr"]["complete"] is True


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_fill_value_attribute(tmp_path, zarr_format):
    gb = GEO

    def v3(value):  # how the pinned xarray encodes a float _FillValue in Zarr v3 (its FillValueCoder)
        return base64.standard_b64encode(struct.pack("<d", value)).decode()

    cases = ((None, "absent", "absent"), (math.nan, "NaN", v3(math.nan)), (-9999.0, -9999.0, v3(-9999.0)))
    for nodata, v2_expected, v3_expected in cases:
        store = tmp_path / f"{nodata}-{zarr_format}.zarr"
        r = Raster(np.zeros((1, *gb.shape), "float32"), gb, nodata=nodata)
        pyr.write_zarr(r, store, zarr_format=zarr_format)
        got = attrs_of(store, "band_data", zarr_format).get("_FillValue", "absent")
        assert got == (v2_expected if zarr_format == 2 else v3_expected)


def test_secrets_never_reach_the_metadata(tmp_path):
    store = tmp_path / "s.zarr"
    pyr.write_zarr(int_raster(), f"file://{store}", storage_options={"auto_mkdir": True})
    text = "".join(p.read_text() for p in store.rglob("*") if p.name in (".zattrs", ".zmetadata", "zarr.json"))
    assert "auto_mkdir" not in text


# --- laziness, completeness, modes ---------------------------------------------------


def test_compute_false_touches_nothing(tmp_path):
    store = tmp_path / "lazy.zarr"
    r = int_raster(lazy=True)
    with raise_if_dask_computes():
        delayed = pyr.write_zarr(r, store, compute=False)
    assert not store.exists()
    mem = zarr.storage.MemoryStore()
    pyr.write_zarr(r, mem, compute=False)
    assert not dict(mem._store_dict)
    # Eager rasters too.
    eager_store = tmp_path / "eager.zarr"
    pyr.write_zarr(int_raster(), eager_store, compute=False)
    assert not eager_store.exists()
    assert delayed.compute() is None
    assert_raster_equal(pyr.read_zarr(store), r)


def test_nothing_is_at_the_path_until_the_last_chunk_landed(tmp_path):
    # A local store is staged beside its path and published by one rename after its last chunk.
    store = tmp_path / "order.zarr"
    r = int_raster(lazy=True)
    delayed = pyr.write_zarr(r, store, compute=False)
    events: list[tuple[str, object]] = []

    class Watch(Callback):
        def _pretask(self, key, dsk, state):
            name = key[0] if isinstance(key, tuple) else key
            if str(name).startswith("pyr-zarr-final"):
                (staged,) = [p for p in tmp_path.iterdir() if p.name.startswith("order.zarr.pyr-staging-")]
                written = zarr.open_array(staged, path="band_data", mode="r")[:]
                events.append(("final", (store.exists(), np.array_equal(written, r.data.compute()))))
                with pytest.raises(IncompleteStore):  # a write is under way
                    pyr.read_zarr(store)
            elif str(name).startswith("pyr-zarr-write"):
                events.append(("write", None))

    with Watch(), dask.config.set(scheduler="threads"):
        delayed.compute()
    assert events[-1] == ("final", (False, True))  # all chunks in, nothing published yet
    assert [e[0] for e in events].count("write") == 9
    assert _places(tmp_path, "order.zarr") == []
    assert zarr.open_group(store, mode="r").attrs["pyr"]["complete"] is True


def fail_chunk_write_at(monkeypatch, *, row, col):
    """Make the write task of the chunk starting at (row, col) fail (``monkeypatch.undo()`` restores it)."""
    from pyr.io.zarr import api

    real_write = api.write_chunk

    def write_or_fail(target, name, region, *args):
        if region[-2].start == row and region[-1].start == col:
            raise OSError("disk full (on purpose)")
        real_write(target, name, region, *args)

    monkeypatch.setattr(api, "write_chunk", write_or_fail)


@pytest.mark.parametrize("per_task", [1, 3])
@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_failed_chunk_write_leaves_nothing_behind(tmp_path, monkeypatch, scheduler, per_task):
    fail_chunk_write_at(monkeypatch, row=5, col=5)  # the last of four chunks (a group of its own with 3)
    gb = GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    values = np.arange(100, dtype="int32").reshape(1, 10, 10)
    r = Raster(da.from_array(values, chunks=(1, 5, 5)), gb)
    store = tmp_path / "broken.zarr"
    config = {"scheduler": scheduler, "pyr.chunks-per-task": per_task}
    with pytest.raises(OSError, match="on purpose"), dask.config.set(config):
        pyr.write_zarr(r, store)
    # the chunks were staged beside the path, and the failed write removed them: nothing is left
    assert not store.exists()
    assert _places(tmp_path, "broken.zarr") == []
    with pytest.raises(pyr.ReadError, match=r"broken\.zarr"):
        pyr.read_zarr(store)
    # The same write again succeeds.
    monkeypatch.undo()
    pyr.write_zarr(r, store)
    assert_raster_equal(pyr.read_zarr(store), r)


def test_failed_input_chunk_leaves_nothing_that_looks_complete(tmp_path):
    def fail_on_99(block):
        if (block == 99).any():
            raise RuntimeError("chunk task failed on purpose")
        return block

    gb = GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    values = np.arange(100, dtype="int32").reshape(1, 10, 10)
    r = pyr.map_blocks(fail_on_99, Raster(da.from_array(values, chunks=(1, 5, 5)), gb))
    store = tmp_path / "broken.zarr"
    with pytest.raises(RuntimeError, match="on purpose"), dask.config.set(scheduler="threads"):
        pyr.write_zarr(r, store)
    if store.exists():  # depends on whether init ran before the failing task
        with pytest.raises(IncompleteStore):
            pyr.read_zarr(store)


@pytest.mark.parametrize("compute", [True, False])
@pytest.mark.parametrize("lazy", [True, False])
def test_mode_w_minus_refuses_and_leaves_store_untouched(tmp_path, compute, lazy):
    store = tmp_path / "exists.zarr"
    pyr.write_zarr(int_raster(), store)
    before = snapshot(store)
    other = int_raster(GEO, count=1, nodata=None, lazy=lazy)
    if compute:
        with pytest.raises(StoreExists, match=r"exists\.zarr"):
            pyr.write_zarr(other, store)
    else:
        delayed = pyr.write_zarr(other, store, compute=False)  # nothing touched yet
        assert snapshot(store) == before
        with pytest.raises(StoreExists, match=r"exists\.zarr"):
            delayed.compute()
    assert snapshot(store) == before
    assert_raster_equal(pyr.read_zarr(store), int_raster())


def test_mode_w_minus_refuses_a_non_zarr_directory(tmp_path):
    target = tmp_path / "not-zarr"
    target.mkdir()
    (target / "keep.txt").write_text("precious")
    with pytest.raises(StoreExists):
        pyr.write_zarr(int_raster(), target)
    assert (target / "keep.txt").read_text() == "precious"


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_mode_w_replaces(tmp_path, zarr_format):
    store = tmp_path / "replace.zarr"
    pyr.write_zarr(int_raster(), store, name="old", zarr_format=zarr_format)
    new = int_raster(GEO, count=1, nodata=None, lazy=True)
    pyr.write_zarr(new, store, mode="w", zarr_format=zarr_format)
    assert_raster_equal(pyr.read_zarr(store), new)
    assert "old" not in zarr.open_group(store, mode="r")


@pytest.mark.parametrize("lazy", [False, True])
def test_mode_w_replaces_a_store_this_process_wrote_before(tmp_path, lazy):
    # Handles cached by earlier writes and reads must not outlive the array they opened.
    store = tmp_path / "again.zarr"
    first = int_raster(UTM, count=1, lazy=True)
    pyr.write_zarr(first, store)
    pyr.read_zarr(store).data.compute(scheduler="sync")
    second = Raster(np.full((2, *GEO.shape), 2.5, "float32"), GEO, nodata=math.nan)
    if lazy:
        second = Raster(da.from_array(second.data, chunks=(2, 2, 2)), GEO, nodata=math.nan)
    pyr.write_zarr(second, store, mode="w")
    assert_raster_equal(pyr.read_zarr(store), second)
    third = int_raster(UTM, count=1, nodata=3, lazy=True)
    pyr.write_zarr(third, store, mode="w")
    assert_raster_equal(pyr.read_zarr(store), third)


def test_read_zarr_errors(tmp_path):
    with pytest.raises(pyr.ReadError, match=r"missing\.zarr"):
        pyr.read_zarr(tmp_path / "missing.zarr")
    group = zarr.open_group(tmp_path / "two.zarr", mode="w")
    group.create_array("a", shape=(2, 2), dtype="f4", attributes={"_ARRAY_DIMENSIONS": ["y", "x"]})
    group.create_array("b", shape=(2, 2), dtype="f4", attributes={"_ARRAY_DIMENSIONS": ["y", "x"]})
    with pytest.raises(pyr.ReadError, match="which variable"):
        pyr.read_zarr(tmp_path / "two.zarr")


# --- real clients -----------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("nodata", [None, -1])
def test_xarray_and_rioxarray_read_what_pyr_writes(tmp_path, zarr_format, nodata):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    r = int_raster(UTM, nodata=nodata, lazy=True)
    store = tmp_path / "x.zarr"
    pyr.write_zarr(r, store, zarr_format=zarr_format)
    ds = xr.open_zarr(store)
    band_data = ds["band_data"]
    assert band_data.dims == ("band", "y", "x")
    assert band_data.rio.crs == CRS.from_epsg(32620)
    assert band_data.rio.transform().almost_equals(UTM.transform, precision=1e-6)
    assert [str(b) for b in band_data["band"].values] == ["b0", "b1"]
    values = r.data.compute()
    if nodata is None:
        np.testing.assert_array_equal(band_data.values, values)
    else:
        # mask_and_scale: cells equal to _FillValue become NaN in a float array.
        assert band_data.dtype.kind == "f"
        expected = values.astype(band_data.dtype)
        expected[values == nodata] = np.nan
        np.testing.assert_array_equal(band_data.values, expected)
        assert band_data.rio.encoded_nodata == nodata
        raw = xr.open_zarr(store, mask_and_scale=False)["band_data"]
        np.testing.assert_array_equal(raw.values, values)
        assert raw.rio.nodata == nodata


def test_gdal_reads_what_pyr_writes_v2(tmp_path):
    r = int_raster(UTM, lazy=True)
    store = tmp_path / "gdal.zarr"
    pyr.write_zarr(r, store)
    with rasterio.open(f'ZARR:"{store}":/band_data') as src:
        assert src.crs == CRS.from_epsg(32620)
        assert src.transform.almost_equals(UTM.transform, precision=1e-6)
        assert src.count == 2
        assert src.nodata == -1
        np.testing.assert_array_equal(src.read(), r.data.compute())


@pytest.mark.parametrize("with_band", [True, False])
def test_read_zarr_reads_an_xarray_rioxarray_store(tmp_path, with_band):
    xr = pytest.importorskip("xarray")
    pytest.importorskip("rioxarray")
    y, x = UTM.coords()
    values = np.arange(2 * 35, dtype="float32").reshape(2, 5, 7)
    if with_band:
        arr = xr.DataArray(values, dims=("band", "y", "x"), coords={"band": [1, 2], "y": y, "x": x})
    else:
        arr = xr.DataArray(values[0], dims=("y", "x"), coords={"y": y, "x": x})
    arr = arr.rio.write_crs("EPSG:32620").rio.write_nodata(-9999.0, encoded=True)
    store = tmp_path / "xr.zarr"
    arr.to_dataset(name="band_data").to_zarr(store, zarr_format=2, consolidated=True)
    back = pyr.read_zarr(store)
    assert back.geobox.crs == CRS.from_epsg(32620)
    assert back.geobox.transform.almost_equals(UTM.transform, precision=1e-6)
    assert back.geobox.shape == UTM.shape
    assert back.nodata == -9999.0
    assert back.bands == (("1", "2") if with_band else ("1",))
    expected = values if with_band else values[:1]
    np.testing.assert_array_equal(back.data.compute(), expected)


def _cube(gb=UTM):
    values = np.arange(2 * gb.height * gb.width, dtype="float32").reshape(2, 1, *gb.shape)
    values[0, 0, 0, 0] = np.nan
    times = np.array(["2024-01-01", "2024-01-06"], dtype="datetime64[ns]")
    return pyr.Cube(values, gb, nodata=float("nan"), times=times)


def _zarr_python_copy(obj, zarr_format, store, chunks):
    """The store zarr-python itself writes for ``obj`` into ``store``, with the chunk objects ``chunks``."""
    from pyr.io.zarr.layout import consolidate, create_arrays, layout_of, pyr_attrs

    layout = layout_of(obj, "band_data", zarr_format)
    group = zarr.open_group(store, mode="w", zarr_format=zarr_format, attributes={"pyr": pyr_attrs(layout, True)})
    create_arrays(group, layout)
    for key, data in chunks.items():
        store_set(store, key, data)
    consolidate(store)


def store_set(store, key, data):
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    sync(store.set(key, default_buffer_prototype().buffer.from_bytes(data)))


def _pixels(objects):
    return {k: v for k, v in objects.items() if k.startswith("band_data/") and not k.endswith(META_NAMES)}


META_NAMES = (".zarray", ".zattrs", "zarr.json")


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("kind", ["raster", "cube"])
def test_local_metadata_files_are_what_zarr_python_writes(tmp_path, zarr_format, kind):
    # The protocols put metadata and coordinates made in memory when the graph is built
    # (pyr/io/zarr/layout.py::store_files); the store must be the one zarr-python writes
    # into the directory itself.
    obj = int_raster(lazy=True) if kind == "raster" else _cube()
    fast = tmp_path / "fast.zarr"
    pyr.write_zarr(obj, fast, zarr_format=zarr_format)
    pixels = _pixels(snapshot(fast))
    assert pixels  # the chunks, copied over as they are
    _zarr_python_copy(obj, zarr_format, zarr.storage.LocalStore(tmp_path / "slow.zarr"), pixels)
    assert snapshot(fast) == snapshot(tmp_path / "slow.zarr")


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("kind", ["raster", "cube"])
def test_url_metadata_objects_are_what_zarr_python_writes(zarr_format, kind):
    # The same for an fsspec URL.
    import fsspec
    from zarr.storage import FsspecStore

    fs = fsspec.filesystem("memory")
    run = uuid.uuid4().hex
    obj = int_raster(lazy=True) if kind == "raster" else _cube()
    pyr.write_zarr(obj, f"memory://{run}/fast.zarr", zarr_format=zarr_format)
    fast = {k.split("/fast.zarr/", 1)[1]: fs.cat_file(k) for k in fs.find(f"/{run}/fast.zarr")}
    assert _pixels(fast)
    _zarr_python_copy(obj, zarr_format, FsspecStore.from_url(f"memory://{run}/slow.zarr"), _pixels(fast))
    slow = {k.split("/slow.zarr/", 1)[1]: fs.cat_file(k) for k in fs.find(f"/{run}/slow.zarr")}
    assert fast == slow
    assert not fs.exists(f"/{run}/fast.zarr.pyr-write")  # the claim of the write is gone
    fs.rm(f"/{run}", recursive=True)


def test_url_metadata_objects_go_up_root_metadata_last(monkeypatch):
    # An object store cannot rename: a new store is written in place, and no reader opens it
    # (pyr, xarray, GDAL all need the group's metadata) before its root metadata lands, last.
    import fsspec
    from fsspec.implementations.memory import MemoryFileSystem

    puts = []
    real = MemoryFileSystem.pipe_file

    def record(self, path, value, *args, **kwargs):
        if "/r.zarr/" in path:
            puts.append(path.rsplit("/r.zarr/", 1)[1])
        return real(self, path, value, *args, **kwargs)

    monkeypatch.setattr(MemoryFileSystem, "pipe_file", record)
    run = uuid.uuid4().hex
    r = int_raster(lazy=True)
    pyr.write_zarr(r, f"memory://{run}/r.zarr")
    assert puts[-3:] == [".zattrs", ".zgroup", ".zmetadata"]  # complete attributes, group, consolidated
    assert not {".zattrs", ".zgroup", ".zmetadata"} & set(puts[:-3])
    assert len([p for p in puts if p.startswith("band_data/") and "/." not in p]) == r.data.npartitions
    fsspec.filesystem("memory").rm(f"/{run}", recursive=True)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_metadata_files_order(zarr_format):
    # The root metadata (what readers open a group by) is apart, to be put last, in order.
    from pyr.io.zarr.layout import layout_of, store_files

    files = store_files(layout_of(int_raster(), "band_data", zarr_format))
    array_keys = [k for k, _ in files.arrays]
    root_keys = [k for k, _ in files.root]
    assert not {".zattrs", ".zgroup", ".zmetadata", "zarr.json"} & set(array_keys)
    assert "band_data/.zarray" in array_keys or "band_data/zarr.json" in array_keys
    if zarr_format == 2:
        assert root_keys == [".zattrs", ".zgroup", ".zmetadata"]
        assert json.loads(dict(files.root)[".zattrs"])["pyr"]["complete"] is True
    else:
        assert root_keys == ["zarr.json"]
        root = json.loads(dict(files.root)["zarr.json"])
        assert root["attributes"]["pyr"]["complete"] is True
        assert "band_data" in root["consolidated_metadata"]["metadata"]


def test_write_graph_is_one_task_per_chunk_that_reads_computes_and_writes(tmp_path):
    # No pixel data crosses processes or workers: every chunk's read, kernel and
    # write run in one task (pyr._fuse); only init and finalize are separate.
    from _tiffs import write_tif

    gb = GeoBox.from_bounds((0, 0, 640, 320), 10, "EPSG:32631")
    src = write_tif(tmp_path / "src.tif", np.arange(64 * 32, dtype="uint16").reshape(1, 32, 64), geobox=gb, nodata=0)
    lazy = pyr.rescale(pyr.read(src, chunks=16), scale=1e-4)
    delayed = pyr.write_zarr(lazy, tmp_path / "out.zarr", compute=False)
    nchunks = lazy.data.npartitions
    assert nchunks == 8
    assert len(dict(delayed.__dask_graph__())) == nchunks + 2
    delayed.compute(scheduler="processes")
    assert_raster_equal(pyr.read_zarr(tmp_path / "out.zarr"), pyr.rescale(pyr.read(src), scale=1e-4))


@pytest.mark.parametrize("per_task", [2, 3, 8, 100])
def test_chunks_per_task_groups_chunk_writes_into_fewer_tasks(tmp_path, per_task):
    # dask config pyr.chunks-per-task: one task writes several chunks in turn (what "auto" does on a
    # cluster); the store is byte for byte the one written a chunk per task.
    from _tiffs import write_tif

    gb = GeoBox.from_bounds((0, 0, 640, 320), 10, "EPSG:32631")
    src = write_tif(tmp_path / "src.tif", np.arange(64 * 32, dtype="uint16").reshape(1, 32, 64), geobox=gb, nodata=0)
    lazy = pyr.rescale(pyr.read(src, chunks=16), scale=1e-4)
    pyr.write_zarr(lazy, tmp_path / "one.zarr")
    with dask.config.set({"pyr.chunks-per-task": per_task}):
        delayed = pyr.write_zarr(lazy, tmp_path / "grouped.zarr", compute=False)
    assert len(dict(delayed.__dask_graph__())) == math.ceil(8 / per_task) + 2
    delayed.compute(scheduler="processes" if per_task == 3 else "threads")
    assert snapshot(tmp_path / "grouped.zarr") == snapshot(tmp_path / "one.zarr")


@pytest.mark.parametrize("lazy", [False, True])
def test_chunks_per_task_writes_eager_and_lazy_input_alike(tmp_path, lazy):
    # nine 1024 x 1024 chunks (an eager raster is written in chunks of that size), three write tasks
    gb = GeoBox.from_bounds((0, 0, 21000, 21000), 10, "EPSG:32631")
    values = (np.arange(2100 * 2100, dtype="uint32") % 251).astype("uint8").reshape(1, 2100, 2100)
    r = Raster(da.from_array(values, chunks=(1, 1024, 1024)) if lazy else values, gb, nodata=0)
    pyr.write_zarr(r, tmp_path / "one.zarr")
    with dask.config.set({"pyr.chunks-per-task": 4}):
        job = pyr.write_zarr(r, tmp_path / "grouped.zarr", compute=False)
    assert sum("pyr-zarr-write-group" in str(k) for k in dict(job.__dask_graph__())) == 3
    job.compute()
    assert snapshot(tmp_path / "grouped.zarr") == snapshot(tmp_path / "one.zarr")
    assert_raster_equal(pyr.read_zarr(tmp_path / "grouped.zarr"), Raster(values, gb, nodata=0))


@pytest.mark.parametrize("setting", [0, -2, 1.5, True, "many"])
def test_chunks_per_task_must_be_auto_or_a_positive_integer(tmp_path, setting):
    config = {"pyr.chunks-per-task": setting}
    with dask.config.set(config), pytest.raises(InvalidArgument, match=r"pyr\.chunks-per-task"):
        pyr.write_zarr(int_raster(lazy=True), tmp_path / "r.zarr")
    assert not (tmp_path / "r.zarr").exists()


@pytest.mark.parametrize("lazy", [False, True])
def test_compressor_choice_round_trips_and_xarray_reads_it(tmp_path, lazy):
    import numcodecs
    import xarray as xr

    r = int_raster(lazy=lazy)
    pyr.write_zarr(r, tmp_path / "zstd.zarr", compressor=numcodecs.Zstd(level=3))
    meta = json.loads((tmp_path / "zstd.zarr" / "band_data" / ".zarray").read_text())
    assert meta["compressor"] == {"id": "zstd", "level": 3}
    assert_raster_equal(pyr.read_zarr(tmp_path / "zstd.zarr"), r)
    opened = xr.open_zarr(tmp_path / "zstd.zarr", mask_and_scale=False)  # nodata stays -1
    np.testing.assert_array_equal(opened["band_data"].values, np.asarray(r.data))
    pyr.write_zarr(r, tmp_path / "raw.zarr", compressor=None)
    assert json.loads((tmp_path / "raw.zarr" / "band_data" / ".zarray").read_text())["compressor"] is None
    assert_raster_equal(pyr.read_zarr(tmp_path / "raw.zarr"), r)
    default = json.loads(snapshot_of(pyr.write_zarr, r, tmp_path / "default.zarr")["band_data/.zarray"])
    assert default["compressor"]["cname"] == "lz4"


def snapshot_of(write, obj, store, **kw):
    write(obj, store, **kw)
    return snapshot(store)


def test_compressor_v3_and_the_direct_path_match_zarr_python(tmp_path):
    import numcodecs
    from zarr.codecs import ZstdCodec

    from pyr.io.zarr import chunks as _zarr_direct

    r = int_raster(lazy=True)
    pyr.write_zarr(r, tmp_path / "v3.zarr", zarr_format=3, compressor=ZstdCodec(level=3))
    codecs = json.loads((tmp_path / "v3.zarr" / "band_data" / "zarr.json").read_text())["codecs"]
    assert [c["name"] for c in codecs] == ["bytes", "zstd"]
    assert_raster_equal(pyr.read_zarr(tmp_path / "v3.zarr"), r)
    # v2 chunks written by pyr's direct path with a chosen codec are zarr-python's bytes
    fast = snapshot_of(pyr.write_zarr, r, tmp_path / "fast.zarr", compressor=numcodecs.Zstd(level=3))
    real = _zarr_direct.write_region
    try:
        _zarr_direct.write_region = lambda *args: False
        slow = snapshot_of(pyr.write_zarr, r, tmp_path / "slow.zarr", compressor=numcodecs.Zstd(level=3))
    finally:
        _zarr_direct.write_region = real
    assert fast == slow


def test_compressor_errors(tmp_path):
    from zarr.codecs import ZstdCodec

    r = int_raster()
    with pytest.raises(InvalidArgument, match="compressor='zstd'"):
        pyr.write_zarr(r, tmp_path / "a.zarr", compressor="zstd", compute=False)
    with pytest.raises(InvalidArgument, match=r"compressor=ZstdCodec.*zarr_format=2"):
        pyr.write_zarr(r, tmp_path / "b.zarr", compressor=ZstdCodec(level=3), compute=False)
    with pytest.raises(InvalidArgument, match="mode='a'"):
        pyr.write_zarr(_cube(), tmp_path / "c.zarr", mode="a", compressor=None)
    assert not any(tmp_path.iterdir())  # nothing was written


def _objects(store) -> dict[str, bytes]:
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    async def read_all():
        return {k: (await store.get(k, prototype=default_buffer_prototype())).to_bytes() async for k in store.list()}

    return sync(read_all())


def test_mode_w_on_a_fresh_store_object_and_v3():
    for fmt in (2, 3):
        store = zarr.storage.MemoryStore()
        r = int_raster(lazy=True)
        pyr.write_zarr(r, store, mode="w", zarr_format=fmt)
        assert_raster_equal(pyr.read_zarr(store), r)
        assert not [k for k in _objects(store) if k.startswith(".pyr-staging-")]
        cube = _cube()
        pyr.write_zarr(cube, store, mode="w", zarr_format=fmt)  # replace a raster store by a cube store
        back = pyr.read_zarr(store)
        assert isinstance(back, pyr.Cube)
        np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
        assert "x" in zarr.open_group(store, mode="r")


@pytest.mark.filterwarnings("ignore:Consolidated metadata is currently not part")  # zarr on v3
@pytest.mark.parametrize("zarr_format", [2, 3])
def test_read_zarr_takes_the_grid_from_coordinates_without_a_geotransform(tmp_path, zarr_format):
    # Stores from other writers may carry only x/y cell-centre coordinates (CF), no GDAL GeoTransform.
    store = tmp_path / "coords.zarr"
    r = int_raster()
    pyr.write_zarr(r, store, zarr_format=zarr_format)
    group = zarr.open_group(store, mode="r+", use_consolidated=False)
    sref = group["spatial_ref"]
    attrs_ = dict(sref.attrs)
    del attrs_["GeoTransform"]
    sref.attrs.clear()
    sref.attrs.update(attrs_)
    zarr.consolidate_metadata(store)
    assert "GeoTransform" not in dict(zarr.open_group(store, mode="r")["spatial_ref"].attrs)
    back = pyr.read_zarr(store, chunks=None)
    assert back.geobox.crs == r.geobox.crs
    assert back.geobox.shape == r.geobox.shape
    np.testing.assert_allclose(tuple(back.geobox.transform)[:6], tuple(r.geobox.transform)[:6], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(back.data, r.data)


def _places(tmp_path, name):
    """What lies beside the store ``name`` in ``tmp_path`` (staging places and the like)."""
    return sorted(p.name for p in tmp_path.iterdir() if p.name != name)


def test_a_second_computation_of_the_same_graph_mid_write_is_an_error_not_a_broken_store(tmp_path, monkeypatch):
    # Computation A of a write graph is halfway through its chunks when computation B of
    # the very same graph (so the same staging place) runs from start to end. B publishes
    # a complete store; A, whose staging place B started afresh, must fail rather than
    # publish its half.
    from pyr.io.zarr import api

    store = tmp_path / "s.zarr"
    pyr.write_zarr(int_raster(), store)  # an old store, to be replaced
    new = int_raster(GEO, count=1, nodata=None, lazy=True)
    real_write = api.write_chunk
    calls = []

    def write_then_interleave(target, name, region, *args):
        calls.append(region)
        real_write(target, name, region, *args)
        if len(calls) == 2:  # A has written two chunks: B now runs whole
            with dask.config.set(scheduler="sync"):
                job.compute()

    monkeypatch.setattr(api, "write_chunk", write_then_interleave)
    job = pyr.write_zarr(new, store, mode="w", compute=False)
    with dask.config.set(scheduler="sync"), pytest.raises(pyr.WriteError, match="another write"):
        job.compute()
    assert len(calls) > new.data.npartitions  # B ran inside A
    monkeypatch.undo()
    assert_raster_equal(pyr.read_zarr(store), new)  # B's store, complete
    assert zarr.open_group(store, mode="r").attrs["pyr"]["complete"] is True
    assert ".pyr-run" not in {p.name for p in store.iterdir()}
    assert _places(tmp_path, "s.zarr") == []


def test_two_identical_replaces_at_once_both_publish_the_last_wins(tmp_path, monkeypatch):
    # Issue 13: two mode="w" writes of the same data at once both failed with WriteError and
    # nothing was published. Each call now stages in a place of its own.
    from pyr.io.zarr import api

    store = tmp_path / "s.zarr"
    pyr.write_zarr(int_raster(), store)
    new = int_raster(GEO, count=1, nodata=None, lazy=True)
    real_write = api.write_chunk
    calls = []

    def write_then_interleave(target, name, region, *args):
        calls.append(region)
        real_write(target, name, region, *args)
        if len(calls) == 2:  # the first write has written two chunks: the second runs whole
            with dask.config.set(scheduler="sync"):
                pyr.write_zarr(new, store, mode="w")

    monkeypatch.setattr(api, "write_chunk", write_then_interleave)
    with dask.config.set(scheduler="sync"):
        pyr.write_zarr(new, store, mode="w")
    monkeypatch.undo()
    assert_raster_equal(pyr.read_zarr(store), new)
    assert _places(tmp_path, "s.zarr") == []


def test_concurrent_writes_of_different_data_last_one_wins(tmp_path):
    import threading

    store = tmp_path / "s.zarr"
    a = pyr.rescale(int_raster(GEO, count=1, nodata=None, lazy=True), scale=1.0)
    b = pyr.rescale(a, scale=2.0)
    for _ in range(3):
        errors: list[BaseException] = []

        def write(r, errors=errors):
            try:
                with dask.config.set(scheduler="threads"):
                    pyr.write_zarr(r, store, mode="w")
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=write, args=(r,)) for r in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        back = pyr.read_zarr(store)
        assert any(np.array_equal(back.data.compute(), r.data.compute(), equal_nan=True) for r in (a, b))
        assert _places(tmp_path, "s.zarr") == []


def test_concurrent_creates_one_wins_the_other_is_refused(tmp_path):
    import threading

    store = tmp_path / "s.zarr"
    a = int_raster(GEO, count=1, nodata=None, lazy=True)
    b = pyr.rescale(a, scale=2.0)
    outcomes: dict[str, str] = {}

    def write(tag, r):
        try:
            with dask.config.set(scheduler="threads"):
                pyr.write_zarr(r, store)  # mode="w-"
            outcomes[tag] = "written"
        except StoreExists:
            outcomes[tag] = "refused"

    threads = [threading.Thread(target=write, args=item) for item in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes.values()) == ["refused", "written"]
    winner = a if outcomes["a"] == "written" else b
    np.testing.assert_array_equal(pyr.read_zarr(store).data.compute(), winner.data.compute())
