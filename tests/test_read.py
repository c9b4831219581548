"""``read``: GeoTIFFs eagerly and lazily; chunks, laziness, pickling, handles, bands, overviews."""

from __future__ import annotations

import math
import os
import pickle
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import cloudpickle
import dask
import numpy as np
import pytest
import rasterio
from _tiffs import read_plain, write_tif
from affine import Affine

import pyr
from pyr import GeoBox, InvalidArgument, ReadError
from pyr.io import tiff
from pyr.io.gdal import handles as _handles
from pyr.testing import assert_raster_equal, raise_if_dask_computes

GB = GeoBox((50, 70), Affine(10.0, 0.0, 300000.0, 0.0, -10.0, 5000000.0), "EPSG:32631")


@pytest.fixture
def data3():
    return np.random.default_rng(42).integers(1, 5000, (3, 50, 70)).astype("uint16")


@pytest.fixture
def tiled(tmp_path, data3):
    return write_tif(
        tmp_path / "tiled.tif", data3, nodata=0, block=(16, 32), descriptions=["red", None, "nir"], overviews=[2, 4]
    )


@pytest.fixture
def striped(tmp_path, data3):
    return write_tif(tmp_path / "striped.tif", data3, tiled=False, block=(3, 70))


@pytest.fixture
def fresh_handles():
    """No cached handles in this thread before and after the test."""
    _handles.close_all()
    yield
    _handles.close_all()


@pytest.fixture
def count_opens(monkeypatch):
    """Count rasterio.open calls made by pyr (one list entry per call: path)."""
    calls: list[str] = []
    real_open = rasterio.open

    def counting_open(path, *args, **kwargs):
        calls.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(_handles.rasterio, "open", counting_open)
    return calls


def test_eager_read_matches_rasterio(tiled, data3):
    r = pyr.read(tiled)
    assert not r.is_lazy
    assert r.geobox == GB
    assert r.nodata == 0
    assert r.dtype == np.dtype("uint16")
    np.testing.assert_array_equal(r.data, data3)
    np.testing.assert_array_equal(r.data, read_plain(tiled))


@pytest.mark.parametrize("source_kind", ["str", "path", "file_url"])
def test_source_forms(tiled, data3, source_kind):
    source = {"str": str(tiled), "path": tiled, "file_url": tiled.as_uri()}[source_kind]
    np.testing.assert_array_equal(pyr.read(source).data, data3)


@pytest.mark.parametrize("chunk_size", ["2KiB", "4KiB", "10KiB", "33KiB", "128MiB"], ids=lambda s: f"chunk-size={s}")
@pytest.mark.parametrize("layout", ["tiled", "striped"])
def test_auto_chunks_are_whole_blocks(request, layout, chunk_size):
    path = request.getfixturevalue(layout)
    with rasterio.open(path) as src:
        by, bx = src.block_shapes[0]
        height, width = src.shape
    with dask.config.set({"array.chunk-size": chunk_size}):
        r = pyr.read(path, chunks="auto")
    _, ychunks, xchunks = r.chunks
    for chunks, block, n in ((ychunks, by, height), (xchunks, bx, width)):
        assert sum(chunks) == n
        assert all(c % block == 0 for c in chunks[:-1]), (chunks, block)
        assert len(set(chunks[:-1])) <= 1  # regular; only the last may be ragged
        assert chunks[-1] <= chunks[0]
        assert chunks[-1] % block == 0 or chunks[-1] == n - sum(chunks[:-1])
    assert r.chunks[0] == (3,)  # bands are never split
    np.testing.assert_array_equal(r.data.compute(), read_plain(path))


def test_auto_chunks_near_dask_chunk_size(tmp_path):
    data = np.zeros((1, 512, 512), "uint16")
    path = write_tif(tmp_path / "big.tif", data, block=(32, 32))
    with dask.config.set({"array.chunk-size": "32KiB"}):
        r = pyr.read(path, chunks="auto")
    nbytes = r.data.blocks[0, 0, 0].nbytes
    assert 16 * 1024 <= nbytes <= 32 * 1024
    assert len(r.data.chunks[1]) > 1


