"""Bad input: each raises the SPEC's error type, names the culprit, and leaves nothing that looks complete."""

from __future__ import annotations

import math
import pickle
import warnings

import dask.array as da
import numpy as np
import pytest
import rasterio
from _tiffs import write_tif
from affine import Affine

import pyr
from pyr import GeoBox, GridMismatch, IncompleteStore, InvalidArgument, PyrError, Raster, ReadError, StoreExists
from pyr.io.gdal import handles as _handles

GB = GeoBox((8, 8), Affine(10, 0, 0, 0, -10, 80), "EPSG:32631")


@pytest.fixture
def good_tif(tmp_path):
    return write_tif(tmp_path / "good.tif", np.ones((1, 8, 8), "uint16"), geobox=GB, nodata=0, tiled=False)


@pytest.fixture
def truncated_cog(tmp_path):
    rng = np.random.default_rng(3)
    cog = write_tif(
        tmp_path / "full.tif",
        rng.integers(0, 9999, (1, 256, 256)).astype("uint16"),
        driver="COG",
        tiled=None,
        blocksize=64,
    )
    cut = tmp_path / "truncated.tif"
    cut.write_bytes(cog.read_bytes()[: int(cog.stat().st_size * 0.6)])
    return cut


def test_error_hierarchy():
    assert issubclass(ReadError, OSError)
    assert issubclass(ReadError, PyrError)
    assert issubclass(InvalidArgument, ValueError)
    assert issubclass(InvalidArgument, PyrError)
    assert issubclass(StoreExists, FileExistsError)
    assert issubclass(GridMismatch, ValueError)
    assert issubclass(IncompleteStore, OSError)


@pytest.mark.parametrize("chunks", [None, "auto", 16])
def test_missing_file(tmp_path, chunks):
    path = tmp_path / "nowhere" / "missing.tif"
    with pytest.raises(ReadError, match=r"missing\.tif") as info:
        pyr.read(path, chunks=chunks)
    assert "No such file" in str(info.value)


@pytest.mark.parametrize("chunks", [None, "auto"])
def test_text_file_named_tif(tmp_path, chunks):
    path = tmp_path / "notes.tif"
    path.write_text("this is not a raster\n")
    with pytest.raises(ReadError, match=r"notes\.tif") as info:
        pyr.read(path, chunks=chunks)
    assert "not recognized" in str(info.value)


def test_directory_is_not_a_raster(tmp_path):
    with pytest.raises(ReadError, match=str(tmp_path.name)):
        pyr.read(tmp_path)


def test_truncated_cog_eager_fails_at_read(truncated_cog):
    with pytest.raises(ReadError, match=r"truncated\.tif") as info:
        pyr.read(truncated_cog)
    assert "TIFFReadEncodedTile" in str(info.value) or "IReadBlock" in str(info.value)  # GDAL's reason


@pytest.mark.parametrize("scheduler", ["sync", "threads"])
def test_truncated_cog_lazy_fails_at_compute(truncated_cog, scheduler):
    lazy = pyr.read(truncated_cog, chunks=64)  # the header is intact: nothing fails yet
    assert lazy.is_lazy
    assert lazy.data.blocks[0, 0, 0].compute(scheduler=scheduler).shape == (1, 64, 64)  # first tiles are there
    with pytest.raises(ReadError, match=r"truncated\.tif") as info:
        lazy.data.compute(scheduler=scheduler)
    assert "rows" in str(info.value)  # says which window failed


def test_failed_read_drops_the_cached_handle(truncated_cog):
    _handles.close_all()
    lazy = pyr.read(truncated_cog, chunks=64)
    with pytest.raises(ReadError):
        lazy.data.compute(scheduler="sync")
    spec = pyr.io.tiff.source_spec(truncated_cog)
    assert spec.key() not in _handles._pool.idle
    _handles.close_all()


def test_gcp_only_file_is_refused(tmp_path):
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    gcps = [GroundControlPoint(row=r, col=c, x=c * 10.0, y=-r * 10.0) for r, c in ((0, 0), (0, 8), (8, 0))]
    path = tmp_path / "gcps.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", height=8, width=8, count=1, dtype="uint8") as dst:
            dst.write(np.zeros((1, 8, 8), "uint8"))
            dst.gcps = (gcps, CRS.from_epsg(32631))
    with pytest.raises(ReadError, match=r"gcps\.tif.*ground control points"):
        pyr.read(path)


@pytest.mark.parametrize("chunks", [0, -5, "big", (1, 2, 3), (0, 4), 1.5, True, [4, "4"], (4, None)])
def test_invalid_chunks(good_tif, chunks):
    with pytest.raises(InvalidArgument, match="chunks"):
        pyr.read(good_tif, chunks=chunks)


@pytest.mark.parametrize("chunks", [0, "big", (0, 4), 1.5, True, (4, None), (1, 1, 1, 1, 1)])
def test_invalid_chunks_read_zarr(tmp_path, chunks):
    store = tmp_path / "s.zarr"
    pyr.write_zarr(Raster(np.zeros((1, 8, 8), "uint8"), GB), store)
    with pytest.raises(InvalidArgument, match="chunks"):
        pyr.read_zarr(store, chunks=chunks)
    # Checked before anything is opened.
    with pytest.raises(InvalidArgument, match="chunks"):
        pyr.read_zarr(tmp_path / "missing.zarr", chunks=chunks)


