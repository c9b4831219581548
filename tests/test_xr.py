"""``to_xarray`` / ``from_xarray``: round trips, laziness, rioxarray's reading of what we build,
and ``from_xarray`` of what rioxarray and xarray build from real files and pyr stores.

Expected grids and values come from pyr's own value types (round trips), from
plain rasterio reads through ``pyr.read``, or from rioxarray; never hard-coded.
"""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from pathlib import Path

import dask.array as dsa
import numpy as np
import pytest
import rasterio
import toolz
from _tiffs import write_tif
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster, from_xarray, to_xarray
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import cubes, rasters

xr = pytest.importorskip("xarray")
rioxarray = pytest.importorskip("rioxarray")

GB = GeoBox((4, 6), Affine(10, 0, 500000, 0, -10, 4000000), "EPSG:32631")
TIMES = np.array(["2020-01-01", "2020-02-01", "2020-03-01"], dtype="datetime64[ns]")


def same_nodata(a, b):
    if a is None or b is None:
        return a is None and b is None
    if np.isnan(float(a)) or np.isnan(float(b)):  # numpy scalars too (rioxarray gives np.float32)
        return bool(np.isnan(float(a)) and np.isnan(float(b)))
    return bool(a == b)


def gdal_transform(attrs):
    c, a, b, f, d, e = (float(v) for v in attrs["GeoTransform"].split())
    return Affine(a, b, c, d, e, f)


# --- round trips and laziness (property tests) -----------------------------------------


@given(st.one_of(rasters(), cubes()))
def test_round_trip_is_identity(obj):
    back = from_xarray(to_xarray(obj))
    assert back.is_lazy == obj.is_lazy
    if obj.is_lazy:
        assert back.chunks == obj.chunks
    assert_raster_equal(back, obj)


@given(st.one_of(rasters(lazy=True), cubes(lazy=True)))
def test_lazy_stays_lazy_both_ways(obj):
    with raise_if_dask_computes():
        da = to_xarray(obj)
        assert da.chunks is not None
        da.rio.crs, da.rio.transform(), da.rio.nodata
        back = from_xarray(da)
        sliced = from_xarray(da.isel(x=slice(0, 1)))
    assert back.is_lazy
    assert sliced.is_lazy


@given(st.one_of(rasters(), cubes()))
def test_what_rioxarray_and_xarray_see(obj):
    da = to_xarray(obj)
    gb = obj.geobox
    assert da.name == "band_data"
    assert da.dims == (("time",) if isinstance(obj, Cube) else ()) + ("band", "y", "x")
    assert da.dtype == obj.dtype
    y, x = gb.coords()
    np.testing.assert_array_equal(da.x.values, x)
    np.testing.assert_array_equal(da.y.values, y)
    assert tuple(da.band.values.tolist()) == obj.bands
    if isinstance(obj, Cube):
        assert da.time.dtype == np.dtype("datetime64[us]")
        np.testing.assert_array_equal(da.time.values, obj.times)
    sref = da.spatial_ref.attrs
    assert gdal_transform(sref) == gb.transform  # exact
    # rioxarray: CRS from the grid mapping; transform = resolution from GeoTransform, origin from coords.
    if gb.crs is None:
        assert da.rio.crs is None
        assert "crs_wkt" not in sref
    else:
        assert da.rio.crs == gb.crs
        assert sref["crs_wkt"] == sref["spatial_ref"] == gb.crs.to_wkt()
        if gb.epsg in (4326, 32631, 32629):  # pyproj has no CF form of some CRSs (Pseudo-Mercator)
            assert "grid_mapping_name" in sref
    assert da.rio.transform().almost_equals(gb.transform, precision=1e-6 * abs(gb.transform.a))
    assert (da.rio.width, da.rio.height) == (gb.width, gb.height)
    assert same_nodata(da.rio.nodata, obj.nodata)
    assert da.rio.encoded_nodata is None  # as open_rasterio(mask_and_scale=False): nodata in attrs
    assert ("_FillValue" in da.attrs) == (obj.nodata is not None)


