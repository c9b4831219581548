"""``write_tiff``: round trips, COG layout checked by GDAL, laziness, no partial files."""

from __future__ import annotations

import math
import os
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
from dask.delayed import Delayed
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyr import GeoBox, InvalidArgument, Raster, WriteError, read, write_tiff
from pyr.io.storage import owner_tag
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import rasters

GB = GeoBox.from_bounds((600000, 5690000, 605120, 5695120), 10, "EPSG:32631")  # 512 x 512


def _raster(lazy: bool, dtype: str = "uint16", chunks: int = 200) -> Raster:
    rng = np.random.default_rng(1)
    data = rng.integers(0, 5000, size=(2, *GB.shape)).astype(dtype)
    data[:, :40, :40] = 0
    arr = da.from_array(data, chunks=(1, chunks, chunks)) if lazy else data
    return Raster(arr, GB, nodata=0, bands=("B04", "B08"))


def _huge_int64_nodata(r: Raster) -> bool:
    return r.dtype.itemsize == 8 and r.dtype.kind in "iu" and r.nodata is not None and abs(int(r.nodata)) > 2**53


@settings(max_examples=15)
@given(r=rasters(max_side=30, max_bands=3), cog=st.booleans(), compress=st.sampled_from(["deflate", "none", "zstd"]))
def test_round_trip(tmp_path_factory: pytest.TempPathFactory, r: Raster, cog: bool, compress: str) -> None:
    assume(not _huge_int64_nodata(r))
    path = tmp_path_factory.mktemp("rt") / "r.tif"
    assert write_tiff(r, path, cog=cog, compress=compress) is None
    back = read(path)
    assert_raster_equal(back, r.__class__(np.asarray(r.data), r.geobox, nodata=r.nodata, bands=r.bands))


@pytest.mark.parametrize("lazy", [False, True])
def test_cog_layout_validated_by_gdal(tmp_path: Path, lazy: bool) -> None:
    r = _raster(lazy)
    path = tmp_path / "cog.tif"
    write_tiff(r, path)
    with rasterio.open(path) as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.profile["tiled"]
        assert src.compression.name.lower() == "deflate"
        assert src.overviews(1)[0] == 2
        assert src.crs.to_epsg() == 32631
        assert src.transform == GB.transform
        assert src.nodata == 0
        assert src.descriptions == ("B04", "B08")
        np.testing.assert_array_equal(src.read(), np.asarray(_raster(False).data))
    assert_raster_equal(read(path, chunks="auto"), _raster(False))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cog.tif"]  # no staging left


def test_plain_tiff_has_no_overviews(tmp_path: Path) -> None:
    write_tiff(_raster(True), tmp_path / "plain.tif", cog=False, compress="lzw")
    with rasterio.open(tmp_path / "plain.tif") as src:
        assert src.overviews(1) == []
        assert src.compression.name.lower() == "lzw"
        assert "LAYOUT" not in src.tags(ns="IMAGE_STRUCTURE")


def test_lazy_equals_eager(tmp_path: Path) -> None:
    write_tiff(_raster(False, "float32"), tmp_path / "eager.tif")
    write_tiff(_raster(True, "float32", chunks=96), tmp_path / "lazy.tif")
    with rasterio.open(tmp_path / "eager.tif") as a, rasterio.open(tmp_path / "lazy.tif") as b:
        np.testing.assert_array_equal(a.read(), b.read())
        assert a.profile == b.profile


@settings(max_examples=10)
@given(r=rasters(lazy=True, max_side=30, max_bands=3))
def test_lazy_round_trip(tmp_path_factory: pytest.TempPathFactory, r: Raster) -> None:
    assume(not _huge_int64_nodata(r))
    path = tmp_path_factory.mktemp("lazy") / "r.tif"
    write_tiff(r, path)
    assert_raster_equal(read(path), r)


@pytest.mark.parametrize("lazy", [False, True])
def test_compute_false_touches_nothing(tmp_path: Path, lazy: bool) -> None:
    path = tmp_path / "later.tif"
    with raise_if_dask_computes():
        delayed = write_tiff(_raster(lazy), path, compute=False)
    assert list(tmp_path.iterdir()) == []
    assert isinstance(delayed, Delayed)
    delayed.compute(scheduler="threads")
    assert_raster_equal(read(path), _raster(False))


def test_lazy_write_runs_under_processes(tmp_path: Path) -> None:
    path = tmp_path / "p.tif"
    with dask.config.set(scheduler="processes", num_workers=2):
        write_tiff(_raster(True, chunks=256), path)
    assert_raster_equal(read(path), _raster(False))


def _boom(block: np.ndarray) -> np.ndarray:
    if block.shape[1] < 200:  # fail on the ragged edge chunks only, after others were written
        raise RuntimeError("kernel failed")
    return block