@pytest.mark.parametrize(
    ("chunks", "expected"), [(16, ((16, 16, 16, 2), (16,) * 4 + (6,))), ((20, 70), ((20, 20, 10), (70,)))]
)
def test_explicit_chunks(tiled, data3, chunks, expected):
    r = pyr.read(tiled, chunks=chunks)
    assert r.chunks == ((3,), *expected)
    np.testing.assert_array_equal(r.data.compute(), data3)


def test_lazy_read_opens_header_once_and_computes_nothing(tiled, data3, fresh_handles, count_opens):
    with raise_if_dask_computes():
        r = pyr.read(tiled, chunks=16)
    assert count_opens == [str(tiled)]
    assert r.is_lazy
    assert r.geobox == GB
    assert r.bands == ("red", "2", "nir")
    np.testing.assert_array_equal(r.data.compute(scheduler="sync"), data3)
    # The tasks reuse this thread's handle: no more opens for 20 chunks.
    assert count_opens == [str(tiled)]


def test_lazy_read_touches_no_pixel_at_call_time(tmp_path):
    # A COG whose pixel data is cut off: the header is intact, so a lazy read
    # succeeds (it read nothing else); computing the chunks fails.
    rng = np.random.default_rng(0)
    cog = write_tif(
        tmp_path / "cog.tif",
        rng.integers(0, 999, (1, 256, 256)).astype("uint16"),
        driver="COG",
        tiled=None,
        blocksize=64,
    )
    cut = tmp_path / "cut.tif"
    cut.write_bytes(cog.read_bytes()[: int(cog.stat().st_size * 0.6)])
    r = pyr.read(cut, chunks=64)
    assert r.shape == (1, 256, 256)
    with pytest.raises(ReadError, match=r"cut\.tif"):
        r.data.compute(scheduler="sync")


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_graph_pickles_without_handles(tiled, data3, dumps):
    r = pyr.read(tiled, chunks=16, env={"GDAL_NUM_THREADS": "1"})
    graph = dict(r.data.__dask_graph__())
    blob = dumps(graph)
    assert b"DatasetReader" not in blob
    back = pickle.loads(blob)
    assert back.keys() == graph.keys()
    # The whole lazy raster pickles and computes in a fresh handle cache.
    again = pickle.loads(dumps(r))
    _handles.close_all()
    assert_raster_equal(again, pyr.read(tiled))
    np.testing.assert_array_equal(again.data.compute(), data3)


def test_graph_is_deterministic(tiled):
    a = pyr.read(tiled, chunks=16)
    b = pyr.read(tiled, chunks=16)
    assert a.data.name == b.data.name
    assert pyr.read(tiled, chunks=32).data.name != a.data.name
    assert pyr.read(tiled, chunks=16, bands=0).data.name != a.data.name


def test_a_handle_is_one_threads_at_a_time_and_reused_after(tiled, fresh_handles):
    spec = tiff.source_spec(tiled)
    with _handles.dataset(spec) as first:
        pass
    with _handles.dataset(spec) as again:
        assert again is first  # checked in, then reused
    barrier = threading.Barrier(2, timeout=10)

    def hold(_):
        with _handles.dataset(spec) as ds:
            barrier.wait()  # both threads inside at once
            return id(ds)

    with ThreadPoolExecutor(2) as pool:
        h1, h2 = pool.map(hold, range(2))
    assert h1 != h2  # never the same handle in two threads at once
    assert _handles.open_count() == 2  # both kept, for whichever thread comes next


def test_threaded_compute_never_shares_a_handle(tiled, data3, monkeypatch, fresh_handles):
    inside: dict[int, int] = {}  # handle id -> thread inside
    shared: list[int] = []
    real = _handles.dataset
    lock = threading.Lock()

    @contextmanager
    def recording(spec):
        with real(spec) as ds:
            with lock:
                if id(ds) in inside:
                    shared.append(id(ds))
                inside[id(ds)] = threading.get_ident()
            try:
                yield ds
            finally:
                with lock:
                    inside.pop(id(ds), None)

    monkeypatch.setattr(tiff, "dataset", recording)
    r = pyr.read(tiled, chunks=8)
    with dask.config.set(scheduler="threads", num_workers=3):
        np.testing.assert_array_equal(r.data.compute(), data3)
    assert not shared
    assert _handles.open_count() <= 3  # reused, not reopened per chunk


