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
import rasterio
from affine import Affine
from dask.core import get_dependencies
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.warp import reproject as rio_reproject
from rasterio.warp import transform as rio_transform

import pyr
from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr.testing import assert_raster_equal, raise_if_dask_computes

# GDAL's default error threshold of the approximate transformer, in source cells.
APPROX = 0.125
# GDAL checks that error at the midpoint of each interpolated segment; elsewhere on a segment it can be
# a little larger (the error curve is not exactly a parabola), so the per-cell check allows 20% more.
APPROX_CHECKED = APPROX * 1.2
# Only cells whose exact source point lies within APPROX_CHECKED of a source cell edge (either axis) differ:
# for points spread evenly over cells that is 1 - (1 - 2 * APPROX_CHECKED) ** 2 = 51% of them, the bound on the
# fraction of differing cells (seen: 2-3% on 100 m UTM -> EPSG:4326, up to 12% in drawn cases).
MAX_FRACTION = 1 - (1 - 2 * APPROX_CHECKED) ** 2


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
    """Nearest: cells differ only within APPROX_CHECKED of a source cell edge, and at most MAX_FRACTION of them."""
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
    assert dist[cells].max() < APPROX_CHECKED, f"cells differ {dist[cells].max():.3f} cells away from a source edge"
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


@settings(max_examples=10)  # eleven kernels, each warp of the whole ramp twice: the slowest property here
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
    two = pyr.reproject(attrs.evolve(cube, data=da.from_array(data, chunks=(2, 2, 30, 30))), dst)
    assert two.chunks[0] == (2, 1)
    assert_lazy_matches_eager(two, eager, src)


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


# --- laziness and the graph --------------------------------------------------------------


