"""``mosaic``: the first valid pixel wins, in the order given; lazy == eager.

Oracles: ``rasterio.merge.merge(method="first")`` on GeoTIFF files for
rasters sharing a cell lattice; for rasters on different grids, plain
``rasterio.warp.reproject`` of each onto the target then numpy.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import attrs
import dask.array as da
import numpy as np
import pytest
import rasterio
import rasterio.merge
from _tiffs import write_tif
from affine import Affine
from hypothesis import given
from hypothesis import strategies as st
from test_reproject import assert_lazy_matches_eager, file_oracle, oracle

import pyr
from pyr import GeoBox, GridMismatch, InvalidArgument, Raster
from pyr.testing import assert_raster_equal, raise_if_dask_computes

BASE = Affine(30.0, 0.0, 600_000.0, 0.0, -30.0, 5_100_000.0)


@st.composite
def lattice_mosaics(draw):
    """2-4 rasters on one 30 m lattice at random offsets, with holes."""
    dtype = np.dtype(draw(st.sampled_from(["uint8", "int16", "uint16", "float32"])))
    nodata = draw(st.sampled_from([0, 255] if dtype == np.uint8 else [0, -1] if dtype.kind == "i" else [0, 65535]))
    if dtype.kind == "f":
        nodata = draw(st.sampled_from([-9999.0, 0.0]))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    count = draw(st.integers(1, 2))
    rasters = []
    for _ in range(draw(st.integers(2, 4))):
        rows, cols = draw(st.integers(1, 30)), draw(st.integers(1, 30))
        dr, dc = draw(st.integers(-20, 20)), draw(st.integers(-20, 20))
        gb = GeoBox((rows, cols), BASE @ Affine.translation(dc, dr), "EPSG:32631")
        data = rng.integers(1, 200, (count, rows, cols)).astype(dtype)
        data[rng.random(data.shape) < 0.3] = nodata
        rasters.append(Raster(data, gb, nodata=nodata))
    return rasters


def with_chunks(r: Raster, chunks) -> Raster:
    return attrs.evolve(r, data=da.from_array(np.asarray(r.data), chunks=chunks))


@given(lattice_mosaics(), st.integers(1, 25), st.data())
def test_same_lattice_equals_rasterio_merge_first_and_lazy_equals_eager(rasters, chunk, data):
    eager = pyr.mosaic(rasters)
    first = rasters[0].geobox
    offset = ~first.transform @ (eager.geobox.transform.c, eager.geobox.transform.f)
    assert offset == (round(offset[0]), round(offset[1])), "the default grid stays on the rasters' lattice"
    with tempfile.TemporaryDirectory() as tmp:
        paths = [
            write_tif(Path(tmp) / f"{i}.tif", np.asarray(r.data), geobox=r.geobox, nodata=r.nodata, tiled=False)
            for i, r in enumerate(rasters)
        ]
        merged, transform = rasterio.merge.merge([str(p) for p in paths], method="first")
    assert transform == eager.geobox.transform
    np.testing.assert_array_equal(eager.data, merged)
    lazy_ones = [with_chunks(r, (r.count, chunk, chunk)) if data.draw(st.booleans()) else r for r in rasters]
    with raise_if_dask_computes():
        lazy = pyr.mosaic(lazy_ones)
    if any(r.is_lazy for r in lazy_ones):
        assert lazy.is_lazy
        assert_raster_equal(lazy, eager)  # one lattice: every warp is a whole-cell shift, exact


def _first_valid_oracle(rasters, dst, nodata):
    out = None
    for r in rasters:
        warped = oracle(r, dst, nodata=nodata)
        if out is None:
            out = warped
            continue
        hole = np.isnan(out) if out.dtype.kind == "f" and math.isnan(nodata) else out == nodata
        out[hole] = warped[hole]
    return out


def test_different_crss_and_resolutions():
    utm = GeoBox.from_bounds((600_000, 5_000_000, 615_000, 5_015_000), 300, "EPSG:32631")
    merc = GeoBox.from_bounds((300_000, 5_600_000, 322_000, 5_620_000), 200, "EPSG:3857")
    ll = GeoBox.from_bounds((2.2, 45.0, 2.5, 45.2), 0.004, "EPSG:4326")
    rng = np.random.default_rng(3)
    rasters = []
    for gb in (utm, merc, ll):
        data = rng.random((1, *gb.shape)).astype("float32")
        data[rng.random(data.shape) < 0.2] = np.nan
        rasters.append(Raster(data, gb))
    eager = pyr.mosaic(rasters)
    assert eager.geobox.crs == utm.crs
    res = eager.geobox.resolution[0]
    assert res < 300  # the finest resolution: the 200 m Mercator cells measured in UTM
    for edge in (eager.geobox.transform.c, eager.geobox.transform.f):
        assert abs(edge / res - round(edge / res)) < 1e-6, "edges on multiples of the resolution"
    assert math.isnan(eager.nodata)
    np.testing.assert_array_equal(eager.data, _first_valid_oracle(rasters, eager.geobox, math.nan))
    # every raster's footprint is inside the default grid
    for r in rasters:
        left, bottom, right, top = pyr._gridding.footprint_bounds(r.geobox, utm.crs)
        gl, gb_, gr, gt = eager.geobox.bounds
        assert gl <= left
        assert gr >= right
        assert gb_ <= bottom
        assert gt >= top
    lazy = pyr.mosaic([with_chunks(r, (1, 16, 16)) for r in rasters])
    # each warp is an independent GDAL call: cells may differ only as lazy reprojection may
    for r in rasters:
        assert_lazy_matches_eager(
            pyr.reproject(with_chunks(r, (1, 16, 16)), eager.geobox), pyr.reproject(r, eager.geobox), r.geobox
        )
    a, e = lazy.data.compute(), eager.data
    same = (a == e) | (np.isnan(a) & np.isnan(e))
    assert same.mean() > 0.9


def test_explicit_geobox_and_order():
    gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    a = Raster(np.array([[[1, 1, 0, 0], [1, 0, 0, 0]]], "uint8"), gb, nodata=0)
    b = Raster(np.array([[[2, 2, 2, 0], [2, 2, 2, 2]]], "uint8"), gb, nodata=0)
    np.testing.assert_array_equal(pyr.mosaic([a, b]).data, [[[1, 1, 2, 0], [1, 2, 2, 2]]])
    np.testing.assert_array_equal(pyr.mosaic([b, a]).data, [[[2, 2, 2, 0], [2, 2, 2, 2]]])
    sub = gb[:1, 1:3]
    got = pyr.mosaic([a, b], geobox=sub)
    assert got.geobox == sub
    np.testing.assert_array_equal(got.data, [[[1, 2]]])
    curried = pyr.mosaic(geobox=sub)
    assert_raster_equal(curried([a, b]), got)


def test_bad_inputs_are_named():
    gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    a = Raster(np.ones((1, 2, 4), "uint8"), gb, nodata=0)
    with pytest.raises(InvalidArgument, match="at least one"):
        pyr.mosaic([])
    with pytest.raises(InvalidArgument, match="item 1"):
        pyr.mosaic([a, np.ones((1, 2, 4))])
    with pytest.raises(InvalidArgument, match="sequence"):
        pyr.mosaic(a)
    with pytest.raises(GridMismatch, match="raster 1"):
        pyr.mosaic([a, Raster(np.ones((1, 2, 4), "uint16"), gb, nodata=0)])
    with pytest.raises(InvalidArgument, match="nodata"):
        pyr.mosaic([Raster(np.ones((1, 2, 4), "uint8"), gb), a])
    with pytest.raises(InvalidArgument, match="resampling"):
        pyr.mosaic([a], resampling="best")


def test_real_scenes_of_one_day_from_two_path_rows(real_data):
    """Landsat 8 of 2018-04-28 over path/rows 14/31 and 14/32 (two grids) onto one Albers grid."""
    folder = real_data / "landsat8_l1tp_ny2018_gdalcubes"
    paths = sorted(folder.glob("LC08_L1TP_014*_20180428_*/*_B4.TIF"))
    assert len(paths) == 2
    rasters = [attrs.evolve(pyr.read(p), nodata=0) for p in paths]  # 0 is fill; the files say nothing
    assert rasters[0].geobox != rasters[1].geobox
    grid = GeoBox.from_bbox((-76.5, 39.2, -73.0, 42.8), crs="EPSG:5070", resolution=3000)
    eager = pyr.mosaic(rasters, geobox=grid)
    expected = file_oracle(paths[0], grid, nodata=0)
    second = file_oracle(paths[1], grid, nodata=0)
    expected[expected == 0] = second[expected == 0]
    np.testing.assert_array_equal(eager.data, expected)
    both = (file_oracle(paths[0], grid, nodata=0) != 0) & (second != 0)
    assert both.any(), "the scenes overlap: order matters there"
    default = pyr.mosaic(rasters)
    assert default.geobox.crs == rasters[0].geobox.crs
    with rasterio.open(paths[0]) as src:
        assert default.geobox.resolution[0] <= abs(src.transform.a)
