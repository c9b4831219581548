"""pyr writes and reads whole local Zarr v2 chunks itself (pyr.io._zarr_direct).

The fast path must produce the very chunk files zarr-python writes, and read
back what zarr-python reads, for every dtype, nodata, band count and edge chunk.
"""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import zarr
from hypothesis import given, settings
from hypothesis import strategies as st

import pyr
from pyr.io import _zarr_direct
from pyr.testing import assert_raster_equal
from pyr.testing.strategies import chunkings, cubes, rasters


def _files(store) -> dict[str, bytes]:
    root = store / "band_data"
    return {p.name: p.read_bytes() for p in root.iterdir() if not p.name.startswith(".")}


def _fast_and_slow(obj, tmp_path_factory):
    """Write ``obj`` with the fast path and with zarr-python alone; check the chunk files agree."""
    fast, slow = tmp_path_factory.mktemp("fast") / "s.zarr", tmp_path_factory.mktemp("slow") / "s.zarr"
    pyr.write_zarr(obj, fast)
    real = _zarr_direct.write_region
    try:
        _zarr_direct.write_region = lambda *args: False  # zarr-python writes every chunk
        pyr.write_zarr(obj, slow)
    finally:
        _zarr_direct.write_region = real
    fast_files, slow_files = _files(fast), _files(slow)
    # zarr-python skips chunks that hold only the fill value; pyr writes them.
    assert set(slow_files) <= set(fast_files)
    for name, content in slow_files.items():
        assert fast_files[name] == content, name
    return fast, slow


@settings(max_examples=20)
@given(raster=rasters(lazy=False, max_side=30), data=st.data())
def test_direct_chunks_are_the_bytes_zarr_writes(tmp_path_factory, raster, data):
    chunks = data.draw(chunkings(raster.shape))
    lazy = pyr.Raster(da.from_array(raster.data, chunks=chunks), raster.geobox, raster.nodata, raster.bands)
    fast, slow = _fast_and_slow(lazy, tmp_path_factory)
    # Both stores read the same, through zarr-python and through the fast path.
    expected = zarr.open_array(slow, path="band_data", mode="r")[...]
    np.testing.assert_array_equal(zarr.open_array(fast, path="band_data", mode="r")[...], expected)
    assert_raster_equal(pyr.read_zarr(fast), raster)
    assert_raster_equal(pyr.read_zarr(slow, chunks=None), raster)


def test_fast_path_is_used_for_local_v2_and_not_for_v3(tmp_path, monkeypatch):
    calls = []
    real = _zarr_direct.write_region

    def spy(*args):
        written = real(*args)
        calls.append(written)
        return written

    monkeypatch.setattr(_zarr_direct, "write_region", spy)
    gb = pyr.GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    r = pyr.Raster(da.from_array(np.arange(100, dtype="uint16").reshape(1, 10, 10), chunks=(1, 4, 4)), gb)
    pyr.write_zarr(r, tmp_path / "v2.zarr")
    assert calls
    assert all(calls)
    calls.clear()
    pyr.write_zarr(r, tmp_path / "v3.zarr", zarr_format=3)
    assert calls
    assert not any(calls)
    for store in ("v2.zarr", "v3.zarr"):
        assert_raster_equal(pyr.read_zarr(tmp_path / store), r)


@pytest.mark.parametrize(("before", "after"), [(None, False), (True, True), (False, False)])
def test_blosc_threads_off_unless_chosen(tmp_path, monkeypatch, before, after):
    """Blosc's own threads are switched off by pyr's first direct chunk, unless the user chose."""
    from numcodecs import blosc

    monkeypatch.setattr(blosc, "use_threads", before)
    data = np.arange(2 * 40 * 30, dtype="uint16").reshape(2, 40, 30)
    geobox = pyr.GeoBox.from_bounds((0, 0, 300, 400), 10, "EPSG:32631")
    store = tmp_path / "s.zarr"
    pyr.write_zarr(pyr.Raster(da.from_array(data, chunks=(2, 20, 15)), geobox), store)
    assert blosc.use_threads is after
    back = pyr.compute(pyr.read_zarr(store, chunks="auto"))
    np.testing.assert_array_equal(back.data, data)


def _spy(monkeypatch, name):
    """Record what ``_zarr_direct.<name>`` returned (None/False: it left the work to zarr-python)."""
    calls = []
    real = getattr(_zarr_direct, name)

    def spy(*args):
        out = real(*args)
        calls.append(out is not None and out is not False)
        return out

    monkeypatch.setattr(_zarr_direct, name, spy)
    return calls


@settings(max_examples=20, deadline=None)
@given(raster=rasters(lazy=False, max_side=30), data=st.data())
def test_reads_of_several_whole_chunks_equal_zarr_python(tmp_path_factory, raster, data):
    # read_zarr(chunks=...) larger than the store's chunks: each dask chunk is
    # several whole Zarr chunks, decoded one by one by the fast path.
    stored = data.draw(chunkings(raster.shape))
    ky, kx = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    store = tmp_path_factory.mktemp("multi") / "s.zarr"
    lazy = pyr.Raster(da.from_array(raster.data, chunks=stored), raster.geobox, raster.nodata, raster.bands)
    pyr.write_zarr(lazy, store)
    back = pyr.read_zarr(store, chunks=(stored[-2] * ky, stored[-1] * kx))
    assert back.data.chunks[-2][0] == min(stored[-2] * ky, raster.shape[-2])
    assert_raster_equal(back, raster)


def test_several_whole_chunks_take_the_fast_path_and_missing_ones_read_as_fill(tmp_path, monkeypatch):
    gb = pyr.GeoBox.from_bounds((0, 0, 100, 90), 10, "EPSG:32631")
    values = np.arange(90, dtype="int16").reshape(1, 9, 10) + 1
    store = tmp_path / "s.zarr"
    pyr.write_zarr(pyr.Raster(da.from_array(values, chunks=(1, 2, 3)), gb, nodata=-1), store)
    (store / "band_data" / "0.1.1").unlink()  # rows 2:4, cols 3:6: zarr reads the fill value there
    expected = zarr.open_array(store, path="band_data", mode="r")[...]
    assert (expected[0, 2:4, 3:6] == -1).all()
    calls = _spy(monkeypatch, "read_region")
    back = pyr.read_zarr(store, chunks=(4, 6))  # 2 x 2 stored chunks per dask chunk, ragged edges
    np.testing.assert_array_equal(back.data.compute(scheduler="sync"), expected)
    assert len(calls) == 3 * 2
    assert all(calls)
    # A region that cuts through stored chunks is left to zarr-python.
    calls.clear()
    np.testing.assert_array_equal(pyr.read_zarr(store, chunks=(5, 5)).data.compute(scheduler="sync"), expected)
    assert calls
    assert not any(calls)


@settings(max_examples=15, deadline=None)
@given(cube=cubes(lazy=False, max_side=20, max_times=5), data=st.data())
def test_cube_chunks_of_several_dates_are_the_bytes_zarr_writes(tmp_path_factory, cube, data):
    # A Zarr chunk holds one date; a dask chunk of several dates writes several whole chunks.
    spatial = data.draw(chunkings(cube.geobox.shape))
    depth = data.draw(st.integers(1, cube.ntimes))
    lazy = pyr.Cube(
        da.from_array(cube.data, chunks=(depth, cube.count, *spatial)), cube.geobox, cube.nodata, cube.bands, cube.times
    )
    fast, _ = _fast_and_slow(lazy, tmp_path_factory)
    back = pyr.read_zarr(fast, chunks=None)
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))
