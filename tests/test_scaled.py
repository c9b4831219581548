"""``scaled=`` on ``read`` and ``read_cube``: GDAL band scale/offset recorded on the result, or applied.

Files are written with plain rasterio (``dataset.scales``/``dataset.offsets``);
expected values come from plain rasterio reads and numpy, in float32 as the
contract says (``raw * scale + offset``, nodata as NaN).
"""

from __future__ import annotations

import math
import warnings

import dask
import dask.array
import numpy as np
import pytest
import rasterio
from _tiffs import write_tif

import pyr
from pyr import GeoBox, GridMismatch, InvalidArgument
from pyr.testing import assert_raster_equal, raise_if_dask_computes

GB = GeoBox.from_bounds((300000, 4999360, 300640, 5000000), 10, "EPSG:32631")  # 64 x 64
SCALES = (2.75e-5, 1e-4)
OFFSETS = (-0.2, -0.1)


def raw_values(seed: int = 0) -> np.ndarray:
    data = np.random.default_rng(seed).integers(1, 50000, (2, *GB.shape), dtype="uint16")
    data[:, :5, :7] = 0  # nodata
    return data


def with_factors(path, scales=SCALES, offsets=OFFSETS, data=None, **kwargs):
    """A GeoTIFF of ``data`` whose bands carry GDAL scale/offset, written and tagged with rasterio."""
    write_tif(path, raw_values() if data is None else data, geobox=GB, nodata=0, **kwargs)
    with rasterio.open(path, "r+") as ds:
        ds.scales = scales
        ds.offsets = offsets
    return path


def physical(path) -> np.ndarray:
    """float32 ``raw * scale + offset`` of every band, NaN at nodata, from plain rasterio."""
    with rasterio.open(path) as ds:
        raw, scales, offsets, nodata = ds.read(), ds.scales, ds.offsets, ds.nodata
    out = raw.astype("float32")
    out *= np.float32(scales)[:, None, None]
    out += np.float32(offsets)[:, None, None]
    out[raw == nodata] = np.nan
    return out


def test_read_records_the_files_factors_and_scaled_applies_them(tmp_path):
    path = with_factors(tmp_path / "f.tif")
    with rasterio.open(path) as ds:
        assert ds.scales == SCALES  # rasterio wrote them
    raw = pyr.read(path)
    assert (raw.scales, raw.offsets) == (SCALES, OFFSETS)
    assert raw.dtype == np.dtype("uint16")
    scaled = pyr.read(path, scaled=True)
    assert scaled.dtype == np.dtype("float32")
    assert math.isnan(scaled.nodata)
    assert scaled.scales is None
    np.testing.assert_array_equal(scaled.data, physical(path))
    assert_raster_equal(pyr.rescale(raw), scaled)
    with raise_if_dask_computes():
        lazy = pyr.read(path, scaled=True, chunks=16)
    assert lazy.is_lazy
    assert_raster_equal(lazy, scaled)
    # A band subset takes its own band's factors.
    second = pyr.read(path, bands=[1], scaled=True)
    np.testing.assert_array_equal(second.data[0], physical(path)[1])
    assert pyr.read(path, bands=[1]).scales == (SCALES[1],)


def test_a_lazy_scaled_read_is_one_task_per_chunk(tmp_path):
    path = with_factors(tmp_path / "f.tif")
    lazy = pyr.read(path, scaled=True, chunks=32)
    (optimized,) = dask.optimize(lazy.data)
    assert len(dict(optimized.__dask_graph__())) == 4  # 2 x 2 chunks: each reads and scales in one task


def test_overview_and_geobox_reads_keep_the_factors(tmp_path):
    path = with_factors(tmp_path / "f.tif", overviews=[2])
    with rasterio.open(path, overview_level=0) as ds:
        assert ds.scales == (1.0, 1.0)  # GDAL's overview dataset drops them; pyr takes the full dataset's
    assert pyr.read(path, overview=0).scales == SCALES
    target = GB.to_crs("EPSG:3857")
    raw = pyr.read(path, geobox=target, chunks=20)
    assert (raw.scales, raw.offsets) == (SCALES, OFFSETS)
    assert_raster_equal(pyr.read(path, geobox=target, chunks=20, scaled=True), pyr.rescale(raw))
    eager = pyr.read(path, geobox=target, scaled=True)
    assert eager.dtype == np.dtype("float32")
    assert_raster_equal(eager, pyr.rescale(pyr.reproject(pyr.read(path), target)))


def test_read_cube_records_the_first_sources_factors(tmp_path):
    paths = [with_factors(tmp_path / f"d{i}.tif", data=raw_values(i)) for i in range(3)]
    cube = pyr.read_cube(paths, chunks=32)
    assert (cube.scales, cube.offsets) == (SCALES, OFFSETS)
    scaled = pyr.read_cube(paths, chunks=32, scaled=True)
    assert scaled.dtype == np.dtype("float32")
    got = pyr.compute(scaled).data
    for t, p in enumerate(paths):
        np.testing.assert_array_equal(got[t], physical(p))
    warped = pyr.read_cube(paths, chunks=32, geobox=GB, scaled=True, bands=[1])
    np.testing.assert_array_equal(pyr.compute(warped).data[:, 0], got[:, 1])
    assert pyr.read_cube(paths, geobox=GB, bands=[1]).scales == (SCALES[1],)


