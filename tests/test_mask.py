"""``mask``: quality-band class codes or bits, grown by whole cells, become nodata; lazy == eager.

Expected values come from a cell-by-cell numpy oracle written here (and, for
the real Landsat and Sentinel-2 files, from plain rasterio reads), never from
pyr's own kernel.
"""

from __future__ import annotations

import math
import pickle
import warnings

import attrs
import dask.array as da
import numpy as np
import pytest
import rasterio
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from toolz import pipe

import pyr
from pyr import Cube, GeoBox, GridMismatch, InvalidArgument, Raster
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import chunkings, geoboxes

LANDSAT = "landsat8_c2l2_001062/LC08_L2SP_001062_20201031_20201106_02_T2_{}.TIF"
S2 = "s2l2a_cog_29RKH_20200219/{}.tif"


def oracle_flags(qa: np.ndarray, values, bits, qa_nodata, dilate: int) -> np.ndarray:
    """Flagged cells of a 2-D qa, grown by ``dilate``, one cell at a time (independent of pyr)."""
    h, w = qa.shape
    seeds = np.zeros((h, w), bool)
    for i in range(h):
        for j in range(w):
            v = qa[i, j].item()
            if values is not None and v in list(values):
                seeds[i, j] = True
            if bits is not None and v != qa_nodata:
                as_unsigned = int(v) % (1 << (8 * qa.dtype.itemsize))
                if any((as_unsigned >> b) & 1 for b in bits):
                    seeds[i, j] = True
    out = np.zeros((h, w), bool)
    for i, j in zip(*np.nonzero(seeds), strict=True):
        out[max(i - dilate, 0) : i + dilate + 1, max(j - dilate, 0) : j + dilate + 1] = True
    return out


def oracle(data: np.ndarray, qa: np.ndarray, fill, **options) -> np.ndarray:
    """``data`` (band, y, x) with the oracle's flagged cells set to ``fill``."""
    flags = oracle_flags(qa[0], **options)
    out = data.copy()
    out[:, flags] = fill
    return out


@st.composite
def mask_cases(draw, *, cube: bool):
    gb = draw(geoboxes(max_side=14, crs="EPSG:32631"))
    dtype = np.dtype(draw(st.sampled_from(["uint16", "int16", "float32", "uint8"])))
    qa_dtype = np.dtype(draw(st.sampled_from(["uint8", "uint16", "int16", "int8"])))
    count = draw(st.integers(1, 2))
    ntimes = draw(st.integers(1, 3)) if cube else None
    lead = (ntimes,) if cube else ()
    data = draw(hnp.arrays(dtype, (*lead, count, *gb.shape), elements=st.integers(1, 100)))
    info = np.iinfo(qa_dtype)
    codes = st.integers(0, 12) | st.integers(max(int(info.min), -300), min(int(info.max), 300))
    qa = draw(hnp.arrays(qa_dtype, (*lead, 1, *gb.shape), elements=codes))
    nodata = draw(st.sampled_from([0, None] if dtype.kind == "f" else [0]))
    qa_nodata = draw(st.sampled_from([None, 0, 5]))
    kind = draw(st.sampled_from(["values", "bits", "both"]))
    values = draw(st.lists(st.integers(0, 12), min_size=1, max_size=4)) if kind != "bits" else None
    bits = draw(st.lists(st.integers(0, 7), min_size=1, max_size=3)) if kind != "values" else None
    dilate = draw(st.integers(0, 3))
    times = np.datetime64("2024-01-01", "us") + np.arange(ntimes or 0) * np.timedelta64(1, "D")
    if cube:
        obj = Cube(data, gb, nodata=nodata, times=times)
        qa_obj = Cube(qa, gb, nodata=qa_nodata, times=times, bands=["qa"])
    else:
        obj = Raster(data, gb, nodata=nodata)
        qa_obj = Raster(qa, gb, nodata=qa_nodata, bands=["qa"])
    return obj, qa_obj, {"values": values, "bits": bits, "dilate": dilate}


def _lazy(obj, chunks):
    return attrs.evolve(obj, data=da.from_array(np.asarray(obj.data), chunks=chunks))


def _expected(obj, qa, options):
    fill = math.nan if obj.dtype.kind == "f" else obj.nodata
    opts = {"values": options["values"], "bits": options["bits"], "qa_nodata": qa.nodata, "dilate": options["dilate"]}
    if isinstance(obj, Raster):
        return oracle(obj.data, qa.data, fill, **opts)
    qa_data = np.broadcast_to(qa.data, (obj.ntimes, *qa.shape)) if isinstance(qa, Raster) else qa.data
    return np.stack([oracle(obj.data[t], qa_data[t], fill, **opts) for t in range(obj.ntimes)])