def test_band_descriptions_become_names(tmp_path, tiled):
    assert pyr.read(tiled).bands == ("red", "2", "nir")
    dup = write_tif(tmp_path / "dup.tif", np.zeros((2, 4, 4), "uint8"), descriptions=["x", "x"], tiled=False)
    assert pyr.read(dup).bands == ("1", "2")  # duplicates would be ambiguous: numbered instead
    assert pyr.read(tiled, bands=[2, 0]).bands == ("nir", "red")
    assert pyr.read(tiled, bands=1, chunks="auto").bands == ("2",)


@pytest.mark.parametrize("chunks", [None, 16])
def test_band_selection(tiled, data3, chunks):
    for bands, idx in ((0, [0]), ([2], [2]), ([2, 0], [2, 0]), ((1, 0, 2), [1, 0, 2]), (np.int64(2), [2])):
        r = pyr.read(tiled, bands=bands, chunks=chunks)
        assert r.count == len(idx)
        assert r.is_lazy == (chunks is not None)
        values = r.data.compute() if chunks else r.data
        np.testing.assert_array_equal(values, data3[idx])


@pytest.mark.parametrize("bands", [3, -1, [0, 5], [], "red", 1.0, [True], [1, 1]])
def test_band_selection_rejects(tiled, bands):
    with pytest.raises(InvalidArgument, match="bands"):
        pyr.read(tiled, bands=bands)


@pytest.mark.parametrize("level", [0, 1])
@pytest.mark.parametrize("chunks", [None, "auto", 5])
def test_overview_reads(tiled, level, chunks):
    with rasterio.open(tiled, overview_level=level) as src:
        expected = src.read()
        transform, shape = src.transform, src.shape
    r = pyr.read(tiled, overview=level, chunks=chunks)
    assert r.geobox == GeoBox(shape, transform, GB.crs)
    assert r.geobox.shape == (
        (50 + 2 ** (level + 1) - 1) // 2 ** (level + 1),
        (70 + 2 ** (level + 1) - 1) // 2 ** (level + 1),
    )
    assert r.geobox.bounds == pytest.approx(GB.bounds)
    assert r.bands == ("red", "2", "nir")
    assert r.nodata == 0
    values = r.data.compute() if r.is_lazy else r.data
    np.testing.assert_array_equal(values, expected)


def test_overview_errors(tiled):
    with pytest.raises(ReadError, match=r"tiled\.tif"):
        pyr.read(tiled, overview=2)
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(InvalidArgument, match="overview"):
            pyr.read(tiled, overview=bad)


def test_nodata_override(tiled):
    assert pyr.read(tiled, nodata=7).nodata == 7
    assert pyr.read(tiled, nodata=7, chunks=16).nodata == 7
    with pytest.raises(InvalidArgument, match="nodata"):
        pyr.read(tiled, nodata=-1)


def test_nan_nodata_and_float_files(tmp_path):
    data = np.arange(12, dtype="float32").reshape(1, 3, 4)
    data[0, 1, 1] = np.nan
    tagged = write_tif(tmp_path / "nan.tif", data, nodata=math.nan, tiled=False)
    r = pyr.read(tagged)
    assert math.isnan(r.nodata)
    np.testing.assert_array_equal(r.data, data)
    untagged = write_tif(tmp_path / "untagged.tif", data, tiled=False)
    u = pyr.read(untagged, chunks=2)
    assert u.nodata is None  # NaN pixels stay NaN; no nodata is invented
    np.testing.assert_array_equal(u.data.compute(), data)
    assert math.isnan(pyr.read(untagged, nodata=math.nan).nodata)


