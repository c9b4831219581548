"""The ``pyr`` command: demo under every scheduler, info, quicklook, and clean errors on bad input."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pyr import Cube, GeoBox, Raster, read_zarr, write_zarr
from pyr.cli import main
from pyr.testing.synth import times_of

DEMO_ARGS = ["--size", "512", "--dates", "3"]


def _run(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pyr", *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _png(path: Path) -> np.ndarray:
    """The colour channels of a PNG (grey or RGB, alpha dropped) as rows x columns x channels in 0..1."""
    from rasterio.errors import NotGeoreferencedWarning

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)  # a picture has no grid
        with rasterio.open(path) as src:
            assert src.driver == "PNG"
            pixels = src.read()
    colours = {1: 1, 2: 1, 3: 3, 4: 3}[pixels.shape[0]]
    return np.moveaxis(pixels[:colours], 0, -1) / np.float64(np.iinfo(pixels.dtype).max)


def _check_demo_outputs(out: Path, *, xarray: bool = True) -> None:
    scenes = sorted((out / "scenes").glob("B04_*.tif"))
    assert len(scenes) == 3
    with rasterio.open(scenes[0]) as src:
        gb = GeoBox((src.height, src.width), src.transform, src.crs)
        first = src.read(1)
    stack = []
    for p in scenes:
        with rasterio.open(p) as src:
            stack.append(src.read(1))
    cube_values = np.stack(stack)

    # the rescaled date, read back with pyr
    date = read_zarr(out / "date.zarr", chunks=None)
    assert isinstance(date, Raster)
    assert date.geobox == gb
    assert date.dtype == np.float32
    assert math.isnan(date.nodata)
    expected = np.where(first == 0, np.nan, np.clip(first.astype("float32") * np.float32(1e-4), 0, 1))
    np.testing.assert_allclose(date.data[0], expected, rtol=1e-6, equal_nan=True)

    # the cube store, with pyr and with xarray + rioxarray
    cube = read_zarr(out / "cube.zarr", chunks=None)
    assert isinstance(cube, Cube)
    assert cube.geobox == gb
    assert cube.nodata == 0
    np.testing.assert_array_equal(cube.times, np.array(times_of(scenes), dtype="datetime64[ns]"))
    np.testing.assert_array_equal(cube.data[:, 0], cube_values)
    if xarray:
        xr = pytest.importorskip("xarray")
        pytest.importorskip("rioxarray")
        with xr.open_zarr(out / "cube.zarr") as ds:
            arr = ds["band_data"]
            assert arr.dims == ("time", "band", "y", "x")
            assert arr.rio.crs.to_epsg() == 32631
            assert arr.rio.transform().almost_equals(gb.transform)
            assert arr.rio.encoded_nodata == 0

    # the temporal mean, against numpy's on the source files
    with rasterio.open(out / "mean.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        mean = src.read(1)
    valid = np.where(cube_values == 0, np.nan, cube_values.astype("float64"))
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="Mean of empty slice"):
        np.testing.assert_allclose(mean, np.nanmean(valid, axis=0), rtol=1e-5, equal_nan=True)
    with rasterio.open(out / "median.tif") as src:
        median = src.read(1)
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):
        np.testing.assert_allclose(median, np.nanmedian(valid, axis=0), rtol=1e-5, equal_nan=True)

    _check_grid_median(out, scenes)

    # a plain picture is one pixel per cell: 512 x 512 (10 m), 188 x 188 on the user grid (30 m)
    for name, least in (("mean.png", 300), ("median.png", 300), ("date.png", 300), ("grid_median.png", 150)):
        pixels = _png(out / name)
        assert pixels.ndim == 3
        assert pixels.shape[0] > least
        assert pixels.shape[1] > least
        assert pixels.std() > 0.05  # a picture, not a blank square


def _check_grid_median(out: Path, scenes: list[Path]) -> None:
    """The demo's cube on a user grid (EPSG:3035, 30 m), reduced to its median, against rasterio's warp."""
    from rasterio.enums import Resampling
    from rasterio.warp import reproject as rio_reproject

    from pyr.cli._demo_grid import user_grid

    grid, _ = user_grid(scenes[0])
    with rasterio.open(out / "grid_median.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert GeoBox((src.height, src.width), src.transform, src.crs) == grid
        assert src.crs.to_epsg() == 3035
        assert src.res == (30.0, 30.0)
        assert (src.transform.c % 30, src.transform.f % 30) == (0, 0)  # from_bbox snaps the edges
        assert src.dtypes == ("float32",)
        got = src.read(1)
    dates = []
    for p in scenes:
        # the coarsest overview still as fine as 30 m: 1/2 (20 m), the only one of a 512 px file
        with rasterio.open(p, overview_level=0) as src:
            assert src.res == (20.0, 20.0)
            warped = np.zeros(grid.shape, "uint16")
            rio_reproject(
                src.read(1), warped, src_transform=src.transform, src_crs=src.crs, src_nodata=0,
                dst_transform=grid.transform, dst_crs=grid.crs, dst_nodata=0, resampling=Resampling.average,
            )  # fmt: skip
        dates.append(warped)
    stack = np.stack(dates).astype("float32")
    stack[stack == 0] = np.nan
    with pytest.warns(RuntimeWarning, match="All-NaN slice"):  # the corners of the grid outside the tile
        expected = np.nanmedian(stack, axis=0)
    assert 0.5 < np.isfinite(got).mean() < 0.95
    # per-chunk warps may pick other cells than the whole-grid warp only near cell edges (docs/grid-alignment.md)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    assert same.mean() > 0.99


def test_demo_threads_in_process(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", *DEMO_ARGS, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for k in range(1, 12):
        assert f"[{k}/11]" in text
    assert "MB/s" in text
    assert "100% Completed" in text
    assert "3 written, 0 cached" in text
    assert "pyr.read_cube" in text
    assert "CRS, transform and times match pyr's" in text
    assert "crs='EPSG:3035', resolution=30" in text
    _check_demo_outputs(out)
    # again: the series is reused, the stores replaced
    assert main(["demo", *DEMO_ARGS, "--out", str(out)]) == 0
    assert "0 written, 3 cached" in capsys.readouterr().out
    _check_demo_outputs(out)


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["processes", "distributed"])
def test_demo_subprocess(tmp_path: Path, scheduler: str) -> None:
    out = tmp_path / scheduler
    done = _run("demo", *DEMO_ARGS, "--out", str(out), "--scheduler", scheduler)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "[11/11] cube on a user grid" in done.stdout
    assert "100% Completed" in done.stdout
    _check_demo_outputs(out)


#: Runs ``pyr`` in a process where the optional packages of a plain ``pip install pyr`` cannot be imported.
WITHOUT_EXTRAS = """
import sys
for name in ("matplotlib", "xarray", "rioxarray"):
    sys.modules[name] = None  # import raises ImportError, as when the package is not installed