@pytest.mark.parametrize("geobox", [None, GB])
def test_a_source_with_other_factors_is_a_grid_mismatch(tmp_path, geobox):
    good = with_factors(tmp_path / "good.tif")
    other = with_factors(tmp_path / "other.tif", scales=(1e-4, 1e-4))
    cube = pyr.read_cube([good, other], chunks=32, geobox=geobox)
    with pytest.raises(GridMismatch, match=r"other\.tif.*scales/offsets"):
        pyr.compute(cube)
    assert pyr.check_sources([good, other]) != {}


def test_cog_scale_fixture_per_band_factors(real_data):
    path = real_data / "odd" / "cog_scale.tif"
    with rasterio.open(path) as ds:
        scales, offsets = ds.scales, ds.offsets
    assert scales == (0.0001, 0.001)
    assert offsets == (1000.0, 2000.0)
    r = pyr.read(path)
    assert (r.scales, r.offsets) == (scales, offsets)
    np.testing.assert_array_equal(pyr.read(path, scaled=True, chunks=64).data.compute(), physical(path))


def test_landsat_c2_l2_files_carry_no_gdal_factors(real_data):
    # USGS gives Landsat C2 L2 SR's scale (2.75e-5) and offset (-0.2) in its MTL file and STAC items,
    # not in the GeoTIFF: read records none, scaled=True is float32 with the fill as NaN.
    path = real_data / "landsat8_c2l2_001062" / "LC08_L2SP_001062_20201031_20201106_02_T2_SR_B4.TIF"
    with rasterio.open(path) as ds:
        assert (ds.scales, ds.offsets) == ((1.0,), (0.0,))
        raw = ds.read(1)
    r = pyr.read(path)
    assert r.scales is None
    assert r.offsets is None
    scaled = pyr.read(path, scaled=True)
    np.testing.assert_array_equal(scaled.data[0], np.where(raw == 0, np.nan, raw.astype("float32")))
    reflectance = pyr.rescale(r, scale=2.75e-5, offset=-0.2)
    expected = raw.astype("float32") * np.float32(2.75e-5) + np.float32(-0.2)
    np.testing.assert_array_equal(reflectance.data[0], np.where(raw == 0, np.nan, expected))


@pytest.mark.parametrize("reader", [pyr.read, lambda p, **kw: pyr.read_cube([p], **kw)])
def test_scaled_must_be_a_bool(tmp_path, reader):
    path = with_factors(tmp_path / "f.tif")
    with pytest.raises(InvalidArgument, match="scaled='yes'"):
        reader(path, scaled="yes")


# --- factors through Zarr and xarray -----------------------------------------------------


def raster_with(scales, offsets) -> pyr.Raster:
    return pyr.Raster(raw_values(), GB, nodata=0, scales=scales, offsets=offsets)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_shared_factors_are_cf_scale_factor_and_add_offset(tmp_path, zarr_format):
    xr = pytest.importorskip("xarray")
    r = raster_with((2.75e-5, 2.75e-5), (-0.2, -0.2))
    store = tmp_path / "r.zarr"
    pyr.write_zarr(r, store, zarr_format=zarr_format)
    back = pyr.read_zarr(store, chunks=None)
    assert_raster_equal(back, r)
    decoded = xr.open_zarr(store)["band_data"]
    assert decoded.encoding["scale_factor"] == 2.75e-5
    assert decoded.encoding["add_offset"] == -0.2
    expected = np.where(r.data == 0, np.nan, r.data * 2.75e-5 - 0.2)
    np.testing.assert_allclose(decoded.values, expected, rtol=1e-6)
    if zarr_format == 2:  # GDAL's Zarr driver reads v2 (docs/xarray.md)
        with rasterio.open(f'ZARR:"{store}":/band_data') as ds:
            assert ds.scales == (2.75e-5, 2.75e-5)
            assert ds.offsets == (-0.2, -0.2)
            np.testing.assert_array_equal(ds.read(), r.data)


def test_per_band_factors_stay_raw_for_xarray_and_come_back_to_pyr(tmp_path):
    xr = pytest.importorskip("xarray")
    r = raster_with(SCALES, OFFSETS)
    store = tmp_path / "r.zarr"
    pyr.write_zarr(r, store)
    assert_raster_equal(pyr.read_zarr(store, chunks=None), r)
    plain = xr.open_zarr(store)["band_data"]
    assert list(plain.attrs["scales"]) == list(SCALES)
    assert list(plain.attrs["offsets"]) == list(OFFSETS)
    assert "scale_factor" not in plain.encoding
    np.testing.assert_array_equal(plain.values, np.where(r.data == 0, np.nan, r.data))  # raw, fill masked