@pytest.mark.parametrize(
    ("dtype", "nodata"), [("uint8", -1), ("uint8", 256), ("int16", math.nan), ("uint16", 0.5), ("float32", 1e300)]
)
def test_nodata_not_representable(good_tif, dtype, nodata):
    with pytest.raises(InvalidArgument, match="nodata"):
        Raster(np.zeros((1, 8, 8), dtype), GB, nodata=nodata)
    if dtype == "uint16":
        with pytest.raises(InvalidArgument, match="nodata"):
            pyr.read(good_tif, nodata=nodata)


def test_store_exists(tmp_path):
    store = tmp_path / "out.zarr"
    r = Raster(np.ones((1, 8, 8), "uint8"), GB)
    pyr.write_zarr(r, store)
    with pytest.raises(StoreExists, match=r"out\.zarr") as info:
        pyr.write_zarr(r, store)
    assert "mode='w'" in str(info.value)  # says how to replace it


def test_rotated_grid_is_refused_by_write_zarr(tmp_path):
    rotated = GeoBox((8, 8), Affine(10, 1, 0, 1, -10, 80), "EPSG:32631")
    with pytest.raises(InvalidArgument, match="rotated"):
        pyr.write_zarr(Raster(np.ones((1, 8, 8), "uint8"), rotated), tmp_path / "rot.zarr")
    assert not (tmp_path / "rot.zarr").exists()


def test_incomplete_store_names_the_store(tmp_path):
    import zarr

    store = tmp_path / "half.zarr"
    pyr.write_zarr(Raster(np.ones((1, 8, 8), "uint8"), GB), store)
    group = zarr.open_group(store, mode="r+")
    group.attrs["pyr"] = {**group.attrs["pyr"], "complete": False}
    zarr.consolidate_metadata(store)
    with pytest.raises(IncompleteStore, match=r"half\.zarr"):
        pyr.read_zarr(store)


def test_operation_arguments():
    r = Raster(np.ones((1, 8, 8), "uint16"), GB, nodata=0)
    with pytest.raises(InvalidArgument, match="dtype"):
        pyr.rescale(r, dtype="int16")
    with pytest.raises(InvalidArgument, match="clip"):
        pyr.rescale(r, clip=(1, 0))
    with pytest.raises(InvalidArgument, match="clip"):
        pyr.rescale(r, clip=5)
    with pytest.raises(InvalidArgument, match="Raster or Cube"):
        pyr.rescale(r.data)
    with pytest.raises(InvalidArgument, match="depth"):
        pyr.map_blocks(np.negative, r, depth=-1)
    other = Raster(np.ones((1, 8, 8), "uint16"), GeoBox((8, 8), Affine(10, 0, 5, 0, -10, 80), "EPSG:32631"))
    with pytest.raises(GridMismatch, match="input 1"):
        pyr.map_blocks(np.add, r, other)
    with pytest.raises(InvalidArgument, match="bands"):
        pyr.map_blocks(lambda b: np.concatenate([b, b]), r)
    lazy = Raster(da.ones((1, 8, 8), chunks=4, dtype="uint16"), GB)
    with pytest.raises(InvalidArgument, match="bands"):
        pyr.map_blocks(lambda b: np.concatenate([b, b]), lazy).data.compute()


def test_errors_from_workers_keep_their_type_and_message():
    pickled = pickle.loads(pickle.dumps(ReadError("Cannot read 'x.tif'")))
    assert isinstance(pickled, ReadError)
    assert "x.tif" in str(pickled)


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"scale": "abc"}, "scale"),
        ({"scale": True}, "scale"),
        ({"scale": math.nan}, "scale"),
        ({"offset": "x"}, "offset"),
        ({"offset": math.inf}, "offset"),
        ({"dtype": "nonsense"}, "dtype"),
        ({"dtype": "int16"}, "dtype"),
        ({"dtype": None}, "dtype"),
        ({"clip": (1,)}, "clip"),
        ({"clip": (0, 1, 2)}, "clip"),
        ({"clip": ("a", 1)}, "clip"),
        ({"clip": (0, math.nan)}, "clip"),
        ({"clip": "01"}, "clip"),
        ({"clip": (1, 0)}, "clip"),
    ],
)
def test_rescale_options_are_checked_up_front(options, argument):
    eager = Raster(np.ones((1, 8, 8), "uint16"), GB, nodata=0)
    lazy = Raster(da.ones((1, 8, 8), chunks=4, dtype="uint16"), GB, nodata=0)
    for r in (eager, lazy):
        with pytest.raises(InvalidArgument, match=argument):
            pyr.rescale(r, **options)
        with pytest.raises(InvalidArgument, match=argument):
            pyr.rescale(**options)(r)


def test_rescale_accepts_numbers_of_any_kind_and_open_clip_ranges():
    r = Raster(np.array([[[0, 5000, 20000]]], "uint16"), GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631"))
    got = pyr.rescale(r, scale=np.float32(1e-4), offset=np.int64(0), clip=np.array([0.0, np.inf]), dtype=np.float64)
    np.testing.assert_allclose(got.data, [[[0.0, 0.5, 2.0]]])
    assert got.dtype == np.float64