def test_one_output_chunk_of_a_full_tile_depends_on_a_handful_of_input_chunks():
    tile = GeoBox.from_bounds((600_000, 4_990_200, 709_800, 5_100_000), 10, "EPSG:32631")  # 10980 x 10980
    assert tile.shape == (10980, 10980)
    zeros = Raster(da.zeros((1, 10980, 10980), dtype="uint16", chunks=(1, 1024, 1024)), tile, nodata=0)
    dst = tile.to_crs("EPSG:3857", resolution=20)
    with raise_if_dask_computes():
        out = pyr.reproject(zeros, dst)
    assert out.chunks[-2][0] == 1024
    layer = out.data.__dask_graph__().layers[out.data.name]
    assert len(layer) == out.data.npartitions, "one task per output chunk"
    graph = dict(out.data.__dask_graph__())
    inputs = {k for k in graph if k[0] == zeros.data.name}
    assert len(inputs) == 121
    keys = out.data.__dask_keys__()[0]  # [row of chunks][column of chunks]
    assert len(keys) * len(keys[0]) > 25
    counts = []
    for key in keys[0][:3] + keys[len(keys) // 2][:3]:
        direct = get_dependencies(graph, key)
        assert direct <= inputs, "an output task depends only on input chunks"
        counts.append(len(direct))
    # a 1024-cell chunk at 20 m covers about 2 x 2 input chunks of 1024 cells at 10 m: 9 at most with margins
    assert 1 <= max(counts) <= 12, counts
    assert min(counts) >= 1


def test_chunks_outside_the_input_are_nodata_blocks_without_dependencies():
    src = SOURCE_GRIDS["EPSG:32631"]
    r = Raster(da.ones((1, *src.shape), dtype="uint16", chunks=(1, 10, 10)), src, nodata=0)
    dst = GeoBox.from_bounds((560_000, 5_000_000, 700_000, 5_048_000), 1000, "EPSG:32631")  # wider both sides
    out = pyr.reproject(r, dst)
    graph = dict(out.data.__dask_graph__())
    first, last = out.data.__dask_keys__()[0][0][0], out.data.__dask_keys__()[0][0][-1]
    assert get_dependencies(graph, first) == set()
    assert get_dependencies(graph, last) == set()
    values = out.data.compute()
    assert (values[..., :30] == 0).all()
    assert (values[..., 40:100] == 1).all()
    assert_lazy_matches_eager(out, pyr.reproject(attrs.evolve(r, data=np.asarray(r.data)), dst), src)


def test_same_graph_for_the_same_call_and_curried_form():
    src = SOURCE_GRIDS["EPSG:32631"]
    r = Raster(da.ones((1, *src.shape), dtype="uint16", chunks=(1, 10, 10)), src, nodata=0)
    dst = src.to_crs("EPSG:4326")
    a = pyr.reproject(r, dst, resampling="bilinear")
    b = pyr.reproject(geobox=dst, resampling="bilinear")(r)
    assert a.data.name == b.data.name
    assert pyr.reproject(r, dst).data.name != a.data.name


# --- polar, antimeridian, sinusoidal --------------------------------------------------------


def _random(src: GeoBox, dtype="int16", seed=0):
    rng = np.random.default_rng(seed)
    return Raster(rng.integers(1, 1000, (1, *src.shape)).astype(dtype), src, nodata=0)


AWKWARD = [
    # (input grid, target grid): a polar input onto lon/lat, a lon/lat input onto a polar grid
    # (one chunk holds the pole), a UTM zone 1 scene across the antimeridian onto lon/lat past 180
    # and onto a Pacific Mercator, a sinusoidal (MODIS-like) tile onto lon/lat.
    (
        GeoBox.from_bounds((-1_500_000, -1_500_000, 1_500_000, 1_500_000), 25_000, "EPSG:3413"),
        GeoBox.from_bounds((-180, 60, 180, 90), 0.5, "EPSG:4326"),
    ),
    (
        GeoBox.from_bounds((-180, 65, 180, 90), 0.5, "EPSG:4326"),
        GeoBox.from_bounds((-1_200_000, -1_200_000, 1_200_000, 1_200_000), 20_000, "EPSG:3413"),
    ),
    (
        GeoBox.from_bounds((-180, -90, 180, -60), 0.5, "EPSG:4326"),
        GeoBox.from_bounds((-2_000_000, -2_000_000, 2_000_000, 2_000_000), 25_000, "EPSG:3031"),
    ),
    (
        GeoBox.from_bounds((200_000, 7_700_000, 800_000, 8_300_000), 5000, "EPSG:32701"),
        GeoBox.from_bounds((174, -22, 186, -15), 0.05, "EPSG:4326"),
    ),
    (
        GeoBox.from_bounds((200_000, 7_700_000, 800_000, 8_300_000), 5000, "EPSG:32701"),
        GeoBox.from_bbox((174, -22, -174, -15), crs="EPSG:3832", resolution=5000),
    ),
    (
        GeoBox.from_bounds((-1_111_950, 4_447_800, 0, 5_559_750), 9265, "+proj=sinu +R=6371007.181 +units=m"),
        GeoBox.from_bounds((-20, 38, 2, 52), 0.1, "EPSG:4326"),
    ),
]


@pytest.mark.parametrize(
    ("src", "dst"), AWKWARD, ids=["3413-4326", "4326-3413", "4326-3031", "utm1-4326", "utm1-3832", "sinu-4326"]
)
@pytest.mark.parametrize("chunk", [17, 40])
def test_polar_antimeridian_and_sinusoidal(src, dst, chunk):
    r = _random(src)
    eager = pyr.reproject(r, dst)
    np.testing.assert_array_equal(eager.data, oracle(r, dst))
    assert (eager.data != 0).mean() > 0.2, "the case covers a good part of the target"
    lazy = pyr.reproject(with_chunks(r, (1, chunk, chunk)), dst)
    assert_lazy_matches_eager(lazy, eager, src)


def test_the_chunk_holding_the_pole_is_filled_lazily():
    src = GeoBox.from_bounds((-180, 85, 180, 90), 0.05, "EPSG:4326")
    # the pole (cell 25, 25) is inside the one 100-cell chunk, 23 km from its nearest sample point
    dst = GeoBox.from_bounds((-50_000, -150_000, 150_000, 50_000), 2_000, "EPSG:3413")
    r = _random(src)
    lazy = pyr.reproject(with_chunks(r, (1, 100, 100)), dst)
    values = lazy.data.compute()
    assert (values != 0).all(), "every cell near the pole has data"
    assert_lazy_matches_eager(lazy, pyr.reproject(r, dst), src)


# --- every scheduler -------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("scheduler", ["threads", "processes", "cluster"])
def test_reproject_on_every_scheduler(scheduler):
    import dask

    src = SOURCE_GRIDS["EPSG:32631"]
    r = _random(src, "uint16")
    dst = src.to_crs("EPSG:3857")
    lazy = pyr.reproject(with_chunks(r, (1, 16, 16)), dst, resampling="bilinear")
    expected = lazy.data.compute(scheduler="sync")
    if scheduler == "cluster":
        distributed = pytest.importorskip("distributed")
        with (
            distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None) as c,
            distributed.Client(c),
        ):
            got = lazy.data.compute()
    else:
        with dask.config.set(scheduler=scheduler, num_workers=2):
            got = lazy.data.compute()
    np.testing.assert_array_equal(got, expected)


