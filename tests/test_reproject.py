"""``reproject``: eager equals ``rasterio.warp.reproject``; lazy equals eager up to GDAL's approximate transformer.

GDAL warps with an approximate transformer: along each output row it
interpolates source coordinates linearly while the error stays under 0.125
source cells, and the interpolation depends on the extent being warped. A
lazy result warps each chunk on its own, so a cell may pick another source
cell than the eager (whole-array) warp did, but only where the exact source
coordinate of the cell's centre lies within 0.125 cells of a source cell
edge. :func:`assert_lazy_matches_eager` checks exactly that, with the exact
coordinates from plain rasterio (``rasterio.warp.transform``), and bounds the
fraction of such cells. Interpolating resamplings are checked on a linear
ramp, where a shift of 0.125 cells changes a value by at most 0.125 times the
slope on each axis.
"""

from __future__ import annotations

import math

import attrs
import dask.array as da
import numpy as np
import pytest
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.warp import reproject as rio_reproject
from rasterio.warp import transform as rio_transform

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr.testing import raise_if_dask_computes

# GDAL's default error threshold of the approximate transformer, in source cells.
APPROX = 0.125
# The largest fraction of cells where lazy and eager nearest may differ (seen: ~3% on 100 m UTM -> 4326).
MAX_FRACTION = 0.08


def exact_source_coords(dst: GeoBox, src: GeoBox) -> tuple[np.ndarray, np.ndarray]:
    """Exact source (col, row) of each output cell centre, via plain rasterio (NaN where PROJ fails)."""
    y, x = dst.coords()
    xx, yy = np.meshgrid(x, y)
    cols = np.full(xx.size, np.nan)
    rows = np.full(xx.size, np.nan)
    for start in range(0, xx.size, 4096):  # rasterio fails a whole call on one bad point: retry one by one
        sl = slice(start, start + 4096)
        try:
            sx, sy = rio_transform(dst.crs, src.crs, xx.ravel()[sl], yy.ravel()[sl])
            pts = [(np.asarray(sx), np.asarray(sy))]
            idx = [np.arange(xx.size)[sl]]
        except Exception:
            pts, idx = [], []
            for k in np.arange(xx.size)[sl]:
                try:
                    sx, sy = rio_transform(dst.crs, src.crs, [xx.ravel()[k]], [yy.ravel()[k]])
                except Exception:
                    continue
                pts.append((np.asarray(sx), np.asarray(sy)))
                idx.append(np.array([k]))
        for (sx, sy), k in zip(pts, idx, strict=True):
            inv = ~src.transform
            cols[k] = inv.a * sx + inv.b * sy + inv.c
            rows[k] = inv.d * sx + inv.e * sy + inv.f
    return cols.reshape(dst.shape), rows.reshape(dst.shape)


def edge_distance(dst: GeoBox, src: GeoBox) -> np.ndarray:
    """Distance (in source cells) from each output cell's exact source point to the nearest source cell edge."""
    c, r = exact_source_coords(dst, src)
    dist = np.minimum(np.abs(c - np.round(c)), np.abs(r - np.round(r)))
    return np.where(np.isfinite(dist), dist, 0.0)


def _values(obj):
    return np.asarray(obj.data.compute() if obj.is_lazy else obj.data)


def assert_lazy_matches_eager(lazy, eager, src: GeoBox, *, max_fraction: float = MAX_FRACTION) -> None:
    """Nearest: cells differ only within APPROX of a source cell edge, and only a few of them."""
    assert lazy.is_lazy
    assert not eager.is_lazy
    assert lazy.geobox == eager.geobox
    assert lazy.dtype == eager.dtype
    assert lazy.bands == eager.bands
    assert lazy.nodata == eager.nodata or (math.isnan(lazy.nodata) and math.isnan(eager.nodata))
    a, e = _values(lazy), _values(eager)
    same = (a == e) | (np.isnan(a) & np.isnan(e)) if a.dtype.kind == "f" else a == e
    if same.all():
        return
    cells = (~same).reshape(-1, *a.shape[-2:]).any(axis=0)
    dist = edge_distance(eager.geobox, src)
    assert dist[cells].max() < APPROX, f"cells differ {dist[cells].max():.3f} cells away from a source edge"
    assert cells.mean() <= max_fraction, f"{cells.mean():.1%} of cells differ"


def with_chunks(obj, chunks):
    return attrs.evolve(obj, data=da.from_array(np.asarray(obj.data), chunks=chunks))