@given(mask_cases(cube=False), st.data())
def test_raster_mask_lazy_equals_eager_equals_oracle(case, data):
    obj, qa, options = case
    eager = pyr.mask(obj, qa, **options)
    assert not eager.is_lazy
    np.testing.assert_array_equal(eager.data, _expected(obj, qa, options))
    assert eager.dtype == obj.dtype
    if obj.dtype.kind == "f":
        assert math.isnan(eager.nodata) or eager.nodata == obj.nodata
    for chunks_obj, chunks_qa in [
        (data.draw(chunkings(obj.shape)), data.draw(chunkings(qa.shape))),
        ((obj.count, 1, 1), (1, 2, 3)),
    ]:
        for left, right in (
            (_lazy(obj, chunks_obj), _lazy(qa, chunks_qa)),
            (_lazy(obj, chunks_obj), qa),
            (obj, _lazy(qa, chunks_qa)),
        ):
            with raise_if_dask_computes():
                lazy = pyr.mask(left, right, **options)
            assert lazy.is_lazy
            assert_raster_equal(lazy, eager)


@given(mask_cases(cube=True), st.booleans(), st.data())
def test_cube_mask_lazy_equals_eager_with_a_qa_cube_or_raster(case, one_qa_for_all, data):
    obj, qa, options = case
    if one_qa_for_all:
        qa = Raster(np.asarray(qa.data[0]), qa.geobox, nodata=qa.nodata, bands=qa.bands)
    eager = pyr.mask(obj, qa, **options)
    assert isinstance(eager, Cube)
    np.testing.assert_array_equal(eager.data, _expected(obj, qa, options))
    spatial = data.draw(chunkings(obj.shape))[-2:]
    tchunk = data.draw(st.integers(1, obj.ntimes))
    lazy_obj = _lazy(obj, (tchunk, obj.count, *spatial))
    qa_chunks = (1, *data.draw(chunkings(qa.shape))[-2:]) if one_qa_for_all else (1, 1, *spatial)
    for left, right in ((lazy_obj, _lazy(qa, qa_chunks)), (lazy_obj, qa), (obj, _lazy(qa, qa_chunks))):
        with raise_if_dask_computes():
            lazy = pyr.mask(left, right, **options)
        assert lazy.is_lazy
        assert_raster_equal(lazy, eager)


def test_the_halo_carries_flags_across_chunk_edges():
    gb = GeoBox.from_bounds((0, 0, 80, 80), 10, "EPSG:32631")
    qa = np.zeros((1, 8, 8), "uint8")
    qa[0, 3, 4] = 9  # next to the chunk edge at x=4: the halo carries it into the left chunks
    r = Raster(da.from_array(np.ones((1, 8, 8), "float32"), chunks=(1, 4, 4)), gb)
    out = pyr.mask(r, Raster(qa, gb), values=[9], dilate=2)
    assert out.chunks == r.chunks
    expected = np.ones((1, 8, 8), "float32")
    expected[0, 1:6, 2:7] = np.nan
    np.testing.assert_array_equal(out.data.compute(), expected)
    assert math.isnan(out.nodata)


# --- real files ------------------------------------------------------------------------


def test_landsat_qa_pixel_bits_on_the_real_scene(real_data):
    sr_path = real_data / LANDSAT.format("SR_B4")
    qa_path = real_data / LANDSAT.format("QA_PIXEL")
    with rasterio.open(sr_path) as src, rasterio.open(qa_path) as q:
        sr, qa = src.read(1), q.read(1)
    # Dilated cloud (1), cirrus (2), cloud (3), cloud shadow (4), numpy only.
    flagged = (qa & 0b11110) != 0
    grown = np.zeros_like(flagged)
    for dy in range(-1, 2):
        for dx in range(-1, 2):
            shifted = np.zeros_like(flagged)
            ys = slice(max(dy, 0), sr.shape[0] + min(dy, 0))
            xs = slice(max(dx, 0), sr.shape[1] + min(dx, 0))
            shifted[ys, xs] = flagged[max(-dy, 0) : sr.shape[0] - max(dy, 0), max(-dx, 0) : sr.shape[1] - max(dx, 0)]
            grown |= shifted
    expected = np.where(grown, 0, sr)
    assert 0 < grown.mean() < 1  # the scene has clouds and clear land
    eager = pyr.mask(pyr.read(sr_path), pyr.read(qa_path), bits=[1, 2, 3, 4], dilate=1)
    np.testing.assert_array_equal(eager.data[0], expected)
    assert eager.nodata == 0
    lazy = pyr.mask(pyr.read(sr_path, chunks=100), pyr.read(qa_path, chunks=(50, 77)), bits=[1, 2, 3, 4], dilate=1)
    assert lazy.is_lazy
    assert_raster_equal(lazy, eager)
    # Bit 0 is QA_PIXEL's fill flag: the cells it marks are exactly those whose value is odd.
    fill = pyr.mask(pyr.read(sr_path), pyr.read(qa_path), bits=0)
    np.testing.assert_array_equal(fill.data[0], np.where(qa % 2 == 1, 0, sr))
    assert (qa % 2 == 1).sum() == (qa == 1).sum() > 0


