"""Real third-party rasters (../shared/data/real): read lazily == eagerly == plain rasterio, Zarr round trips.

Expected values come from plain rasterio reads of the same files, never from pyr.
The odd files say what pyr does with them: south-up grids work, rotated grids read
but cannot be written as CF Zarr (InvalidArgument), GCP-only files are refused
(ReadError), and float NaN pixels without a nodata tag stay NaN with ``nodata=None``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

import pyr
from pyr import GeoBox, InvalidArgument, ReadError
from pyr.testing import assert_raster_equal

S2 = [f"s2l2a_cog_29RKH_20200219/{b}.tif" for b in ("B01", "B02", "B03", "B04", "B08", "B11", "SCL")]
LANDSAT_C2 = [
    f"landsat8_c2l2_001062/LC08_L2SP_001062_20201031_20201106_02_T2_{b}.TIF"
    for b in ("SR_B4", "SR_B5", "ST_B10", "QA_PIXEL")
]
REGULAR = [*S2, "cog/riotiler_cog.tif", *LANDSAT_C2, "odd/RGB.byte.tif", "odd/L7_ETMs.tif", "odd/cog_scale.tif"]


def plain(path, **kwargs):
    """What plain rasterio says: values, geobox parts, nodata, block shape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, **kwargs) as src:
            return {
                "values": src.read(),
                "transform": src.transform,
                "crs": src.crs,
                "shape": src.shape,
                "nodata": src.nodata,
                "block": src.block_shapes[0],
            }


@pytest.mark.parametrize("name", REGULAR, ids=lambda n: n.split("/")[-1])
def test_lazy_equals_eager_equals_rasterio_and_zarr_roundtrip(real_data, tmp_path, name):
    path = real_data / name
    ref = plain(path)
    eager = pyr.read(path)
    lazy = pyr.read(path, chunks="auto")
    assert eager.geobox == GeoBox(ref["shape"], ref["transform"], ref["crs"])
    assert eager.nodata == ref["nodata"]
    np.testing.assert_array_equal(eager.data, ref["values"])
    assert_raster_equal(lazy, eager)
    by, bx = ref["block"]
    assert all(c % by == 0 for c in lazy.chunks[1][:-1])
    assert all(c % bx == 0 for c in lazy.chunks[2][:-1])
    zarr_format = 3 if "B03" in name or "RGB" in name else 2
    store = tmp_path / "r.zarr"
    pyr.write_zarr(lazy, store, zarr_format=zarr_format)
    assert_raster_equal(pyr.read_zarr(store), eager)


def test_sentinel2_bands_share_a_tile_but_not_a_resolution(real_data):
    grids = {name: pyr.read(real_data / name, chunks="auto").geobox for name in S2}
    assert {g.crs for g in grids.values()} == {CRS.from_epsg(32629)}
    assert {g.bounds for g in grids.values()} == {(199980.0, 2690220.0, 309780.0, 2800020.0)}
    assert sorted({g.cell_size for g in grids.values()}) == [100.0, 200.0, 600.0]


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_cog_overviews(real_data, level):
    path = real_data / "cog" / "riotiler_cog.tif"
    ref = plain(path, overview_level=level)
    eager = pyr.read(path, overview=level)
    lazy = pyr.read(path, overview=level, chunks="auto")
    assert eager.geobox == GeoBox(ref["shape"], ref["transform"], ref["crs"])
    full = pyr.read(path, chunks="auto").geobox
    assert eager.geobox.resolution[0] == pytest.approx(full.resolution[0] * 2 ** (level + 1), rel=1e-2)
    assert eager.geobox.bounds == pytest.approx(full.bounds)
    np.testing.assert_array_equal(eager.data, ref["values"])
    assert_raster_equal(lazy, eager)


def test_cog_ragged_edge_chunks(real_data):
    r = pyr.read(real_data / "cog" / "riotiler_cog.tif", chunks=(512, 768))
    assert r.chunks[1] == (512,) * 5 + (107,)
    assert r.chunks[2] == (768,) * 3 + (354,)
    np.testing.assert_array_equal(
        r.data[:, -107:, -354:].compute(), plain(real_data / "cog" / "riotiler_cog.tif")["values"][:, -107:, -354:]
    )


