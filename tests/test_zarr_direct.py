"""pyr writes and reads whole local Zarr v2 and v3 chunks itself (pyr.io.zarr.chunks).

The fast path must produce the very chunk files zarr-python writes, and read
back what zarr-python reads, for every dtype, nodata, band count, edge chunk,
format and codec pyr writes.
"""

from __future__ import annotations

import dask.array as da
import numcodecs
import numpy as np
import pytest
import zarr
from _direct import spy_direct
from hypothesis import given, settings
from hypothesis import strategies as st

import pyr
from pyr.io.zarr import chunks as _zarr_direct
from pyr.testing import assert_raster_equal
from pyr.testing.strategies import chunkings, cubes, rasters


def _files(store) -> dict[str, bytes]:
    """The data variable's chunk files (v2 ``0.1.2``, v3 ``c/0/1/2``), by key."""
    root = store / "band_data"
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(".") and p.name != "zarr.json"
    }


# (zarr_format, compressor) pairs: pyr's default codec, none, and codecs a user may pass
FORMATS_AND_CODECS = [
    pytest.param(2, "auto", id="v2-auto"),
    pytest.param(3, "auto", id="v3-auto"),
    pytest.param(2, None, id="v2-none"),
    pytest.param(3, None, id="v3-none"),
    pytest.param(2, numcodecs.Zstd(level=3), id="v2-zstd"),
    pytest.param(3, zarr.codecs.ZstdCodec(level=3), id="v3-zstd"),
    pytest.param(3, zarr.codecs.GzipCodec(level=5), id="v3-gzip"),
    pytest.param(
        3, zarr.codecs.BloscCodec(cname="zstd", clevel=1, shuffle="bitshuffle"), id="v3-blosc-zstd-bitshuffle"
    ),
]


def _fast_and_slow(obj, tmp_path_factory, **write_kwargs):
    """Write ``obj`` with the fast path and with zarr-python alone; check the chunk files agree."""
    fast, slow = tmp_path_factory.mktemp("fast") / "s.zarr", tmp_path_factory.mktemp("slow") / "s.zarr"
    pyr.write_zarr(obj, fast, **write_kwargs)
    real = _zarr_direct.write_region
    try:
        _zarr_direct.write_region = lambda *args: False  # zarr-python writes every chunk
        pyr.write_zarr(obj, slow, **write_kwargs)
    finally:
        _zarr_direct.write_region = real
    fast_files, slow_files = _files(fast), _files(slow)
    # zarr-python skips chunks that hold only the fill value; pyr writes them.
    assert set(slow_files) <= set(fast_files)
    gzip = isinstance(write_kwargs.get("compressor"), zarr.codecs.GzipCodec)
    for name, content in slow_files.items():
        assert _unstamped(fast_files[name], gzip) == _unstamped(content, gzip), name
    return fast, slow


def _unstamped(chunk: bytes, gzip: bool) -> bytes:
    """A chunk file without the gzip header's modification time (bytes 4-8), which differs by the second."""
    return chunk[:4] + chunk[8:] if gzip else chunk


@pytest.mark.parametrize(("zarr_format", "compressor"), FORMATS_AND_CODECS)
@settings(max_examples=12, deadline=None)
@given(raster=rasters(lazy=False, max_side=30), data=st.data())
def test_direct_chunks_are_the_bytes_zarr_writes(tmp_path_factory, zarr_format, compressor, raster, data):
    chunks = data.draw(chunkings(raster.shape))
    lazy = pyr.Raster(da.from_array(raster.data, chunks=chunks), raster.geobox, raster.nodata, raster.bands)
    fast, slow = _fast_and_slow(lazy, tmp_path_factory, zarr_format=zarr_format, compressor=compressor)
    # Both stores read the same, through zarr-python and through the fast path.
    expected = zarr.open_array(slow, path="band_data", mode="r")[...]
    np.testing.assert_array_equal(zarr.open_array(fast, path="band_data", mode="r")[...], expected)
    assert_raster_equal(pyr.read_zarr(fast), raster)
    assert_raster_equal(pyr.read_zarr(slow, chunks=None), raster)


@pytest.mark.parametrize(
    ("zarr_format", "compressor", "direct"),
    [
        (2, "auto", True),
        (3, "auto", True),
        (3, None, True),
        (3, zarr.codecs.Crc32cCodec(), False),  # a checksum codec: left to zarr-python
    ],
)
def test_which_arrays_take_the_fast_path(tmp_path, monkeypatch, zarr_format, compressor, direct):
    writes, reads = spy_direct(monkeypatch, "write_region"), spy_direct(monkeypatch, "read_region")
    gb = pyr.GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    r = pyr.Raster(da.from_array(np.arange(100, dtype="uint16").reshape(1, 10, 10), chunks=(1, 4, 4)), gb)
    pyr.write_zarr(r, tmp_path / "s.zarr", zarr_format=zarr_format, compressor=compressor)
    back = pyr.read_zarr(tmp_path / "s.zarr")
    assert_raster_equal(back, r)
    assert len(writes) == len(reads) == 9
    assert set(writes) == set(reads) == {direct}