def test_sentinel2_scl_classes_on_the_real_tile(real_data):
    b11_path, scl_path = real_data / S2.format("B11"), real_data / S2.format("SCL")
    with rasterio.open(b11_path) as src, rasterio.open(scl_path) as q:
        b11, scl = src.read(1), q.read(1)
    expected = np.where(np.isin(scl, [3, 8, 9, 10]), 0, b11)
    cube = pyr.read_cube([b11_path, b11_path], times=["2020-02-19", "2020-02-20"], chunks=256)
    scl_raster = pyr.read(scl_path, chunks=200)
    out = pipe(cube, pyr.mask(qa=scl_raster, values=[3, 8, 9, 10]))
    assert out.is_lazy
    assert isinstance(out, Cube)
    got = pyr.compute(out).data
    np.testing.assert_array_equal(got[0, 0], expected)
    np.testing.assert_array_equal(got[1, 0], expected)
    assert (expected == 0).sum() == np.isin(scl, [3, 8, 9, 10]).sum()  # no B11 pixel was 0 before


# --- nodata rules --------------------------------------------------------------------


GB = GeoBox.from_bounds((0, 0, 40, 10), 10, "EPSG:32631")


def test_qa_nodata_cells_are_not_read_for_bits_but_match_values():
    qa = Raster(np.array([[[65535, 8, 0, 65535]]], "uint16"), GB, nodata=65535)
    r = Raster(np.array([[[1.0, 2.0, 3.0, 4.0]]], "float32"), GB)
    np.testing.assert_array_equal(pyr.mask(r, qa, bits=[3]).data, [[[1.0, np.nan, 3.0, 4.0]]])
    np.testing.assert_array_equal(pyr.mask(r, qa, values=[65535]).data, [[[np.nan, 2.0, 3.0, np.nan]]])


def test_float_data_gets_nan_and_keeps_factors():
    qa = Raster(np.array([[[0, 1, 0, 0]]], "uint8"), GB)
    r = Raster(np.array([[[1, 2, 3, 4]]], "uint16"), GB, nodata=0, scales=[2.75e-5], offsets=[-0.2])
    out = pyr.mask(r, qa, values=[1])
    assert (out.scales, out.offsets) == (r.scales, r.offsets)
    f = pyr.mask(Raster(np.ones((1, 1, 4), "float64"), GB, nodata=-9999.0), qa, values=[1])
    assert f.nodata == -9999.0  # a float's nodata is kept; masked cells are NaN, which marks no data anyway
    assert np.isnan(f.data[0, 0, 1])


def test_integer_data_without_nodata_is_refused():
    qa = Raster(np.zeros((1, 1, 4), "uint8"), GB)
    with pytest.raises(InvalidArgument, match=r"without a nodata value.*nodata=0"):
        pyr.mask(Raster(np.ones((1, 1, 4), "uint16"), GB), qa, values=[1])


# --- argument checks -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "nothing to mask"),
        ({"values": []}, "nothing to mask"),
        ({"bits": [8]}, r"bits=\[8\].*bit 8 is outside.*uint8"),
        ({"bits": [-1]}, "bit -1 is outside"),
        ({"bits": [1.5]}, "not a bit position"),
        ({"values": [256]}, "256 is out of range"),
        ({"values": [2.5]}, "not a whole number"),
        ({"values": ["a"]}, "not a number"),
        ({"values": [1], "dilate": -1}, "dilate=-1"),
        ({"values": [1], "dilate": 1.0}, "dilate=1.0"),
    ],
)
def test_bad_options_name_the_argument(options, match):
    r = Raster(np.ones((1, 1, 4), "float32"), GB)
    with pytest.raises(InvalidArgument, match=match):
        pyr.mask(r, Raster(np.zeros((1, 1, 4), "uint8"), GB), **options)


def test_bits_of_a_float_qa_and_a_many_band_qa_are_refused():
    r = Raster(np.ones((1, 1, 4), "float32"), GB)
    with pytest.raises(InvalidArgument, match="bits need an integer qa"):
        pyr.mask(r, Raster(np.zeros((1, 1, 4), "float32"), GB), bits=[1])
    with pytest.raises(InvalidArgument, match="qa has 2 bands"):
        pyr.mask(r, Raster(np.zeros((2, 1, 4), "uint8"), GB), values=[1])
    with pytest.raises(InvalidArgument, match="qa is a Cube"):
        pyr.mask(r, Cube(np.zeros((1, 1, 1, 4), "uint8"), GB), values=[1])