@given(rasters(max_side=12), st.data())
def test_isel_then_from_xarray_equals_slicing_the_geobox(r, data):
    h, w = r.geobox.shape
    r0 = data.draw(st.integers(0, h - 1))
    r1 = data.draw(st.integers(r0 + 1, h))
    c0 = data.draw(st.integers(0, w - 1))
    c1 = data.draw(st.integers(c0 + 1, w))
    back = from_xarray(to_xarray(r).isel(y=slice(r0, r1), x=slice(c0, c1)))
    expected = Raster(r.data[:, r0:r1, c0:c1], r.geobox[r0:r1, c0:c1], nodata=r.nodata, bands=r.bands)
    assert_raster_equal(back, expected)


def test_flipped_array_gets_its_grid_from_the_coordinates():
    r = Raster(np.arange(24, dtype="int16").reshape(1, 4, 6), GB)
    back = from_xarray(to_xarray(r).isel(y=slice(None, None, -1)))
    t = GB.transform
    assert back.geobox.transform == Affine(t.a, 0, t.c, 0, -t.e, t.f + 4 * t.e)
    np.testing.assert_array_equal(back.data, r.data[:, ::-1])


# --- details -----------------------------------------------------------------------------


def test_cube_without_times_has_no_time_coordinate_and_comes_back_without():
    c = Cube(np.zeros((2, 1, 4, 6), "uint8"), GB)
    da = to_xarray(c)
    assert "time" in da.dims
    assert "time" not in da.coords
    assert from_xarray(da).times is None


def test_eager_data_is_shared_read_only():
    data = np.arange(24, dtype="uint16").reshape(1, 4, 6)
    r = Raster(data, GB)
    da = to_xarray(r)
    assert np.shares_memory(da.values, data)
    with pytest.raises(ValueError, match=r"read-only|view"):
        da[0, 0, 0] = 7
    assert data[0, 0, 0] == 0


def test_xarray_writers_keep_the_crs(tmp_path):
    r = Raster(np.arange(24, dtype="float32").reshape(1, 4, 6), GB, nodata=math.nan)
    da = to_xarray(r)
    da.to_dataset().to_zarr(tmp_path / "a.zarr", zarr_format=2, consolidated=True)
    opened = xr.open_zarr(tmp_path / "a.zarr")["band_data"]
    assert opened.rio.crs == GB.crs
    assert_raster_equal(from_xarray(opened), Raster(dsa.from_array(r.data), GB, nodata=math.nan))
    da.rio.to_raster(tmp_path / "a.tif")
    with rasterio.open(tmp_path / "a.tif") as src:
        assert (src.crs, src.transform) == (GB.crs, GB.transform)
        np.testing.assert_array_equal(src.read(), r.data)


def test_rotated_grid_is_carried_by_the_geotransform():
    gb = GeoBox((3, 4), Affine(1.5, -5, 1841001.75, -5, -1.5, 1144003.25), "EPSG:32611")
    r = Raster(np.arange(12, dtype="uint8").reshape(1, 3, 4), gb)
    da = to_xarray(r)
    assert "x" not in da.coords
    assert da.rio.transform() == gb.transform
    assert_raster_equal(from_xarray(da), r)


def test_two_and_three_dimensional_arrays():
    y, x = GB.coords()
    plain = xr.DataArray(np.ones((4, 6), "float32"), coords={"y": y, "x": x}, dims=("y", "x"))
    r = from_xarray(plain)
    assert isinstance(r, Raster)
    assert r.shape == (1, 4, 6)
    assert r.geobox == GeoBox(GB.shape, GB.transform, None)
    series = xr.DataArray(np.ones((3, 4, 6)), coords={"time": TIMES, "y": y, "x": x}, dims=("time", "y", "x"))
    c = from_xarray(series)
    assert isinstance(c, Cube)
    assert c.shape == (3, 1, 4, 6)
    np.testing.assert_array_equal(c.times, TIMES)
    # (y, x, band) order is transposed; the band dim may have any name
    hwc = xr.DataArray(np.zeros((4, 6, 2)), coords={"y": y, "x": x, "rgb": ["r", "g"]}, dims=("y", "x", "rgb"))
    assert from_xarray(hwc).bands == ("r", "g")
    assert from_xarray(hwc).shape == (2, 4, 6)