def test_v3_arrays_zarr_python_wrote_with_its_own_defaults_read_directly(tmp_path, monkeypatch):
    # zarr-python's v3 default codecs (bytes + zstd level 0) and chunk keys, as xarray writes them
    values = np.arange(3 * 50 * 40, dtype="float32").reshape(3, 50, 40)
    values[0, :5] = np.nan
    arr = zarr.create_array(tmp_path / "raw.zarr", shape=values.shape, chunks=(1, 16, 16), dtype="float32")
    arr[...] = values
    files, _ = _zarr_direct._load(str(tmp_path / "raw.zarr"))
    assert isinstance(files.compressor, numcodecs.Zstd)
    reads = spy_direct(monkeypatch, "read_region")
    got = _zarr_direct.read_region(str(tmp_path), "raw.zarr", (slice(0, 1), slice(0, 32), slice(16, 40)), "t")
    np.testing.assert_array_equal(got, values[0:1, 0:32, 16:40])
    assert reads == [True]


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


@pytest.mark.parametrize("zarr_format", [2, 3])
@settings(max_examples=15, deadline=None)
@given(raster=rasters(lazy=False, max_side=30), data=st.data())
def test_reads_of_several_whole_chunks_equal_zarr_python(tmp_path_factory, zarr_format, raster, data):
    # read_zarr(chunks=...) larger than the store's chunks: each dask chunk is
    # several whole Zarr chunks, decoded one by one by the fast path.
    stored = data.draw(chunkings(raster.shape))
    ky, kx = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    store = tmp_path_factory.mktemp("multi") / "s.zarr"
    lazy = pyr.Raster(da.from_array(raster.data, chunks=stored), raster.geobox, raster.nodata, raster.bands)
    pyr.write_zarr(lazy, store, zarr_format=zarr_format)
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
    calls = spy_direct(monkeypatch, "read_region")
    back = pyr.read_zarr(store, chunks=(4, 6))  # 2 x 2 stored chunks per dask chunk, ragged edges
    np.testing.assert_array_equal(back.data.compute(scheduler="sync"), expected)
    assert len(calls) == 3 * 2
    assert all(calls)
    # A region that cuts through stored chunks is left to zarr-python.
    calls.clear()
    np.testing.assert_array_equal(pyr.read_zarr(store, chunks=(5, 5)).data.compute(scheduler="sync"), expected)
    assert calls
    assert not any(calls)


@pytest.mark.parametrize("zarr_format", [2, 3])
@settings(max_examples=10, deadline=None)
@given(cube=cubes(lazy=False, max_side=20, max_times=5), data=st.data())
def test_cube_chunks_of_several_dates_are_the_bytes_zarr_writes(tmp_path_factory, zarr_format, cube, data):
    # A Zarr chunk holds one date; a dask chunk of several dates writes several whole chunks.
    spatial = data.draw(chunkings(cube.geobox.shape))
    depth = data.draw(st.integers(1, cube.ntimes))
    lazy = pyr.Cube(
        da.from_array(cube.data, chunks=(depth, cube.count, *spatial)), cube.geobox, cube.nodata, cube.bands, cube.times
    )
    fast, _ = _fast_and_slow(lazy, tmp_path_factory, zarr_format=zarr_format)
    back = pyr.read_zarr(fast, chunks=None)
    np.testing.assert_array_equal(np.asarray(back.data), np.asarray(cube.data))


@pytest.mark.parametrize(("zarr_format", "chunk"), [(2, "0.0.1"), (3, "c/0/0/1")])
def test_a_truncated_uncompressed_chunk_is_a_read_error_naming_it(tmp_path, zarr_format, chunk):
    gb = pyr.GeoBox.from_bounds((0, 0, 80, 40), 10, "EPSG:32631")
    r = pyr.Raster(da.from_array(np.arange(32, dtype="float32").reshape(1, 4, 8), chunks=(1, 4, 4)), gb)
    store = tmp_path / "raw.zarr"
    pyr.write_zarr(r, store, zarr_format=zarr_format, compressor=None)
    path = store / "band_data" / chunk
    assert path.stat().st_size == 4 * 4 * 4  # the raw float32 chunk
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(pyr.ReadError, match=chunk.replace("/", ".").replace(".", r"[./]")):
        pyr.read_zarr(store).data.compute(scheduler="sync")


@pytest.mark.parametrize("compressor", ["default", None])
def test_stacked_whole_chunks_are_decoded_in_place(tmp_path, monkeypatch, compressor):
    # A dask chunk of full-width chunks stacked in y is one run of memory per stored chunk: each is
    # decoded straight into the output (no scratch buffer, no copy); a missing one is the fill value.
    gb = pyr.GeoBox.from_bounds((0, 0, 100, 90), 10, "EPSG:32631")
    values = np.arange(90, dtype="int16").reshape(1, 9, 10) + 1
    store = tmp_path / "s.zarr"
    kwargs = {} if compressor == "default" else {"compressor": None}
    pyr.write_zarr(pyr.Raster(da.from_array(values, chunks=(1, 2, 10)), gb, nodata=-1), store, **kwargs)
    (store / "band_data" / "0.1.0").unlink()  # rows 2:4
    expected = zarr.open_array(store, path="band_data", mode="r")[...]
    assert (expected[0, 2:4] == -1).all()
    into: list[bool] = []
    real = _zarr_direct._decode_file

    def spy(files, path, target):
        into.append(target is getattr(_zarr_direct._BUFFERS, "chunk", None))
        return real(files, path, target)

    monkeypatch.setattr(_zarr_direct, "_decode_file", spy)
    back = pyr.read_zarr(store, chunks=(6, 10))  # three stored chunks per dask chunk, then a ragged one
    np.testing.assert_array_equal(back.data.compute(scheduler="sync"), expected)
    assert into.count(True) == 1  # only the last, ragged chunk (one row of two) went through the buffer
    assert into.count(False) == 4  # the others were decoded in place (the missing one attempted too)