def oracle(obj: Raster, dst: GeoBox, resampling="nearest", nodata=None) -> np.ndarray:
    """``rasterio.warp.reproject`` of the whole array (numpy in, numpy out)."""
    src_nodata = obj.nodata if obj.nodata is not None else (math.nan if obj.dtype.kind == "f" else None)
    dst_nodata = nodata if nodata is not None else (obj.nodata if obj.nodata is not None else math.nan)
    out = np.full((obj.count, *dst.shape), dst_nodata, dtype=obj.dtype)
    rio_reproject(
        np.asarray(obj.data),
        out,
        src_transform=obj.geobox.transform,
        src_crs=obj.geobox.crs,
        src_nodata=src_nodata,
        dst_transform=dst.transform,
        dst_crs=dst.crs,
        dst_nodata=dst_nodata,
        resampling=Resampling[resampling],
    )
    return out


# --- strategies ------------------------------------------------------------------------

SOURCE_GRIDS = {
    "EPSG:32631": GeoBox.from_bounds((600_000, 5_000_000, 660_000, 5_048_000), 1000, "EPSG:32631"),
    "EPSG:4326": GeoBox.from_bounds((2.0, 44.0, 2.6, 44.5), 0.01, "EPSG:4326"),
    "EPSG:3857": GeoBox.from_bounds((250_000, 5_500_000, 310_000, 5_560_000), 1200, "EPSG:3857"),
    "EPSG:6933": GeoBox.from_bounds((200_000, 5_000_000, 260_000, 5_050_000), 1000, "EPSG:6933"),
}
TARGET_CRSS = ["EPSG:32631", "EPSG:4326", "EPSG:3857", "EPSG:6933", "EPSG:3035"]


@st.composite
def reprojection_cases(draw, *, dtype=None):
    src_name = draw(st.sampled_from(sorted(SOURCE_GRIDS)))
    src = SOURCE_GRIDS[src_name]
    target = draw(st.sampled_from(TARGET_CRSS))
    base = src.to_crs(target)
    scale = draw(st.sampled_from([0.5, 1.0, 1.7, 3.0]))
    res = abs(base.resolution[0]) * scale
    dst = attrs.evolve(base, shape=(max(1, round(base.height / scale)), max(1, round(base.width / scale))))
    dst = GeoBox(dst.shape, Affine(res, 0, base.transform.c, 0, -res, base.transform.f), base.crs)
    # shift by a few cells so that part of the target is outside the input
    shift = draw(st.integers(-5, 5))
    dst = GeoBox(dst.shape, dst.transform @ Affine.translation(shift, -shift), dst.crs)
    options = ["uint16", "int16", "float32", "float64", "uint8"] if dtype is None else [dtype]
    dt = np.dtype(draw(st.sampled_from(options)))
    seed = draw(st.integers(0, 2**16))
    bands = draw(st.integers(1, 2))
    rng = np.random.default_rng(seed)
    data = rng.integers(1, 100, (bands, *src.shape)).astype(dt)
    nodata = 0 if dt.kind != "f" else draw(st.sampled_from([None, -9999.0]))
    if nodata is not None:
        data[rng.random(data.shape) < 0.1] = nodata
    elif dt.kind == "f":
        data[rng.random(data.shape) < 0.1] = np.nan
    chunks = (bands, draw(st.integers(8, src.height)), draw(st.integers(8, src.width)))
    return Raster(data, src, nodata=nodata), dst, chunks


@given(reprojection_cases())
def test_eager_equals_rasterio_and_lazy_matches_eager(case):
    raster, dst, chunks = case
    eager = pyr.reproject(raster, dst)
    assert not eager.is_lazy
    np.testing.assert_array_equal(eager.data, oracle(raster, dst))
    with raise_if_dask_computes():
        lazy = pyr.reproject(with_chunks(raster, chunks), dst)
    assert lazy.chunks[-2][0] == min(max(chunks[-2], 1), dst.height) or dst.height < chunks[-2]
    assert_lazy_matches_eager(lazy, eager, raster.geobox)


RAMP_METHODS = ["bilinear", "cubic", "cubic_spline", "lanczos", "average", "min", "max", "med", "q1", "q3", "mode"]


@given(reprojection_cases(dtype="float64"), st.sampled_from(RAMP_METHODS))
def test_other_resamplings_lazy_matches_eager_on_a_ramp(case, method):
    raster, dst, chunks = case
    rows, cols = np.mgrid[0 : raster.geobox.height, 0 : raster.geobox.width]
    gy, gx = 0.5, 0.25
    ramp = (gy * rows + gx * cols + 1.0)[None].repeat(raster.count, axis=0)
    raster = attrs.evolve(raster, data=ramp, nodata=None)
    eager = pyr.reproject(raster, dst, resampling=method)
    np.testing.assert_allclose(eager.data, oracle(raster, dst, method), equal_nan=True)
    lazy = pyr.reproject(with_chunks(raster, chunks), dst, resampling=method)
    a, e = _values(lazy), _values(eager)
    both = np.isfinite(a) & np.isfinite(e)
    # Away from the input's outline (where kernels are cut), values move by at most the slope
    # over the transformer's error (interpolations) or over one cell (area methods pick cells).
    c, r = exact_source_coords(dst, raster.geobox)
    ratio = max(abs(dst.resolution[0]) / abs(raster.geobox.transform.a), 1.0) * 3
    ratio = max(ratio, 6.0)
    interior = (c > ratio) & (c < raster.geobox.width - ratio) & (r > ratio) & (r < raster.geobox.height - ratio)
    mask = both & interior[None]
    step = APPROX * 2 if method in ("bilinear", "cubic", "cubic_spline", "lanczos") else 1.0 + APPROX * 2
    bound = step * (gx + gy) * 1.01 + 1e-9
    assert np.abs(a - e)[mask].max(initial=0) <= bound
    # validity flips only near the outline
    assert (np.isfinite(a) != np.isfinite(e))[:, interior].sum() == 0