# --- real files (../shared/data/real) ----------------------------------------------------------


def file_oracle(path, dst: GeoBox, resampling="nearest", nodata=None) -> np.ndarray:
    """``rasterio.warp.reproject`` straight from the file's band 1 onto ``dst``."""
    with rasterio.open(path) as src:
        fill = nodata if nodata is not None else src.nodata
        out = np.full((1, *dst.shape), fill, dtype=src.dtypes[0])
        rio_reproject(
            rasterio.band(src, 1),
            out[0],
            dst_transform=dst.transform,
            dst_crs=dst.crs,
            dst_nodata=fill,
            resampling=Resampling[resampling],
        )
    return out


LANDSAT = "landsat8_c2l2_001062/LC08_L2SP_001062_20201031_20201106_02_T2_SR_B4.TIF"


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_landsat_utm_to_4326_and_3857_against_rasterio(real_data, crs, resampling):
    path = real_data / LANDSAT
    eager_in = pyr.read(path)
    dst = eager_in.geobox.to_crs(crs)
    eager = pyr.reproject(eager_in, dst, resampling=resampling)
    expected = file_oracle(path, dst, resampling)
    assert (expected != 0).mean() > 0.3
    if resampling == "nearest":
        np.testing.assert_array_equal(eager.data, expected)
        lazy = pyr.reproject(pyr.read(path, chunks=100), dst)
        assert_lazy_matches_eager(lazy, eager, eager_in.geobox)
    else:
        np.testing.assert_allclose(eager.data, expected, atol=1)  # integer output: GDAL rounds


def test_sentinel2_b04_to_3857_at_200m(real_data):
    path = real_data / "s2l2a_cog_29RKH_20200219" / "B04.tif"
    src = pyr.read(path)
    dst = src.geobox.to_crs("EPSG:3857", resolution=200)
    for method in ("nearest", "average"):
        eager = pyr.reproject(src, dst, resampling=method)
        np.testing.assert_array_equal(eager.data, file_oracle(path, dst, method))
    lazy = pyr.reproject(pyr.read(path, chunks=256), dst)
    assert_lazy_matches_eager(lazy, pyr.reproject(src, dst), src.geobox)


