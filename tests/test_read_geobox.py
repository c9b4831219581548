"""``read(source, geobox=...)``: warped reads, each output chunk read straight onto its grid.

Oracles: ``pyr.reproject`` of a plain read (same windows, same warp),
``rasterio.warp.reproject`` of the whole file (or of the overview GDAL would
read), and a Range server's byte count for one small chunk.
"""

from __future__ import annotations

import pickle

import dask
import numpy as np
import pytest
from _warp import warp_oracle
from servers import FAST, serve

import pyr
from pyr import GeoBox, InvalidArgument
from pyr.testing import raise_if_dask_computes

pytest_plugins = ["conftest_cloud"]

L8 = "landsat8_c2l2_001062/LC08_L2SP_001062_20201031_20201106_02_T2_SR_B4.TIF"
S2 = "s2l2a_cog_29RKH_20200219/B04.tif"


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_landsat_onto_another_crs_equals_reproject_and_gdal(real_data, crs):
    path = real_data / L8
    plain = pyr.read(path)
    geobox = plain.geobox.to_crs(crs)
    eager = pyr.read(path, geobox=geobox)
    assert eager.geobox == geobox
    assert not eager.is_lazy
    assert eager.nodata == 0
    np.testing.assert_array_equal(eager.data, pyr.reproject(plain, geobox).data)
    np.testing.assert_array_equal(eager.data[0], warp_oracle(path, geobox))
    with raise_if_dask_computes():
        lazy = pyr.read(path, geobox=geobox, chunks=(64, 64))
    assert lazy.data.chunks[1][0] == 64
    assert lazy.data.chunks[2][0] == 64
    # the same windows and warps as a lazy reprojection of a lazy read: bit-identical
    expected = pyr.reproject(pyr.read(path, chunks=(64, 64)), geobox).data.compute()
    got = lazy.data.compute()
    np.testing.assert_array_equal(got, expected)
    # lazy vs eager: only where GDAL's approximate transformer lands near a cell edge (documented)
    assert (got != eager.data).mean() < 0.05


def test_bilinear_equals_reproject(real_data):
    path = real_data / L8
    plain = pyr.read(path)
    geobox = GeoBox.from_bbox(plain.geobox.to_crs("EPSG:4326").bounds, crs="EPSG:3857", resolution=1500)
    eager = pyr.read(path, geobox=geobox, resampling="bilinear")
    np.testing.assert_array_equal(eager.data, pyr.reproject(plain, geobox, resampling="bilinear").data)
    lazy = pyr.read(path, geobox=geobox, resampling="bilinear", chunks=32).data.compute()
    ref = pyr.reproject(pyr.read(path, chunks=32), geobox, resampling="bilinear").data.compute()
    np.testing.assert_array_equal(lazy, ref)


def test_s2_at_200m_reads_full_resolution_at_400m_an_overview(real_data):
    path = real_data / S2
    plain = pyr.read(path)
    # 200 m in EPSG:3857 is about 181 m on the ground here: finer than the 200 m overview, so level 0
    g200 = plain.geobox.to_crs("EPSG:3857", resolution=200)
    np.testing.assert_array_equal(pyr.read(path, geobox=g200).data[0], warp_oracle(path, g200))
    # 400 m: the factor-2 overview (200 m) is the coarsest still as fine: GDAL's warp of that overview
    g400 = plain.geobox.to_crs("EPSG:3857", resolution=400)
    eager = pyr.read(path, geobox=g400)
    np.testing.assert_array_equal(eager.data[0], warp_oracle(path, g400, overview=0))
    assert (eager.data[0] != warp_oracle(path, g400)).any()  # not a read of the full resolution
    lazy = pyr.read(path, geobox=g400, chunks=(100, 100)).data.compute()
    ref = pyr.reproject(pyr.read(path, overview=0, chunks=(100, 100)), g400).data.compute()
    np.testing.assert_array_equal(lazy, ref)


def test_chunks_outside_the_source_are_nodata_without_opening_it(real_data, monkeypatch):
    path = real_data / L8
    src = pyr.read(path).geobox
    # a grid three times as wide as the source, to its east: the east third misses it
    geobox = GeoBox((src.height, 3 * src.width), src.transform, src.crs)
    lazy = pyr.read(path, geobox=geobox, chunks=(src.height, src.width))
    import pyr.io.gdal.handles as handles

    def refuse(spec):
        raise AssertionError("opened")

    monkeypatch.setattr(handles, "_checkout", refuse)
    east = lazy.data[:, :, 2 * src.width :].compute(scheduler="sync")
    assert (east == 0).all()


def test_threads_and_processes_agree_and_the_graph_pickles(real_data):
    path = real_data / L8
    geobox = pyr.read(path).geobox.to_crs("EPSG:3857")
    lazy = pyr.read(path, geobox=geobox, chunks=100)
    again = pickle.loads(pickle.dumps(dict(lazy.data.__dask_graph__())))
    assert set(again) == set(lazy.data.__dask_graph__())
    threads = lazy.data.compute(scheduler="threads")
    with dask.config.set(scheduler="processes", num_workers=2):
        procs = lazy.data.compute()
    np.testing.assert_array_equal(threads, procs)


def test_bytes_for_one_small_chunk_follow_its_footprint(http_server, cog):
    path, _ = cog
    name, url = serve(http_server, path)
    env = pyr.cloud_env(**FAST)
    src = pyr.read(path).geobox
    geobox = src.to_crs("EPSG:3857")
    lazy = pyr.read(url, geobox=geobox, chunks=(32, 32), env=env)
    assert lazy.data.numblocks[1] > 4
    assert lazy.data.numblocks[2] > 4
    http_server.reset()
    i, j = lazy.data.numblocks[1] // 2, lazy.data.numblocks[2] // 2
    chunk = lazy.data.blocks[0, i, j].compute(scheduler="sync")
    size = path.stat().st_size
    fetched = http_server.bytes_sent(name)
    assert 0 < fetched < size / 4, (fetched, size)
    np.testing.assert_array_equal(chunk, pyr.read(path, geobox=geobox, chunks=(32, 32)).data.blocks[0, i, j])


def test_bad_arguments(real_data):
    path = real_data / L8
    geobox = pyr.read(path).geobox
    with pytest.raises(InvalidArgument, match="overview"):
        pyr.read(path, geobox=geobox, overview=0)
    with pytest.raises(InvalidArgument, match="geobox"):
        pyr.read(path, geobox=(0, 0, 1, 1))
    with pytest.raises(InvalidArgument, match="resampling"):
        pyr.read(path, geobox=geobox, resampling="nope")
    stripped = real_data / "landsat8_l1tp_ny2018_gdalcubes"
    b4 = next(stripped.glob("*/*_B4.TIF"))
    with pytest.raises(InvalidArgument, match="nodata"):
        pyr.read(b4, geobox=pyr.read(b4).geobox.to_crs("EPSG:4326"))