def test_geographic_lat_lon_dims_and_cf_parameters_without_wkt():
    gb = GeoBox.from_bounds((10, 40, 12, 41), 0.5, "EPSG:4326")
    lat, lon = gb.coords()
    gm = {k: v for k, v in to_xarray(Raster(np.zeros((1, *gb.shape)), gb)).spatial_ref.attrs.items()}
    cf_only = {k: v for k, v in gm.items() if k not in ("crs_wkt", "spatial_ref", "GeoTransform")}
    da = xr.DataArray(
        np.zeros(gb.shape), coords={"lat": lat, "lon": lon, "spatial_ref": ((), 0, cf_only)}, dims=("lat", "lon")
    )
    r = from_xarray(da)
    assert r.geobox.transform == gb.transform
    import pyproj

    # pyproj reads CF latitude_longitude as OGC:CRS84 (lon/lat): the same datum and axes up to order
    assert pyproj.CRS(r.geobox.crs.to_wkt()).equals(pyproj.CRS("EPSG:4326"), ignore_axis_order=True)


def test_nodata_from_masked_and_unmasked_arrays():
    y, x = GB.coords()
    unmasked = xr.DataArray(np.zeros((1, 4, 6), "int16"), coords={"y": y, "x": x}, dims=("band", "y", "x"))
    unmasked.attrs["_FillValue"] = np.int16(-1)
    assert from_xarray(unmasked).nodata == -1 == unmasked.rio.nodata
    masked = xr.DataArray(np.zeros((1, 4, 6), "float32"), coords={"y": y, "x": x}, dims=("band", "y", "x"))
    masked.encoding["_FillValue"] = -1
    assert math.isnan(from_xarray(masked).nodata)
    assert math.isnan(masked.rio.nodata)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (lambda: xr.Dataset({"a": ("x", [1])}), "DataArray.*band_data"),
        (lambda: np.zeros((2, 2)), "DataArray"),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("a", "b")), "cannot find the y dimension"),
        (lambda: xr.DataArray(np.zeros((2, 2, 2, 2)), dims=("a", "b", "y", "x")), "more than one"),
        (
            lambda: xr.DataArray(
                np.zeros((2, 2, 2)),
                coords={"time": [3.5, 7.0], "y": [1.5, 0.5], "x": [0.5, 1.5]},
                dims=("time", "y", "x"),
            ),
            "'time' holds numbers",
        ),
        (lambda: xr.DataArray(np.zeros((2, 2)), dims=("y", "x")), "no GeoTransform and no x/y"),
    ],
)
def test_from_xarray_errors_name_the_problem(value, message):
    with pytest.raises(InvalidArgument, match=message):
        from_xarray(value())


def test_to_xarray_rejects_other_types():
    with pytest.raises(InvalidArgument, match="Raster or Cube, not ndarray"):
        to_xarray(np.zeros((1, 2, 2)))


def test_curried_pipes_and_pickles():
    r = Raster(np.arange(24, dtype="uint16").reshape(1, 4, 6), GB, nodata=0)
    da = toolz.pipe(r, pyr.rescale(scale=0.5), to_xarray)
    assert da.dtype == np.dtype("float32")
    back = toolz.pipe(r, to_xarray, from_xarray)
    assert_raster_equal(back, r)
    assert pickle.loads(pickle.dumps(to_xarray)) is not None
    assert pickle.loads(pickle.dumps(from_xarray))(to_xarray(r)).nodata == 0


def test_import_pyr_does_not_import_xarray():
    code = "import sys, pyr; bad = {'xarray', 'rioxarray'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- real files: rioxarray.open_rasterio -> from_xarray == pyr.read ----------------------------

REAL_FILES = [
    "odd/RGB.byte.tif",  # 3 bands, nodata 0, strips
    "s2l2a_cog_29RKH_20200219/B04.tif",  # Sentinel-2 COG, 512 tiles
    "landsat8_c2l2_001062/SR_B4.tif",  # non-square pixels, negative northing
    "odd/inverted_lat.tif",  # south-up
    "odd/geomatrix.tif",  # rotated: no 1-D x/y coordinates
]


def _landsat_name(real_data: Path, rel: str) -> Path:
    path = real_data / rel
    if path.exists():
        return path
    matches = sorted(path.parent.glob(f"*{path.stem}.*"))
    if not matches:
        pytest.skip(f"{rel} not in the real data")
    return matches[0]