@pytest.mark.parametrize("chunks", [None, 7])
def test_window_read_equals_read_then_slice(tiled, data3, chunks):
    # Slicing the geobox then reading that window (plain rasterio) equals
    # reading with pyr then slicing the raster's data.
    r = pyr.read(tiled, chunks=chunks)
    rng = np.random.default_rng(1)
    for _ in range(5):
        r0, c0 = int(rng.integers(0, 49)), int(rng.integers(0, 69))
        r1, c1 = int(rng.integers(r0 + 1, 51)), int(rng.integers(c0 + 1, 71))
        sub = r.geobox[r0:r1, c0:c1]
        with rasterio.open(tiled) as src:
            window = rasterio.windows.from_bounds(*sub.bounds, transform=src.transform)
            expected = src.read(window=window.round_offsets().round_lengths())
            assert src.window_transform(window) == sub.transform
        got = r.data[:, r0:r1, c0:c1]
        np.testing.assert_array_equal(got.compute() if chunks else got, expected)
        np.testing.assert_array_equal(expected, data3[:, r0:r1, c0:c1])


def test_env_is_applied_around_reads(tiled, data3, monkeypatch):
    seen: list[dict[str, str] | None] = []
    real = _handles.applied

    @contextmanager
    def recording_env(path, options):
        seen.append(dict(options) if options else None)
        with real(path, options):
            assert rasterio.env.getenv().get("PYR_TEST_OPTION") == "yes"
            yield

    # GDAL's read path: pyr's own tile reader (pyr/io/cog) hands a local file's reads no GDAL options
    monkeypatch.setenv("PYR_NATIVE", "0")
    r = pyr.read(tiled, chunks=25, env={"PYR_TEST_OPTION": "yes"})
    monkeypatch.setattr(_handles, "applied", recording_env)
    np.testing.assert_array_equal(r.data.compute(scheduler="sync"), data3)
    assert len(seen) == 6  # one per chunk
    assert all(s == {"PYR_TEST_OPTION": "yes"} for s in seen)


def test_file_changed_under_a_lazy_read_is_detected(tmp_path, data3, fresh_handles):
    path = write_tif(tmp_path / "moving.tif", data3, nodata=0)
    r = pyr.read(path, chunks=25)
    _handles.close_all()
    write_tif(path, data3[:1], nodata=0)  # same name, now one band
    with pytest.raises(pyr.GridMismatch, match=r"moving\.tif"):
        r.data.compute(scheduler="sync")


def test_a_rewritten_file_is_read_anew(tmp_path):
    # Handles are cached per thread; a file replaced at the same path must not
    # be served from the old handle.
    path = tmp_path / "again.tif"
    gb = GeoBox.from_bounds((0, 0, 80, 80), 10, "EPSG:32631")
    write_tif(path, np.full((1, 8, 8), 3500, "uint16"), geobox=gb)
    assert int(pyr.read(path).data.max()) == 3500
    assert int(pyr.read(path, chunks=4).data.max().compute(scheduler="sync")) == 3500
    path.unlink()
    write_tif(path, np.full((1, 8, 8), 7000, "uint16"), geobox=gb)
    assert int(pyr.read(path).data.max()) == 7000
    assert int(pyr.read(path, chunks=4).data.max().compute(scheduler="sync")) == 7000


def test_gdal_block_cache_is_capped_unless_set(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "c.tif"
    gb = GeoBox.from_bounds((0, 0, 80, 80), 10, "EPSG:32631")
    write_tif(path, np.ones((1, 8, 8), "uint16"), geobox=gb)
    code = (
        f"import pyr, rasterio.env as e; pyr.read({str(path)!r});"
        "import ctypes; from pyr.io.gdal.gate import _libgdal;"
        "lib = _libgdal(); f = lib.GDALGetCacheMax64; f.restype = ctypes.c_int64; print(f())"
    )
    env_without = {k: v for k, v in os.environ.items() if k != "GDAL_CACHEMAX"}
    capped = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env_without, check=True)
    assert int(capped.stdout.split()[-1]) == 64 * 2**20
    chosen = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env_without, "GDAL_CACHEMAX": "300"},
        check=True,
    )
    assert int(chosen.stdout.split()[-1]) == 300 * 2**20