def test_failure_leaves_old_file_and_no_partial(tmp_path: Path) -> None:
    path = tmp_path / "keep.tif"
    path.write_bytes(b"old content")
    r = _raster(True)
    bad = Raster(r.data.map_blocks(_boom, dtype=r.dtype), GB, nodata=0, bands=r.bands)
    with pytest.raises(RuntimeError, match="kernel failed"):
        write_tiff(bad, path)
    assert path.read_bytes() == b"old content"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tif"]


def test_chunks_never_meet_in_one_task(tmp_path: Path) -> None:
    """The final task depends on the chunk-saving tasks, never on the chunks' arrays."""
    r = _raster(True, chunks=128)
    delayed = write_tiff(r, tmp_path / "x.tif", compute=False)
    graph = dict(delayed.__dask_graph__())
    final = graph[delayed.key]
    deps = {d for d in dask.core.get_dependencies(graph, delayed.key)}
    assert deps
    assert all(str(d[0]).startswith("pyr-tiff-chunk-") for d in deps)
    assert final is not None


def test_level_changes_size_not_values(tmp_path: Path) -> None:
    r = _raster(False)
    write_tiff(r, tmp_path / "l1.tif", level=1)
    write_tiff(r, tmp_path / "l9.tif", level=9)
    assert_raster_equal(read(tmp_path / "l1.tif"), read(tmp_path / "l9.tif"))
    assert (tmp_path / "l1.tif").stat().st_size != (tmp_path / "l9.tif").stat().st_size


def test_curried_and_pipe(tmp_path: Path) -> None:
    from toolz import pipe

    pipe(_raster(False), write_tiff(path=tmp_path / "c.tif", compress="zstd"))
    with rasterio.open(tmp_path / "c.tif") as src:
        assert src.compression.name.lower() == "zstd"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"compress": "jpeg2000"}, "compress"),
        ({"cog": "yes"}, "cog"),
        ({"level": 0}, "level"),
        ({"compress": "lzw", "level": 3}, "level"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        write_tiff(_raster(False), tmp_path / "x.tif", **kwargs)


def test_bad_targets(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="Raster"):
        write_tiff(np.zeros((1, 2, 2)), tmp_path / "x.tif")
    with pytest.raises(InvalidArgument, match=r"s3://b/x\.tif"):
        write_tiff(_raster(False), "s3://b/x.tif")
    with pytest.raises(WriteError, match="nowhere"):
        write_tiff(_raster(False), tmp_path / "nowhere" / "x.tif")
    with pytest.raises(InvalidArgument, match="bool"):
        write_tiff(Raster(np.zeros((1, 2, 2), bool), GeoBox.from_bounds((0, 0, 2, 2), 1, None)), tmp_path / "b.tif")


def test_nan_nodata_float(tmp_path: Path) -> None:
    data = np.array([[[1.5, math.nan], [2.5, 3.5]]], "float32")
    r = Raster(data, GeoBox.from_bounds((0, 0, 20, 20), 10, "EPSG:3035"), nodata=math.nan)
    write_tiff(r, tmp_path / "nan.tif")
    assert_raster_equal(read(tmp_path / "nan.tif"), r)


def test_int64_nodata_beyond_float64_is_refused(tmp_path: Path) -> None:
    gb = GeoBox.from_bounds((0, 0, 20, 20), 10, "EPSG:32631")
    r = Raster(np.zeros((1, 2, 2), "int64"), gb, nodata=int(np.iinfo("int64").max))
    with pytest.raises(InvalidArgument, match="nodata"):
        write_tiff(r, tmp_path / "x.tif")
    ok = Raster(np.zeros((1, 2, 2), "int64"), gb, nodata=-(2**53))
    write_tiff(ok, tmp_path / "ok.tif")
    assert_raster_equal(read(tmp_path / "ok.tif"), ok)


@pytest.mark.parametrize("per_task", [1, 3])
def test_lazy_write_computes_and_saves_each_chunk_in_one_task(tmp_path: Path, per_task: int) -> None:
    # No pixels cross processes: a chunk's read, kernel and save run in one task (pyr._fuse), and
    # with pyr.chunks-per-task (what "auto" sets on a cluster) one task saves several chunks in turn.
    from pyr import rescale

    src = tmp_path / "src.tif"
    write_tiff(_raster(False), src, cog=False)
    lazy = rescale(read(src, chunks=128), scale=1e-4)  # 4 x 4 chunks
    with dask.config.set({"pyr.chunks-per-task": per_task}):
        job = write_tiff(lazy, tmp_path / "out.tif", compute=False)
    graph = dict(job.__dask_graph__())
    assert len(graph) == math.ceil(16 / per_task) + 1  # the chunk tasks and the final one, nothing else
    job.compute(scheduler="processes", num_workers=2)
    assert_raster_equal(read(tmp_path / "out.tif"), rescale(read(src), scale=1e-4))


@pytest.mark.parametrize("lazy", [False, True])
def test_two_writes_of_one_raster_at_once_never_publish_a_mixed_file(tmp_path: Path, lazy: bool) -> None:
    # The two share a staging folder (named by the graph's token). Each must
    # assemble its file in a folder of its own: when both wrote the same
    # plain.tif at once, the file published was corrupt (4 of 5 runs, no error
    # from the write that published it). Now the file is the raster's, and a
    # write whose staged chunks the other removed fails with WriteError.
    import threading

    gb = GeoBox.from_bounds((0, 0, 10240, 10240), 10, "EPSG:32631")
    values = (np.arange(gb.height * gb.width, dtype="float32").reshape(1, *gb.shape) % 977) / 977
    r = Raster(da.from_array(values, chunks=(1, 256, 256)) if lazy else values, gb, nodata=float("nan"))
    out = tmp_path / "out.tif"
    for _ in range(3):
        errors: list[BaseException] = []

        def write(errors: list[BaseException] = errors) -> None:
            try:
                with dask.config.set(scheduler="threads"):
                    write_tiff(r, out)
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=write) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert all(isinstance(e, WriteError) for e in errors), errors
        assert len(errors) < 2
        with rasterio.open(out) as src:
            np.testing.assert_array_equal(src.read(), values)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