def test_gdalcubes_series_onto_one_grid(real_data):
    """19 Landsat scenes over three path/rows (38 distinct grids in the folder) onto one Albers grid, stacked."""
    paths = sorted((real_data / "landsat8_l1tp_ny2018_gdalcubes").glob("*/*_B4.TIF"))
    assert len(paths) == 19
    grids = {pyr.read(p).geobox for p in paths}
    assert len(grids) > 10
    grid = GeoBox.from_bbox((-76.5, 39.2, -71.8, 42.9), crs="EPSG:5070", resolution=3000)
    steps = [pyr.reproject(pyr.read(p), grid, nodata=0) for p in paths]  # 0 is fill; the files say nothing
    times = [np.datetime64(f"{p.name[17:21]}-{p.name[21:23]}-{p.name[23:25]}") for p in paths]
    cube = pyr.stack(steps, times=times)
    assert cube.shape == (19, 1, *grid.shape)
    for t, p in enumerate(paths):
        np.testing.assert_array_equal(cube.data[t], file_oracle(p, grid, nodata=0))
    covered = (cube.data != 0).any(axis=(0, 1)).mean()
    assert covered > 1.5 * max((step.data != 0).mean() for step in steps)  # three path/rows side by side
    lazy = pyr.reproject(pyr.read(paths[0], chunks=20), grid, nodata=0)
    assert_lazy_matches_eager(lazy, steps[0], pyr.read(paths[0]).geobox)


# --- the kernel scale, pinned for the whole reprojection ----------------------------------------


def _noise(src: GeoBox) -> Raster:
    return Raster(np.random.default_rng(5).random((1, *src.shape)) * 1000, src)


KERNELS = ["bilinear", "cubic", "cubic_spline", "lanczos", "average", "mode", "max", "q1"]


@pytest.mark.parametrize("method", KERNELS)
def test_one_crs_downsampling_lazy_equals_eager_for_every_resampling(method):
    # An affine warp (one CRS) has no approximation error; the chunks at the input's edge see a
    # clipped source window, and GDAL's own per-warp kernel scale would differ there.
    src = GeoBox.from_bounds((600_000, 5_000_000, 660_000, 5_060_000), 100, "EPSG:32631")
    dst = GeoBox.from_bounds((590_150, 4_990_150, 650_150, 5_050_150), 300, "EPSG:32631")
    r = _noise(src)
    eager = pyr.reproject(r, dst, resampling=method)
    np.testing.assert_allclose(eager.data, oracle(r, dst, method), rtol=1e-12, equal_nan=True)
    lazy = pyr.reproject(with_chunks(r, (1, 64, 48)), dst, resampling=method)
    assert_raster_equal(lazy, eager, rtol=1e-9)  # the window's origin shifts float arithmetic by an ulp


@pytest.mark.parametrize("crs", ["EPSG:3857", "EPSG:4326", "EPSG:6933"])
@pytest.mark.parametrize("method", ["bilinear", "lanczos"])
def test_a_lazy_chunk_is_gdals_warp_of_the_whole_input_onto_that_chunk(crs, method):
    src = GeoBox.from_bounds((600_000, 5_000_000, 660_000, 5_060_000), 100, "EPSG:32631")
    r = _noise(src)
    dst = src.to_crs(crs, resolution=420 if crs != "EPSG:4326" else 0.004)
    eager = pyr.reproject(r, dst, resampling=method)
    np.testing.assert_allclose(eager.data, oracle(r, dst, method), rtol=1e-12, equal_nan=True)
    lazy = pyr.reproject(with_chunks(r, (1, 64, 50)), dst, resampling=method).data.compute()
    scale = pyr._gridding.warp_scale(dst, src)
    rows, cols = 64, 50
    for i, j in [(0, 0), (1, 1), (1, 0)]:
        sub = dst[i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
        out = np.full((1, *sub.shape), np.nan)
        rio_reproject(
            np.asarray(r.data), out, src_transform=src.transform, src_crs=src.crs, src_nodata=np.nan,
            dst_transform=sub.transform, dst_crs=sub.crs, dst_nodata=np.nan, resampling=Resampling[method],
            XSCALE=repr(scale[0]), YSCALE=repr(scale[1]),
        )  # fmt: skip
        # the window's origin shifts GDAL's float arithmetic by an ulp or so
        got = lazy[:, i * rows : (i + 1) * rows, j * cols : (j + 1) * cols]
        np.testing.assert_allclose(got, out, rtol=1e-9, equal_nan=True)
