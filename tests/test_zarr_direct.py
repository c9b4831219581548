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
from pyr.testing.strategies import chunkings, rasters


def _files(store) -> dict[str, bytes]:
    root = store / "band_data"
    return {p.name: p.read_bytes() for p in root.iterdir() if not p.name.startswith(".")}


@settings(max_examples=20)
@given(raster=rasters(lazy=False, max_side=30), data=st.data())
def test_direct_chunks_are_the_bytes_zarr_writes(tmp_path_factory, raster, data):
    chunks = data.draw(chunkings(raster.shape))
    lazy = pyr.Raster(da.from_array(raster.data, chunks=chunks), raster.geobox, raster.nodata, raster.bands)
    fast, slow = tmp_path_factory.mktemp("fast") / "s.zarr", tmp_path_factory.mktemp("slow") / "s.zarr"
    pyr.write_zarr(lazy, fast)
    real = _zarr_direct.write_region
    try:
        _zarr_direct.write_region = lambda *args: False  # zarr-python writes every chunk
        pyr.write_zarr(lazy, slow)
    finally:
        _zarr_direct.write_region = real
    fast_files, slow_files = _files(fast), _files(slow)
    # zarr-python skips chunks that hold only the fill value; pyr writes them.
    assert set(slow_files) <= set(fast_files)
    for name, content in slow_files.items():
        assert fast_files[name] == content, name
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