# --- paths that name folders; staging that killed writes leave behind ------------------------


@pytest.mark.parametrize("path", ["", ".", "..", "file://", "sub/", "sub/..", "HERE", "PARENT", "HOME", "/", 123])
def test_paths_naming_folders_are_refused_before_anything_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: object
) -> None:
    # write_tiff("") used to write into the current folder (and fail late with a WriteError)
    here = tmp_path / "here"
    (here / "sub").mkdir(parents=True)
    (here / "keep.txt").write_text("mine")
    monkeypatch.chdir(here)
    path = {"HERE": str(here), "PARENT": str(tmp_path), "HOME": str(Path.home())}.get(path, path)  # type: ignore[call-overload]
    with pytest.raises(InvalidArgument, match="path="):
        write_tiff(_raster(False), path)
    assert sorted(p.name for p in here.iterdir()) == ["keep.txt", "sub"]
    assert list((here / "sub").iterdir()) == []


def _dead_staging(folder: Path, name: str = "out.tif", pid: int = 4194305) -> Path:
    """The staging a killed write of other data to ``folder / name`` leaves (its owner, on this host, is gone).

    The default pid is above Linux's largest (2**22): no process has it.
    """
    host = owner_tag().split("-")[0]
    staging = folder / f".{name}.0123456789abcdef.{host}-{pid}.pyr-tmp"
    (staging / "run-0123456789ab").mkdir(parents=True)
    (staging / "run-0123456789ab" / "plain.tif").write_bytes(b"half a file")
    (staging / "chunk-0-0-0.npy").write_bytes(b"a chunk")
    return staging


@pytest.mark.parametrize("lazy", [False, True])
def test_the_next_write_removes_dead_staging(tmp_path: Path, lazy: bool) -> None:
    # a killed write's staging folder used to stay for good: no later write removed it
    _dead_staging(tmp_path)
    other = _dead_staging(tmp_path, "other.tif")  # another output's staging is not this write's business
    write_tiff(_raster(lazy), tmp_path / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.tif", other.name])
    assert_raster_equal(read(tmp_path / "out.tif"), _raster(False))


@pytest.mark.parametrize("lazy", [False, True])
def test_a_live_writes_staging_is_kept(tmp_path: Path, lazy: bool) -> None:
    import subprocess
    import sys

    # another process of this host, alive until its standard input closes: a write still running
    writer = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        staging = _dead_staging(tmp_path, pid=writer.pid)
        write_tiff(_raster(lazy), tmp_path / "out.tif")
        assert (staging / "run-0123456789ab" / "plain.tif").read_bytes() == b"half a file"
    finally:
        writer.communicate(b"")  # its writer is gone now
    write_tiff(_raster(lazy), tmp_path / "out.tif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


@pytest.mark.slow
def test_a_killed_write_leaves_the_old_file_and_the_next_write_cleans_up(tmp_path: Path) -> None:
    import subprocess
    import sys

    from pyr._faults import EXIT_CODE

    path = tmp_path / "out.tif"
    write_tiff(_raster(False), path)
    before = path.read_bytes()
    code = (
        "import numpy as np, pyr\n"
        "gb = pyr.GeoBox.from_bounds((0, 0, 640, 640), 10, 'EPSG:32631')\n"
        f"pyr.write_tiff(pyr.Raster(np.ones((1, 64, 64), 'uint8'), gb), {str(path)!r})\n"
    )
    env = {**os.environ, "PYR_FAULT_AT": "tiff.write:publish"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=Path(__file__).parents[1], capture_output=True)
    assert proc.returncode == EXIT_CODE, proc.stderr  # killed just before the rename into place
    assert path.read_bytes() == before
    assert len(list(tmp_path.iterdir())) == 2  # the file and the dead write's staging folder
    write_tiff(_raster(True, "float32"), path)  # other data: another staging folder
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]