def test_grid_mismatch_names_what_differs():
    r = Raster(np.ones((1, 1, 4), "float32"), GB)
    qa = np.zeros((1, 1, 4), "uint8")
    with pytest.raises(GridMismatch, match=r"shape \(1, 5\) instead of \(1, 4\)"):
        pyr.mask(
            r, Raster(np.zeros((1, 1, 5), "uint8"), GeoBox.from_bounds((0, 0, 50, 10), 10, "EPSG:32631")), values=[1]
        )
    with pytest.raises(GridMismatch, match="CRS EPSG:32632 instead of EPSG:32631"):
        pyr.mask(r, Raster(qa, GeoBox(GB.shape, GB.transform, "EPSG:32632")), values=[1])
    with pytest.raises(GridMismatch, match="transform"):
        pyr.mask(r, Raster(qa, GeoBox(GB.shape, GB.transform @ GB.transform.translation(1, 0), GB.crs)), values=[1])
    cube = Cube(np.ones((2, 1, 1, 4), "float32"), GB, times=["2024-01-01", "2024-01-02"])
    with pytest.raises(GridMismatch, match="qa has 1 date"):
        pyr.mask(cube, Cube(qa[None], GB), values=[1])
    with pytest.raises(GridMismatch, match="times"):
        pyr.mask(cube, Cube(np.stack([qa, qa]), GB, times=["2024-01-01", "2024-01-03"]), values=[1])


def test_curried_with_qa_by_keyword_pipes_and_pickles():
    qa = Raster(np.array([[[0, 9, 0, 0]]], "uint8"), GB)
    r = Raster(np.array([[[1.0, 2.0, 3.0, 4.0]]], "float32"), GB)
    step = pyr.mask(qa=qa, values=[9])
    assert_raster_equal(pipe(r, step), pyr.mask(r, qa, values=[9]))
    assert_raster_equal(pickle.loads(pickle.dumps(step))(r), pyr.mask(r, qa, values=[9]))
    assert pickle.loads(pickle.dumps(pyr.mask)) is pyr.mask


def test_a_masked_read_cube_reduces_in_one_task_per_chunk(tmp_path):
    # Without dilation, the reads of the data and of the qa are fused into each reduce task.
    from _tiffs import write_tif

    gb = GeoBox.from_bounds((0, 0, 640, 640), 10, "EPSG:32631")
    rng = np.random.default_rng(0)
    paths, qa_paths = [], []
    for t in range(3):
        paths.append(
            write_tif(tmp_path / f"b{t}.tif", rng.integers(1, 100, (1, 64, 64), "uint16"), geobox=gb, nodata=0)
        )
        qa_paths.append(write_tif(tmp_path / f"q{t}.tif", rng.integers(0, 12, (1, 64, 64), "uint8"), geobox=gb))
    masked = pyr.mask(pyr.read_cube(paths, chunks=32), pyr.read_cube(qa_paths, chunks=16), values=[3, 8, 9, 10])
    median = pyr.reduce_time(masked, "median")
    graph = dict(median.data.__dask_graph__())
    assert len(graph) == median.data.npartitions == 4
    assert not any(task.dependencies for task in graph.values())
    data = np.stack([pyr.read(p).data for p in paths]).astype("float32")
    qa = np.stack([pyr.read(p).data for p in qa_paths])
    data[(data == 0) | np.isin(qa, [3, 8, 9, 10])] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # cells that are nodata on every date
        expected = np.nanmedian(data, axis=0)
    np.testing.assert_allclose(pyr.compute(median).data, expected, rtol=1e-6)


def test_a_20m_scl_read_onto_the_10m_grid_masks_the_red_band(real_data):
    # The real tile's SCL is at twice B04's cell size: read onto B04's grid (nearest), each class covers 2 x 2 cells.
    b04_path, scl_path = real_data / S2.format("B04"), real_data / S2.format("SCL")
    with rasterio.open(b04_path) as src, rasterio.open(scl_path) as q:
        b04, scl = src.read(1), q.read(1)
    fine = np.repeat(np.repeat(scl, 2, axis=0), 2, axis=1)
    red = pyr.read(b04_path, chunks=512)
    with pytest.raises(GridMismatch, match=r"shape \(549, 549\) instead of \(1098, 1098\).*geobox="):
        pyr.mask(red, pyr.read(scl_path), values=[3, 8, 9, 10])
    out = pyr.mask(red, pyr.read(scl_path, geobox=red.geobox, chunks=512), values=[3, 8, 9, 10], dilate=1)
    flagged = np.isin(fine, [3, 8, 9, 10])
    grown = flagged.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(np.roll(np.pad(flagged, 1), dy, 0), dx, 1)[1:-1, 1:-1]
    np.testing.assert_array_equal(pyr.compute(out).data[0], np.where(grown, 0, b04))