@pytest.mark.parametrize("rel", REAL_FILES)
@pytest.mark.parametrize("lazy", [False, True])
def test_open_rasterio_then_from_xarray_equals_read(real_data, rel, lazy):
    path = _landsat_name(real_data, rel)
    chunks = {"band": 1, "y": 256, "x": 256} if lazy else None
    da = rioxarray.open_rasterio(path, chunks=chunks)
    got = from_xarray(da)
    expected = pyr.read(path)
    assert got.is_lazy == lazy
    assert_raster_equal(got, expected)
    assert same_nodata(got.nodata, da.rio.nodata)


@pytest.mark.parametrize("descriptions", [("red", "nir"), (None, "nir"), ("same", "same")])
def test_band_descriptions_from_open_rasterio_match_read(tmp_path, descriptions):
    data = np.arange(2 * 50 * 70, dtype="int16").reshape(2, 50, 70)
    path = write_tif(tmp_path / "d.tif", data, nodata=-1, descriptions=descriptions)
    got = from_xarray(rioxarray.open_rasterio(path))
    assert_raster_equal(got, pyr.read(path))
    assert got.bands == {("red", "nir"): ("red", "nir"), (None, "nir"): ("1", "nir")}.get(descriptions, ("1", "2"))


def test_fill_value_the_dtype_cannot_hold_is_no_nodata():
    y, x = GB.coords()
    da = xr.DataArray(np.zeros((1, 4, 6), "uint8"), coords={"y": y, "x": x}, dims=("band", "y", "x"))
    da.attrs["_FillValue"] = -9999
    assert from_xarray(da).nodata is None


@pytest.mark.parametrize("rel", ["odd/RGB.byte.tif", "s2l2a_cog_29RKH_20200219/B04.tif"])
def test_masked_open_rasterio_gives_nan_nodata(real_data, rel):
    path = real_data / rel
    da = rioxarray.open_rasterio(path, mask_and_scale=True)
    got = from_xarray(da)
    raw = pyr.read(path)
    assert math.isnan(got.nodata)
    assert got.geobox == raw.geobox
    np.testing.assert_array_equal(np.isnan(got.data), raw.data == raw.nodata)


@pytest.mark.parametrize("rel", ["odd/RGB.byte.tif", "odd/geomatrix.tif", "landsat8_c2l2_001062/SR_B4.tif"])
def test_to_xarray_of_read_matches_open_rasterio(real_data, rel):
    path = _landsat_name(real_data, rel)
    ours = to_xarray(pyr.read(path, chunks=(128, 128)))
    theirs = rioxarray.open_rasterio(path)
    assert ours.rio.crs == theirs.rio.crs
    assert ours.rio.transform() == theirs.rio.transform()
    assert same_nodata(ours.rio.nodata, theirs.rio.nodata)
    assert ours.shape == theirs.shape
    if "x" in theirs.coords:
        np.testing.assert_allclose(ours.x.values, theirs.x.values, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours.y.values, theirs.y.values, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ours.values, theirs.values)


@pytest.mark.parametrize("obj", ["raster", "cube"])
def test_xarray_open_zarr_of_a_pyr_store(tmp_path, obj):
    data = np.arange(3 * 2 * 24, dtype="uint16").reshape(3, 2, 4, 6)
    value = Raster(data[0], GB, nodata=0, bands=("red", "nir"))
    if obj == "cube":
        value = Cube(data, GB, nodata=0, bands=("red", "nir"), times=TIMES)
    pyr.write_zarr(value, tmp_path / "s.zarr")
    raw = xr.open_zarr(tmp_path / "s.zarr", mask_and_scale=False)["band_data"]
    assert_raster_equal(from_xarray(raw), pyr.read_zarr(tmp_path / "s.zarr"))
    decoded = from_xarray(xr.open_zarr(tmp_path / "s.zarr")["band_data"])  # masked: float, NaN nodata
    assert math.isnan(decoded.nodata)
    assert decoded.geobox == GB
    np.testing.assert_array_equal(
        np.isnan(decoded.data), data[: decoded.shape[0]] == 0 if obj == "cube" else data[0] == 0
    )