def test_an_append_with_other_factors_is_refused(tmp_path):
    def cube(day, scales):
        return pyr.stack([raster_with(scales, OFFSETS)], times=[day])

    store = tmp_path / "c.zarr"
    pyr.write_zarr(cube("2024-01-01", SCALES), store)
    with pytest.raises(GridMismatch, match="scales/offsets"):
        pyr.write_zarr(cube("2024-01-02", (1e-4, 1e-4)), store, mode="a")
    pyr.write_zarr(cube("2024-01-03", SCALES), store, mode="a")
    back = pyr.read_zarr(store, chunks=None)
    assert back.ntimes == 2
    assert (back.scales, back.offsets) == (SCALES, OFFSETS)


def test_a_cf_store_written_by_xarray_gives_raw_values_and_factors(tmp_path):
    xr = pytest.importorskip("xarray")
    physical_values = np.array([[[np.nan, 0.1, 0.2, 0.3]]])
    gb = GeoBox.from_bounds((0, 0, 40, 10), 10, "EPSG:32631")
    y, x = gb.coords()
    ds = xr.Dataset({"refl": (("band", "y", "x"), physical_values)}, coords={"band": ["red"], "y": y, "x": x})
    ds["refl"].encoding.update(dtype="int16", scale_factor=1e-4, add_offset=0.0, _FillValue=-9999)
    ds.to_zarr(tmp_path / "x.zarr", zarr_format=2)
    r = pyr.read_zarr(tmp_path / "x.zarr", chunks=None)
    assert r.dtype == np.dtype("int16")
    np.testing.assert_array_equal(r.data, [[[-9999, 1000, 2000, 3000]]])
    assert (r.scales, r.offsets, r.nodata) == ((1e-4,), (0.0,), -9999)
    np.testing.assert_allclose(pyr.rescale(r).data, physical_values, rtol=1e-6)


def test_to_and_from_xarray_carry_factors_as_rioxarray_does(tmp_path, real_data):
    pytest.importorskip("xarray")
    rioxarray = pytest.importorskip("rioxarray")
    shared = pyr.to_xarray(raster_with((1e-4, 1e-4), (0.5, 0.5)))
    assert (shared.attrs["scale_factor"], shared.attrs["add_offset"]) == (1e-4, 0.5)
    per_band = pyr.to_xarray(raster_with(SCALES, OFFSETS))
    assert (tuple(per_band.attrs["scales"]), tuple(per_band.attrs["offsets"])) == (SCALES, OFFSETS)
    back = pyr.from_xarray(shared)
    assert (back.scales, back.offsets) == ((1e-4, 1e-4), (0.5, 0.5))
    back = pyr.from_xarray(per_band)
    assert (back.scales, back.offsets) == (SCALES, OFFSETS)
    assert "scale_factor" not in pyr.to_xarray(pyr.Raster(raw_values(), GB)).attrs
    # rioxarray's own reading of a file with per-band factors: raw values keep them, decoded ones do not.
    path = real_data / "odd" / "cog_scale.tif"
    with rasterio.open(path) as ds:
        scales, offsets = ds.scales, ds.offsets

    def open_rasterio(**options):
        # pytest.warns re-raises the warnings it does not match from here: affine's, via rioxarray
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Use `@` matmul", PendingDeprecationWarning)
            with pytest.warns(UserWarning, match="differ across bands"):
                return rioxarray.open_rasterio(path, **options)

    raw = pyr.from_xarray(open_rasterio(mask_and_scale=False))
    assert (raw.scales, raw.offsets) == (scales, offsets)
    decoded = pyr.from_xarray(open_rasterio(mask_and_scale=True))
    assert decoded.scales is None
    np.testing.assert_allclose(decoded.data, physical(path), rtol=1e-6)


@pytest.mark.parametrize("cog", [True, False])
@pytest.mark.parametrize("lazy", [False, True])
def test_write_tiff_keeps_the_factors_as_gdal_band_metadata(tmp_path, cog, lazy):
    r = raster_with(SCALES, OFFSETS)
    if lazy:
        r = pyr.Raster(dask.array.from_array(r.data, chunks=(2, 32, 32)), GB, nodata=0, scales=SCALES, offsets=OFFSETS)
    path = tmp_path / "out.tif"
    pyr.write_tiff(r, path, cog=cog)
    with rasterio.open(path) as ds:
        assert (ds.scales, ds.offsets) == (SCALES, OFFSETS)
    assert_raster_equal(pyr.read(path), pyr.compute(r))


def test_a_scaled_cube_reduces_in_one_task_per_chunk(tmp_path):
    # reduce_time takes each chunk's reads and their scaling into its own task: no block travels between tasks.
    paths = [with_factors(tmp_path / f"d{i}.tif", data=raw_values(i)) for i in range(3)]
    median = pyr.reduce_time(pyr.read_cube(paths, chunks=32, scaled=True), "median")
    graph = dict(median.data.__dask_graph__())
    assert len(graph) == median.data.npartitions == 4
    assert not any(task.dependencies for task in graph.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells that are nodata on every date
        expected = np.nanmedian(np.stack([physical(p) for p in paths]), axis=0)
    np.testing.assert_allclose(pyr.compute(median).data, expected, rtol=1e-6)