def test_cube_is_reprojected_date_by_date():
    src = SOURCE_GRIDS["EPSG:32631"]
    rng = np.random.default_rng(1)
    data = rng.integers(1, 500, (3, 2, *src.shape)).astype("uint16")
    cube = Cube(data, src, nodata=0, bands=["a", "b"], times=["2020-01-01", "2020-02-01", "2020-03-01"])
    dst = src.to_crs("EPSG:3857")
    eager = pyr.reproject(cube, dst)
    assert isinstance(eager, Cube)
    assert eager.bands == ("a", "b")
    np.testing.assert_array_equal(eager.times, cube.times)
    for t in range(3):
        np.testing.assert_array_equal(eager.data[t], oracle(Raster(data[t], src, nodata=0), dst))
    lazy = pyr.reproject(attrs.evolve(cube, data=da.from_array(data, chunks=(1, 1, 17, 23))), dst)
    assert lazy.chunks[0] == (1, 1, 1)
    assert lazy.chunks[1] == (2,)
    assert_lazy_matches_eager(lazy, eager, src)


def test_nodata_rules():
    src = SOURCE_GRIDS["EPSG:32631"]
    dst = GeoBox.from_bounds((640_000, 5_030_000, 700_000, 5_060_000), 1000, "EPSG:32631")  # half outside
    ints = Raster(np.ones((1, *src.shape), "uint16"), src)
    with pytest.raises(InvalidArgument, match="nodata="):
        pyr.reproject(ints, dst)
    got = pyr.reproject(ints, dst, nodata=7)
    assert got.nodata == 7
    assert (got.data[0, :, -1] == 7).all()
    assert (got.data[0, -1, 0] == 1).all()
    floats = Raster(np.ones((1, *src.shape), "float32"), src)
    got = pyr.reproject(floats, dst)
    assert math.isnan(got.nodata)
    assert np.isnan(got.data[0, 0, -1])
    with pytest.raises(InvalidArgument, match="nodata"):
        pyr.reproject(ints, dst, nodata=-1)


def test_bad_arguments_are_named():
    src = SOURCE_GRIDS["EPSG:32631"]
    r = Raster(np.ones((1, *src.shape), "uint16"), src, nodata=0)
    with pytest.raises(InvalidArgument, match="resampling"):
        pyr.reproject(r, src, resampling="nearestest")
    rotated = GeoBox((5, 5), Affine.rotation(10) @ src.transform, src.crs)
    with pytest.raises(InvalidArgument, match="north-up"):
        pyr.reproject(r, rotated)
    with pytest.raises(InvalidArgument, match="CRS"):
        pyr.reproject(r, GeoBox(src.shape, src.transform, None))
    with pytest.raises(InvalidArgument, match="geobox"):
        pyr.reproject(r, "EPSG:4326")
    with pytest.raises(InvalidArgument, match="Raster or Cube"):
        pyr.reproject(np.ones((1, 2, 2)), src)


def test_rotated_input_is_warped_by_rasterio():
    src = GeoBox((40, 30), Affine.rotation(15) @ Affine(1000, 0, 600_000, 0, -1000, 5_050_000), "EPSG:32631")
    r = Raster(np.arange(1, 1201, dtype="uint16").reshape(1, 40, 30), src, nodata=0)
    dst = src.to_crs("EPSG:4326", resolution=0.01)
    eager = pyr.reproject(r, dst)
    np.testing.assert_array_equal(eager.data, oracle(r, dst))
    assert (eager.data > 0).sum() > 100
    lazy = pyr.reproject(with_chunks(r, (1, 9, 7)), dst)
    assert_lazy_matches_eager(lazy, eager, src)


def test_bool_rasters_warp_as_bytes():
    src = SOURCE_GRIDS["EPSG:32631"]
    data = np.random.default_rng(2).random((1, *src.shape)) > 0.5
    r = Raster(data, src, nodata=0)
    dst = src.to_crs("EPSG:3857")
    got = pyr.reproject(r, dst)
    assert got.dtype == np.bool_
    np.testing.assert_array_equal(got.data, oracle(attrs.evolve(r, data=data.astype("uint8")), dst).astype(bool))