def test_landsat_c2_negative_northing_non_square(real_data, tmp_path):
    path = real_data / LANDSAT_C2[0]
    r = pyr.read(path, chunks="auto")
    xres, yres = r.geobox.resolution
    assert xres == pytest.approx(600.0791556728232)
    assert yres == pytest.approx(-600.8549222797927)
    with pytest.raises(InvalidArgument, match="square"):
        _ = r.geobox.cell_size
    _, bottom, _, top = r.geobox.bounds
    assert top == -204285.0
    assert bottom < top < 0
    assert r.nodata == 0
    values = r.data.compute()
    assert (values == 0).any()  # real fill pixels
    assert (values != 0).any()
    rescaled = pyr.rescale(r, scale=2.75e-5, offset=-0.2)
    out = rescaled.data.compute()
    assert np.isnan(out[values == 0]).all()
    np.testing.assert_allclose(
        out[values != 0], values[values != 0].astype("float32") * np.float32(2.75e-5) - np.float32(0.2), rtol=1e-6
    )
    for fmt in (2, 3):
        store = tmp_path / f"l8-{fmt}.zarr"
        pyr.write_zarr(rescaled, store, zarr_format=fmt)
        assert_raster_equal(pyr.read_zarr(store), rescaled)


def test_multiband_files(real_data):
    rgb = pyr.read(real_data / "odd" / "RGB.byte.tif", bands=[2, 0], chunks="auto")
    np.testing.assert_array_equal(rgb.data.compute(), plain(real_data / "odd" / "RGB.byte.tif")["values"][[2, 0]])
    etm = pyr.read(real_data / "odd" / "L7_ETMs.tif", chunks="auto")
    assert etm.count == 6
    assert etm.chunks[0] == (6,)
    ov = pyr.read(real_data / "odd" / "L7_ETMs.tif", overview=1)
    np.testing.assert_array_equal(ov.data, plain(real_data / "odd" / "L7_ETMs.tif", overview_level=1)["values"])


def test_south_up_file(real_data, tmp_path):
    path = real_data / "odd" / "inverted_lat.tif"
    r = pyr.read(path, chunks=(100, 300))
    assert r.geobox.resolution == (0.5, 0.5)  # positive y: rows go north
    assert r.geobox.bounds == (-180.0, -90.0, 180.0, 90.0)
    y, _ = r.geobox.coords()
    assert y[0] == -89.75
    assert y[-1] == 89.75
    assert r.nodata == -9999.0
    eager = pyr.read(path)
    assert_raster_equal(r, eager)
    assert (eager.data == -9999.0).all()  # the file is all nodata
    assert np.isnan(pyr.rescale(eager).data).all()
    for fmt in (2, 3):
        store = tmp_path / f"south-{fmt}.zarr"
        pyr.write_zarr(r, store, zarr_format=fmt)
        back = pyr.read_zarr(store)
        assert back.geobox == r.geobox
        assert_raster_equal(back, eager)


@pytest.mark.parametrize("name", ["geomatrix.tif", "au-3577-rotated.tif"])
def test_rotated_files_read_but_are_not_written_to_zarr(real_data, tmp_path, name):
    path = real_data / "odd" / name
    ref = plain(path)
    eager = pyr.read(path)
    lazy = pyr.read(path, chunks="auto")
    assert not eager.geobox.is_axis_aligned
    assert eager.geobox.transform == ref["transform"]
    assert_raster_equal(lazy, eager)
    np.testing.assert_array_equal(eager.data, ref["values"])
    with pytest.raises(InvalidArgument, match="rotated or sheared"):
        eager.geobox.coords()
    for obj in (eager, lazy):
        with pytest.raises(InvalidArgument, match="write_zarr needs an axis-aligned grid"):
            pyr.write_zarr(obj, tmp_path / "rot.zarr")
        with pytest.raises(InvalidArgument, match="rotated"):
            pyr.write_zarr(obj, tmp_path / "rot.zarr", compute=False)
    assert not (tmp_path / "rot.zarr").exists()


def test_nan_without_nodata_tag(real_data):
    path = real_data / "odd" / "au-3577-rotated.tif"
    r = pyr.read(path, chunks="auto")
    assert r.nodata is None  # no tag: pyr invents none
    values = r.data.compute()
    assert np.isnan(values).sum() == np.isnan(plain(path)["values"]).sum() > 0
    out = pyr.rescale(r, scale=2.0).data.compute()
    np.testing.assert_array_equal(np.isnan(out), np.isnan(values))  # NaN stays NaN through rescale
    tagged = pyr.read(path, nodata=math.nan)
    assert math.isnan(tagged.nodata)


@pytest.mark.parametrize("chunks", [None, "auto"])
def test_gcp_only_file_is_refused(real_data, chunks):
    with pytest.raises(ReadError, match=r"au-gcp\.tif.*ground control points"):
        pyr.read(real_data / "odd" / "au-gcp.tif", chunks=chunks)