def test_concurrent_opens_leave_the_warning_filters_as_they_were(tmp_path):
    # pyr silences rasterio's NotGeoreferencedWarning while it opens a file.
    # With warnings.catch_warnings in several threads at once, the process
    # kept an "ignore" filter for good and some opens warned after all.
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        for i in range(6):
            path = tmp_path / f"plain{i}.tif"
            with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=1, dtype="uint8") as dst:
                dst.write(np.ones((1, 8, 8), "uint8"))
            paths.append(path)

    def read_often(path):
        for _ in range(40):
            _handles.close_all()
            assert pyr.read(path).data.sum() == 64

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", NotGeoreferencedWarning)  # a user who wants to see every one
        filters = list(warnings.filters)
        threads = [threading.Thread(target=read_often, args=(p,)) for p in paths]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert list(warnings.filters) == filters
    assert [w for w in seen if issubclass(w.category, NotGeoreferencedWarning)] == []


def test_quiet_keeps_a_users_own_identical_filter():
    import warnings

    from pyr._warnings import quiet

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pyr test", category=UserWarning)
        filters = list(warnings.filters)
        with quiet(UserWarning, "pyr test"):
            warnings.warn("pyr test: silenced", UserWarning, stacklevel=1)
        assert list(warnings.filters) == filters


def test_an_eager_read_too_big_for_memory_names_the_file(tmp_path):
    # A header claiming 10^9 x 10^9 float64 cells (8 EB): nothing is allocated,
    # and the error says which file and how to read it instead of numpy's bare
    # "Unable to allocate ...".
    vrt = tmp_path / "huge.vrt"
    vrt.write_text(
        '<VRTDataset rasterXSize="1000000000" rasterYSize="1000000000">'
        '<VRTRasterBand dataType="Float64" band="1"/></VRTDataset>'
    )
    lazy = pyr.read(vrt, chunks=(1024, 1024))
    assert lazy.shape == (1, 10**9, 10**9)
    with pytest.raises(MemoryError, match=r"huge\.vrt.*chunks='auto'"):
        pyr.read(vrt)


@pytest.fixture
def small_pool(monkeypatch):
    """A fresh handle cache of this process capped at 3 handles."""
    monkeypatch.setenv("PYR_MAX_OPEN_DATASETS", "3")
    monkeypatch.setattr(_handles, "_pool", _handles._Pool())
    yield
    _handles.close_all()


def test_the_handle_cache_is_capped_and_closes_what_it_evicts(tmp_path, data3, small_pool):
    paths = [write_tif(tmp_path / f"f{i}.tif", data3 + i) for i in range(8)]
    opened = []
    for i, path in enumerate(paths):
        with _handles.dataset(tiff.source_spec(path)) as ds:
            opened.append(ds)
        assert _handles.open_count() == min(i + 1, 3)
    assert [ds.closed for ds in opened] == [True] * 5 + [False] * 3  # least recently used closed first
    r = pyr.read(paths[0], chunks=8)
    with dask.config.set(scheduler="threads", num_workers=6):
        np.testing.assert_array_equal(r.data.compute(), data3)  # 6 threads share 3 handles
    assert _handles.open_count() <= 3
    os.environ["PYR_MAX_OPEN_DATASETS"] = "many"  # restored by monkeypatch
    with pytest.raises(InvalidArgument, match="PYR_MAX_OPEN_DATASETS"):
        _handles.handle_limit()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_never_uses_its_parents_handles(tiled, data3, fresh_handles):
    spec = tiff.source_spec(tiled)
    with _handles.dataset(spec) as parents:
        pass
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: a fresh cache, its own handle
        ok = False
        try:
            fresh = _handles.open_count() == 0
            with _handles.dataset(spec) as ds:
                ok = fresh and ds is not parents and bool((ds.read() == data3).all())
        finally:
            os.write(write_end, b"1" if ok else b"0")
            os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 1)
    os.waitpid(pid, 0)
    os.close(read_end)
    assert answer == b"1"
    with _handles.dataset(spec) as again:
        assert again is parents  # the parent's cache is untouched