from pyr.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_finishes_without_matplotlib_or_xarray(tmp_path: Path) -> None:
    out = tmp_path / "plain"
    cmd = [sys.executable, "-c", WITHOUT_EXTRAS, "demo", *DEMO_ARGS, "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert "[10/11] PNG quicklooks (plain greyscale: matplotlib is not installed" in done.stdout
    assert "xarray/rioxarray not installed: skipped" in done.stdout
    _check_demo_outputs(out, xarray=False)
    for name in ("mean.png", "median.png", "date.png", "grid_median.png"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(out / name) as src:
                assert (src.count, src.dtypes) == (2, ("uint8", "uint8"))  # grey and alpha
                assert "temporal" in src.tags()["Title"] or "one date" in src.tags()["Title"]
                assert ("EPSG:3035" in src.tags()["Title"]) == (name == "grid_median.png")
                alpha = src.read(2)
        assert set(np.unique(alpha)) <= {0, 255}
        assert (alpha == 0).any()  # the swath edge (nodata) is transparent
    assert not list(out.glob("*.aux.xml"))


def test_quicklook_without_matplotlib(tmp_path: Path) -> None:
    from pyr.testing.synth import make_series

    (path,) = make_series(tmp_path / "s", size=512, dates=1, block=256)
    out = tmp_path / "s.png"
    cmd = [sys.executable, "-c", WITHOUT_EXTRAS, "quicklook", str(path), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "plain greyscale" in done.stdout
    assert _png(out).std() > 0.05
    done = subprocess.run([*cmd, "--cmap", "viridis"], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("pyr: error: cmap='viridis': colour maps need matplotlib")


def test_quicklook_says_every_nth_pixel_in_english(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gb = GeoBox.from_bounds((600000, 5690000, 600000 + 10 * 4200, 5690000 + 10 * 64), 10, "EPSG:32631")
    raster = Raster(np.arange(64 * 4200, dtype="float32").reshape(1, 64, 4200), gb, nodata=math.nan)
    write_zarr(raster, tmp_path / "wide.zarr")  # no overviews: decimated by 3 to at most 2000 px across
    assert main(["quicklook", str(tmp_path / "wide.zarr"), str(tmp_path / "w.png")]) == 0
    assert "every 3rd pixel" in capsys.readouterr().out


def test_demo_help_states_the_default() -> None:
    from pyr.cli import demo

    done = _run("demo", "--help", timeout=60)
    assert done.returncode == 0
    assert f"default {demo.DEFAULT_SIZE}" in done.stdout
    assert f"default {demo.DEFAULT_DATES}" in done.stdout


# --- info ---------------------------------------------------------------------------


def _info(capsys: pytest.CaptureFixture[str], *sources: str) -> str:
    assert main(["info", *sources]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "name",
    [
        "s2l2a_cog_29RKH_20200219/B04.tif",
        "cog/riotiler_cog.tif",
        "odd/RGB.byte.tif",
        "s2l2a_cog_29RKH_20200219/SCL.tif",
    ],
)
def test_info_real_files(real_data: Path, capsys: pytest.CaptureFixture[str], name: str) -> None:
    path = real_data / name
    text = _info(capsys, str(path))
    with rasterio.open(path) as src:
        assert f"EPSG:{src.crs.to_epsg()}" in text
        assert f"{src.height} rows x {src.width} columns" in text
        assert f"nodata     {'none' if src.nodata is None else int(src.nodata)}" in text
        assert f"dtype      {src.dtypes[0]}" in text
        block_y, block_x = src.block_shapes[0]
        assert f"blocks     {block_y} x {block_x}" in text
        for f in src.overviews(1):
            assert f"{f}x (" in text
        if not src.overviews(1):
            assert "overviews  none" in text
        assert f"{src.transform.c:.10g}" in text


def test_info_several_and_over_http(real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.servers import RangeServer

    folder = real_data / "s2l2a_cog_29RKH_20200219"
    with RangeServer(folder) as server:
        text = _info(capsys, str(folder / "B04.tif"), server.url("B08.tif"))
    assert text.count("EPSG:32629") == 2
    assert "B08.tif" in text


def test_info_zarr_stores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gb = GeoBox.from_bounds((600000, 5690000, 600640, 5690320), 10, "EPSG:32631")
    raster = Raster(np.ones((2, 32, 64), "int16"), gb, nodata=-1, bands=("B04", "B08"))
    write_zarr(raster, tmp_path / "r.zarr")
    times = np.array(["2024-01-05", "2024-01-10"], dtype="datetime64[ns]")
    write_zarr(Cube(np.ones((2, 1, 32, 64), "float32"), gb, nodata=math.nan, times=times), tmp_path / "c.zarr")
    text = _info(capsys, str(tmp_path / "r.zarr"), str(tmp_path / "c.zarr"))
    assert text.count("EPSG:32631") == 2
    assert text.count("32 rows x 64 columns") == 2
    assert "nodata     -1" in text
    assert "nodata     NaN" in text
    assert "1=B04, 2=B08" in text
    assert "times      2: 2024-01-05, 2024-01-10" in text


# --- quicklook ----------------------------------------------------------------------


def test_quicklook_picks_an_overview(real_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = real_data / "cog" / "riotiler_cog.tif"  # 2667 x 2658, overviews 2, 4, 8, 16
    out = tmp_path / "q.png"
    assert main(["quicklook", str(src), str(out)]) == 0
    text = capsys.readouterr().out
    assert "overview 0 (1/2)" in text
    assert "1334 x 1329 cells" in text
    pixels = _png(out)
    assert pixels[..., :3].std() > 0.05
    assert main(["quicklook", str(src), str(out), "--overview", "3"]) == 0
    assert "overview 3 (1/16)" in capsys.readouterr().out


def test_quicklook_zarr_cube_date(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gb = GeoBox.from_bounds((600000, 5690000, 600640, 5690320), 10, "EPSG:32631")
    data = np.arange(2 * 32 * 64, dtype="float32").reshape(2, 1, 32, 64)
    times = np.array(["2024-01-05", "2024-01-10"], dtype="datetime64[ns]")
    write_zarr(Cube(data, gb, nodata=math.nan, times=times), tmp_path / "c.zarr")
    assert main(["quicklook", str(tmp_path / "c.zarr"), str(tmp_path / "c.png"), "--time", "1"]) == 0
    assert "date 1 2024-01-10" in capsys.readouterr().out
    assert _png(tmp_path / "c.png")[..., :3].std() > 0.05


def test_quicklook_synthetic_scene_looks_like_a_scene(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pyr.testing.synth import make_series

    (path,) = make_series(tmp_path / "s", size=1024, dates=1, block=256)
    out = tmp_path / "s.png"
    assert main(["quicklook", str(path), str(out)]) == 0
    assert "full resolution" in capsys.readouterr().out
    gray = _png(out)[..., :3].mean(axis=2)
    # the image area has texture at many places (fields), not a flat square
    centre = gray[gray.shape[0] // 4 : 3 * gray.shape[0] // 4, gray.shape[1] // 5 : 3 * gray.shape[1] // 5]
    assert centre.std() > 0.05
    assert len(np.unique(np.round(centre, 2))) > 20


# --- bad input ----------------------------------------------------------------------


def _fails(capsys: pytest.CaptureFixture[str], args: list[str], *words: str) -> None:
    with pytest.raises(SystemExit) if any(a.startswith("--size=") or a == "--bogus" for a in args) else _nothing():
        status = main(args)
        assert status != 0
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pyr: error: ")
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def test_bad_input_one_line_no_traceback(tmp_path: Path, real_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a raster\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    b04 = str(real_data / "s2l2a_cog_29RKH_20200219" / "B04.tif")
    _fails(capsys, ["info", str(tmp_path / "missing.tif")], "missing.tif")
    _fails(capsys, ["info", str(text)], "notes.txt")
    _fails(capsys, ["info", str(folder)], "folder", "not a raster")
    _fails(capsys, ["quicklook", str(tmp_path / "missing.tif"), str(tmp_path / "x.png")], "missing.tif")
    _fails(capsys, ["quicklook", b04, str(tmp_path / "x.jpg")], "x.jpg", ".png")
    _fails(capsys, ["quicklook", b04, str(tmp_path / "nowhere" / "x.png")], "nowhere")
    _fails(capsys, ["quicklook", b04, str(tmp_path / "x.png"), "--band", "2"], "--band 2", "1..1")
    _fails(capsys, ["quicklook", b04, str(tmp_path / "x.png"), "--overview", "5"], "--overview 5", "0..1")
    _fails(capsys, ["quicklook", b04, str(tmp_path / "x.png"), "--cmap", "nope"], "nope")
    _fails(capsys, ["demo", "--size=-5"], "--size", "-5")
    _fails(capsys, ["info", b04, "--bogus"], "--bogus")


def test_url_answering_404(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.servers import RangeServer

    with RangeServer(tmp_path) as server:
        url = server.url("gone.tif")
        _fails(capsys, ["info", url], "gone.tif")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from pyr import ReadError

    with pytest.raises(ReadError, match=r"missing\.tif"):
        main(["--debug", "info", str(tmp_path / "missing.tif")])
    with pytest.raises(ReadError, match=r"missing\.tif"):
        main(["info", str(tmp_path / "missing.tif"), "--debug"])


def test_bad_input_in_a_real_process(tmp_path: Path) -> None:
    done = _run("info", str(tmp_path / "missing.tif"), timeout=60)
    assert done.returncode == 1
    assert done.stderr.startswith("pyr: error: ")
    assert len(done.stderr.strip().splitlines()) == 1
    assert "Traceback" not in done.stderr
    done = _run("demo", "--scheduler", "mpi", timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "mpi" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
