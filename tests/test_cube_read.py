"""read_cube: lazy, opens only the first source, checks every file, on_error="nodata".

Expected values come from plain rasterio reads of the files and numpy.
"""

from __future__ import annotations

import errno
import json
import logging
import pickle
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import dask
import numpy as np
import pytest
import rasterio
from affine import Affine

import pyr
from pyr import GeoBox, GridMismatch, InvalidArgument, ReadError, read_cube, reduce_time
from pyr.io.cube import LOGGER_NAME, check_sources
from pyr.io.gdal import handles as _handles
from pyr.testing import raise_if_dask_computes
from tests._tiffs import write_tif

SIZE, DATES, BLOCK = 512, 20, 256
GRID = GeoBox((SIZE, SIZE), Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5700000.0), "EPSG:32631")


def date_of(path: str | Path) -> np.datetime64:
    match = re.search(r"(\d{8})", Path(path).name)
    assert match is not None
    d = match.group(1)
    return np.datetime64(f"{d[:4]}-{d[4:6]}-{d[6:]}")


@pytest.fixture(scope="session")
def series(tmp_path_factory) -> list[Path]:
    """20 dates of 512x512 uint16 tiled DEFLATE GeoTIFFs with clouds as nodata 0."""
    out = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(42)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    paths = []
    for d in range(DATES):
        values = (1000 + 500 * np.sin(xx / 40 + d) * np.cos(yy / 60) + rng.normal(0, 50, (SIZE, SIZE))).astype("uint16")
        cy, cx = rng.integers(0, SIZE, 2).tolist()
        r = int(rng.integers(40, 160))
        values[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 0  # a cloud
        if d % 5 == 0:
            values[:, : SIZE // 4] = 0  # a swath edge
        values[-20:, -30:] = 0  # never seen
        day = np.datetime64("2024-01-01") + np.timedelta64(5 * d, "D")
        name = f"T31UFQ_{str(day).replace('-', '')}_B04.tif"
        paths.append(write_tif(out / name, values[None], geobox=GRID, nodata=0, block=(BLOCK, BLOCK), overviews=(2, 4)))
    return paths


def plain_stack(paths: list[Path]) -> np.ndarray:
    """Every file read with plain rasterio, NaN at nodata (float64)."""
    out = []
    for p in paths:
        with rasterio.open(p) as src:
            a = src.read().astype("float64")
            a[a == src.nodata] = np.nan
            out.append(a)
    return np.stack(out)


def test_series_mean_median_count_agree_with_numpy(series):
    cube = read_cube(series, times=date_of)
    assert cube.is_lazy
    assert cube.shape == (DATES, 1, SIZE, SIZE)
    assert cube.geobox == GRID
    assert cube.nodata == 0
    assert str(cube.times[1])[:10] == "2024-01-06"
    x = plain_stack(series)
    n = (~np.isnan(x)).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = {"mean": np.nanmean(x, axis=0), "median": np.nanmedian(x, axis=0)}
    for how, want in expected.items():
        got = reduce_time(cube, how).data.compute()
        np.testing.assert_allclose(got, want.astype("float32"), rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(reduce_time(cube, "count").data.compute(), n)
    assert (n == 0).any()  # some cells are clouded on every date: NaN above


def test_chunks_are_tile_aligned_one_date_each(series):
    cube = read_cube(series)
    tchunks, bchunks, ychunks, xchunks = cube.data.chunks
    assert set(tchunks) == {1}
    assert bchunks == (1,)
    assert all(c % BLOCK == 0 for c in ychunks[:-1] + xchunks[:-1])
    with dask.config.set({"array.chunk-size": "1MiB"}):  # a smaller budget: smaller, still aligned chunks
        small = read_cube(series)
    assert small.data.chunks[2:] == ((BLOCK, BLOCK), (BLOCK, BLOCK))
    explicit = read_cube(series[:3], chunks=(100, 200))
    assert explicit.data.chunks[2:] == ((100,) * 5 + (12,), (200, 200, 112))
    np.testing.assert_array_equal(explicit.data[2].compute(), read_plain(series[2]))


def read_plain(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


@pytest.fixture
def count_opens(monkeypatch):
    """Distinct paths GDAL datasets were opened for (rasterio.open wrapped, handle caches emptied)."""
    _handles.close_all()
    opened: list[str] = []
    real_open = rasterio.open

    def counting(path, *args, **kwargs):
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(rasterio, "open", counting)
    yield opened
    _handles.close_all()


def test_opens_only_the_first_of_50_sources_at_call_time(tmp_path, count_opens):
    paths = []
    for t in range(50):
        data = np.full((1, 32, 48), t + 1, "int16")
        paths.append(
            str(write_tif(tmp_path / f"d{t:02d}.tif", data, geobox=GeoBox((32, 48), GRID.transform, GRID.crs)))
        )
    _handles.close_all()
    count_opens.clear()  # the writes above used rasterio.open too
    with raise_if_dask_computes():
        cube = read_cube(paths, chunks=16)
    assert set(count_opens) == {paths[0]}
    values = cube.data.compute(scheduler="threads")
    assert set(count_opens) == set(paths)  # the tasks read every file
    np.testing.assert_array_equal(values[:, 0, 0, 0], np.arange(1, 51))
    restored = pickle.loads(pickle.dumps(cube.data))  # no handle in the graph
    np.testing.assert_array_equal(restored.compute(), values)


def test_grid_mismatch_is_raised_by_the_task_naming_the_file(tmp_path, series):
    shifted = GeoBox(GRID.shape, Affine(10.0, 0.0, 600010.0, 0.0, -10.0, 5700000.0), GRID.crs)
    odd = write_tif(tmp_path / "odd.tif", read_plain(series[1]), geobox=shifted, nodata=0, block=(BLOCK, BLOCK))
    cube = read_cube([series[0], odd, series[2]])  # nothing but the first is opened: no error yet
    with pytest.raises(GridMismatch, match=r"odd\.tif.*grid"):
        cube.data.compute()
    other_nodata = write_tif(tmp_path / "nd.tif", read_plain(series[1]), geobox=GRID, nodata=1, block=(BLOCK, BLOCK))
    with pytest.raises(GridMismatch, match=r"nd\.tif.*nodata 1 instead of 0"):
        read_cube([series[0], other_nodata], on_error="nodata").data.compute()


def test_real_landsat_scenes_on_different_grids_are_refused(real_data):
    folder = real_data / "landsat8_l1tp_ny2018_gdalcubes"
    paths = sorted(str(p) for p in folder.glob("*/*_B4.TIF"))
    assert len(paths) == 19
    cube = read_cube(paths, times=lambda p: date_of(Path(p).name.split("_", 3)[3]))
    assert cube.ntimes == 19
    with pytest.raises(GridMismatch) as info:
        reduce_time(cube, "mean").data.compute(scheduler="sync")
    message = str(info.value)
    named = [p for p in paths[1:] if Path(p).name in message]
    assert len(named) == 1, message
    assert "grid" in message


@pytest.fixture
def corrupt_series(tmp_path, series) -> tuple[list[Path], int]:
    paths = [shutil.copy(p, tmp_path / p.name) for p in series[:6]]
    bad = 3
    raw = Path(paths[bad]).read_bytes()
    Path(paths[bad]).write_bytes(raw[: len(raw) // 2])  # truncated
    return [Path(p) for p in paths], bad


def test_corrupt_date_with_on_error_nodata_gives_the_mean_of_the_others(corrupt_series, caplog):
    paths, bad = corrupt_series
    cube = read_cube(paths, on_error="nodata")
    with caplog.at_level(logging.WARNING, logger=LOGGER_NAME):
        mean = reduce_time(cube, "mean").data.compute(scheduler="threads")
    good = [p for i, p in enumerate(paths) if i != bad]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanmean(plain_stack(good), axis=0)
    np.testing.assert_allclose(mean, expected.astype("float32"), rtol=1e-6, equal_nan=True)
    logged = {r.getMessage() for r in caplog.records if r.name == LOGGER_NAME}
    assert logged
    assert all(paths[bad].name in m for m in logged)
    failed = check_sources(paths, deep=True)
    assert list(failed) == [str(paths[bad])]
    assert failed[str(paths[bad])].startswith("ReadError")


def test_corrupt_date_raises_by_default(corrupt_series):
    paths, bad = corrupt_series
    with pytest.raises(ReadError, match=re.escape(paths[bad].name)):
        reduce_time(read_cube(paths), "mean").data.compute()


def test_check_sources_without_reading_pixels(tmp_path, series):
    missing = tmp_path / "missing.tif"
    shifted = GeoBox(GRID.shape, Affine(10.0, 0.0, 0.0, 0.0, -10.0, 0.0), GRID.crs)
    odd = write_tif(tmp_path / "odd.tif", read_plain(series[1]), geobox=shifted, nodata=0)
    failed = check_sources([series[0], missing, series[1], odd])
    assert list(failed) == [str(missing), str(odd)]
    assert failed[str(missing)].startswith("ReadError")
    assert failed[str(odd)].startswith("GridMismatch")
    assert check_sources(series[:3]) == {}


def test_on_error_nodata_needs_a_nodata_value(tmp_path):
    ints = [write_tif(tmp_path / f"i{t}.tif", np.ones((1, 8, 8), "uint8")) for t in range(2)]
    with pytest.raises(InvalidArgument, match="needs a nodata value"):
        read_cube(ints, on_error="nodata")
    floats = [write_tif(tmp_path / f"f{t}.tif", np.full((1, 8, 8), t + 1.0, "float32")) for t in range(2)]
    floats.append(tmp_path / "gone.tif")
    cube = read_cube(floats, on_error="nodata")
    assert np.isnan(cube.nodata)
    values = cube.data.compute()
    assert np.isnan(values[2]).all()
    np.testing.assert_array_equal(reduce_time(cube, "mean").data.compute(), np.full((1, 8, 8), 1.5, "float32"))


def test_band_selection_and_names(tmp_path):
    data = np.arange(3 * 8 * 8, dtype="int16").reshape(3, 8, 8)
    paths = [
        write_tif(tmp_path / f"m{t}.tif", data + t, nodata=-1, descriptions=("blue", "green", "red")) for t in range(3)
    ]
    cube = read_cube(paths, bands=[2, 0])
    assert cube.bands == ("red", "blue")
    np.testing.assert_array_equal(cube.data[1].compute(), (data + 1)[[2, 0]])
    assert read_cube(paths, bands=1).bands == ("green",)


def test_bad_arguments(series):
    with pytest.raises(InvalidArgument, match="sequence of paths"):
        read_cube(str(series[0]))
    with pytest.raises(InvalidArgument, match="empty"):
        read_cube([])
    with pytest.raises(InvalidArgument, match="on_error"):
        read_cube(series, on_error="skip")
    with pytest.raises(InvalidArgument, match="chunks=None"):
        read_cube(series, chunks=None)
    with pytest.raises(InvalidArgument, match="times has 2 value"):
        read_cube(series[:3], times=["2024-01-01", "2024-01-02"])
    with pytest.raises(InvalidArgument, match="out of range"):
        read_cube(series[:2], bands=3)
    with pytest.raises(ReadError, match=r"nowhere\.tif"):
        read_cube(["nowhere.tif", series[0]])


def test_curried(series):
    cube = read_cube(times=date_of)(series[:2])
    assert cube.ntimes == 2
    assert pyr.read_cube is read_cube or pyr.read_cube.func is read_cube.func


# --- open files: bounded per process, and running out is an error, never nodata -------------

_ROOT = Path(__file__).resolve().parents[1]

_MANY_FILES_CHILD = """
import json, resource, sys, threading
import dask, numpy as np, pyr
from pyr.io.gdal import handles

paths = json.load(open(sys.argv[1]))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[2]), hard))
result = {}
for on_error in ("raise", "nodata"):
    cube = pyr.read_cube(paths, chunks=16, on_error=on_error)
    with dask.config.set(scheduler="threads", num_workers=int(sys.argv[3])):
        data = cube.data.compute()
    result[on_error] = [int(v) for v in data.min(axis=(1, 2, 3))]
result["handles"] = handles.open_count()
result["limit"] = handles.handle_limit()
open("/dev/null").close()  # the process can still open a file afterwards
print(json.dumps(result))
"""


def _child(code: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python with this checkout's pyr."""
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, cwd=_ROOT
    )


def _small_dates(folder: Path, n: int) -> list[str]:
    gb = GeoBox((32, 32), GRID.transform, GRID.crs)
    return [
        str(write_tif(folder / f"d{t:03d}.tif", np.full((1, 32, 32), t + 1, "int16"), geobox=gb, nodata=0))
        for t in range(n)
    ]


def test_many_files_many_threads_stay_under_the_open_file_limit(tmp_path):
    # The scenario scaled down: 32 threads, 1024 files, 1024 open files
    # allowed -> 240 files, 16 threads, 160 allowed. Each thread used to keep
    # up to 64 datasets (16 x 64 > 160): healthy files failed with "Too many
    # open files", and on_error="nodata" silently turned them into nodata.
    paths = _small_dates(tmp_path, 240)
    listing = tmp_path / "paths.json"
    listing.write_text(json.dumps(paths))
    out = _child(_MANY_FILES_CHILD, str(listing), "160", "16")
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    expected = list(range(1, 241))
    assert result["raise"] == expected
    assert result["nodata"] == expected  # no date became nodata
    assert result["limit"] == 40  # a quarter of the open-file limit
    assert 0 < result["handles"] <= 40


_STARVED_CHILD = """
import errno, json, resource, sys
import dask, numpy as np, pyr
from pyr.io.gdal import handles

paths = json.load(open(sys.argv[1]))
cube = pyr.read_cube(paths, chunks=16, on_error="nodata")
np.zeros(1).sum(); dask.compute(dask.delayed(int)(1), scheduler="sync")  # imports done before starving
handles.close_all()  # pyr holds no descriptor it could give back
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
hog = []
try:
    while True:
        hog.append(open("/dev/null"))
except OSError as err:
    assert err.errno == errno.EMFILE
try:
    data = cube.data.compute(scheduler="sync")
except OSError as err:
    for f in hog:
        f.close()
    print(json.dumps({"error": type(err).__name__, "errno": err.errno, "message": str(err)}))
else:
    for f in hog:
        f.close()
    print(json.dumps({"error": None, "minima": [int(v) for v in data.min(axis=(1, 2, 3))]}))
"""


def test_running_out_of_file_descriptors_is_an_error_not_nodata(tmp_path):
    # on_error="nodata" covers an unreadable source, not a starved process: the
    # files are fine, the process has no descriptor left to open them with.
    paths = _small_dates(tmp_path, 6)
    listing = tmp_path / "paths.json"
    listing.write_text(json.dumps(paths))
    out = _child(_STARVED_CHILD, str(listing))
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.splitlines()[-1])
    assert result["error"] == "OSError", result
    assert result["errno"] == errno.EMFILE
    assert "Too many open files" in result["message"]
    assert "d00" in result["message"]  # names the file it was reading
