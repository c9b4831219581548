"""read_stac on the real files of ../shared/data/real (local hrefs), against rasterio + numpy oracles.

The items are what a catalogue would publish for the files (pyr.testing.stac_items: the projection and
raster extensions read from the files with rasterio). Expected values come from rasterio reads and
``rasterio.warp.reproject`` of the whole files, combined with numpy; never from pyr.
"""

from __future__ import annotations

import json

import numpy as np
import pystac
import pytest
import rasterio
from rasterio.warp import Resampling, reproject

import pyr
from pyr import GeoBox, InvalidArgument
from pyr.testing.stac_items import stac_item

S2 = "s2l2a_cog_29RKH_20200219"
C2 = "landsat8_c2l2_001062/LC08_L2SP_001062_20201031_20201106_02_T2_{}.TIF"
NY = "landsat8_l1tp_ny2018_gdalcubes/LC08_L1TP_{0}_{1}/LC08_L1TP_{0}_{2}_{3}.TIF"
NY_SCENES = {  # id -> (path/row, folder date suffix, acquisition, UTC time)
    "014031_20180428": ("014031", "20180428_20180502_01_T1", "20180428", "15:35:00"),
    "014032_20180428": ("014032", "20180428_20180502_01_T1", "20180428", "15:35:24"),
    "013032_20180421": ("013032", "20180421_20180502_01_T1", "20180421", "15:29:10"),
    "014032_20180903": ("014032", "20180903_20180912_01_T1", "20180903", "15:36:00"),
    "014031_20180903": ("014031", "20180903_20180912_01_T1", "20180903", "15:35:36"),
}


def ny_item(real, scene: str, **kw):
    pr, folder, day, hms = NY_SCENES[scene]
    assets = {b: real / NY.format(pr, folder, day, b) for b in ("B4", "BQA")}
    when = f"{day[:4]}-{day[4:6]}-{day[6:]}T{hms}Z"
    return stac_item(f"LC08_{scene}", when, assets, nodata={"B4": 0, "BQA": 0}, collection="l8", **kw)


@pytest.fixture(scope="module")
def s2(real_data):
    files = {k.lower(): real_data / S2 / f"{k}.tif" for k in ("B04", "B11", "SCL")}
    return stac_item("S2A_29RKH_20200219", "2020-02-19T11:21:09Z", files, factors={"b04": (1e-4, -0.1)})


@pytest.fixture(scope="module")
def landsat(real_data):
    files = {"sr_b4": real_data / C2.format("SR_B4"), "qa_pixel": real_data / C2.format("QA_PIXEL")}
    return stac_item(
        "LC08_001062_20201031", "2020-10-31T14:10:00Z", files, factors={"sr_b4": (2.75e-5, -0.2)},
        nodata={"qa_pixel": 1}, epsg_field=True,
    )  # fmt: skip


def file_grid(path) -> tuple[np.ndarray, GeoBox, float | None]:
    with rasterio.open(path) as ds:
        return ds.read(1), GeoBox(ds.shape, ds.transform, ds.crs), ds.nodata


def warp(path, geobox: GeoBox, *, nodata=0, resampling="nearest", dtype=None) -> np.ndarray:
    """The whole file warped onto ``geobox`` by rasterio (cells no source reaches: ``nodata``)."""
    src, grid, _ = file_grid(path)
    out = np.full(geobox.shape, nodata, dtype=dtype or src.dtype)
    reproject(
        src, out, src_transform=grid.transform, src_crs=grid.crs, src_nodata=nodata,
        dst_transform=geobox.transform, dst_crs=geobox.crs, dst_nodata=nodata, resampling=Resampling[resampling],
    )  # fmt: skip
    return out


def first_valid(*blocks: np.ndarray, nodata=0) -> np.ndarray:
    out = blocks[0].copy()
    for b in blocks[1:]:
        out[out == nodata] = b[out == nodata]
    return out


def test_native_grid_and_coarser_bands_resampled_onto_it(real_data, s2):
    cube = pyr.read_stac([s2], bands=["b04", "b11", "scl"], chunks=(384, 512))
    b04, grid, _ = file_grid(real_data / S2 / "B04.tif")
    assert cube.geobox == grid  # the finest band's own grid
    assert cube.bands == ("b04", "b11", "scl")
    assert cube.times.tolist() == [np.datetime64("2020-02-19T11:21:09", "us").item()]
    assert cube.dtype == np.uint16
    assert cube.nodata == 0
    assert cube.scales == (1e-4, 1.0, 1.0)
    assert cube.offsets == (-0.1, 0.0, 0.0)
    got = cube.data.compute()
    np.testing.assert_array_equal(got[0, 0], b04)
    np.testing.assert_array_equal(got[0, 1], warp(real_data / S2 / "B11.tif", grid))
    np.testing.assert_array_equal(got[0, 2], warp(real_data / S2 / "SCL.tif", grid, dtype="uint16"))
    again = pyr.read_stac([s2], bands=["b04", "b11", "scl"], chunks=200)  # another chunking, same values
    np.testing.assert_array_equal(again.data.compute(), got)


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
def test_onto_another_grid_equals_rasterio_reproject(real_data, s2, resampling):
    target = GeoBox.from_bounds((215_000, 2_710_000, 260_050, 2_760_100), 150, "EPSG:32629")
    cube = pyr.read_stac(s2, bands=["b04", "b11"], geobox=target, resampling=resampling, chunks=(100, 128))
    got = cube.data.compute()
    for b, name in enumerate(("B04", "B11")):
        expected = warp(real_data / S2 / f"{name}.tif", target, resampling=resampling)
        diff = np.abs(got[0, b].astype("int32") - expected.astype("int32"))
        assert diff.max() <= (0 if resampling == "nearest" else 1)


def test_one_solar_day_is_mosaicked_first_valid_in_item_order(real_data):
    items = [ny_item(real_data, s) for s in ("014031_20180428", "014032_20180428", "013032_20180421")]
    cube = pyr.read_stac(items, bands=["B4"], chunks=40)
    assert cube.ntimes == 2  # 04-21, then 04-28 (two path/rows, one day)
    assert [str(t)[:10] for t in cube.times] == ["2018-04-21", "2018-04-28"]
    assert str(cube.times[1]) == "2018-04-28T15:35:00.000000"  # the earliest of the day
    assert cube.geobox.crs.to_epsg() == 32618
    got = cube.data.compute()
    scenes = ("014031_20180428", "014032_20180428", "013032_20180421")
    north, south, other = (warp(real_data / NY.format(*NY_SCENES[s][:3], "B4"), cube.geobox) for s in scenes)
    assert ((north > 0) & (south > 0)).any()  # the scenes overlap: the order matters there
    np.testing.assert_array_equal(got[1, 0], first_valid(north, south))
    np.testing.assert_array_equal(got[0, 0], other)
    flipped = pyr.read_stac([items[1], items[0], items[2]], bands=["B4"], geobox=cube.geobox, chunks=40)
    np.testing.assert_array_equal(flipped.data.compute()[1, 0], first_valid(south, north))
    by_item = pyr.read_stac(items, bands=["B4"], geobox=cube.geobox, group_by=None)
    assert by_item.ntimes == 3
    assert list(by_item.times) == sorted(by_item.times)


def test_scaled_is_raw_times_scale_plus_offset_and_mixed_nodata(real_data, landsat):
    raw_file, grid, _ = file_grid(real_data / C2.format("SR_B4"))
    qa_file, _, _ = file_grid(real_data / C2.format("QA_PIXEL"))
    raw = pyr.read_stac(landsat, bands=["sr_b4", "qa_pixel"], chunks=128)
    assert raw.geobox == grid  # non-square pixels, negative northing: the item's own grid
    assert raw.nodata == 0  # the first band's; QA_PIXEL's fill (1) is written as 0
    got = raw.data.compute()[0]
    np.testing.assert_array_equal(got[0], raw_file)
    np.testing.assert_array_equal(got[1], np.where(qa_file == 1, 0, qa_file))
    scaled = pyr.read_stac(landsat, bands=["sr_b4"], scaled=True, chunks=128)
    assert scaled.dtype == np.float32
    assert np.isnan(scaled.nodata)
    assert scaled.scales is None
    expected = raw_file.astype("float32") * np.float32(2.75e-5) + np.float32(-0.2)
    expected[raw_file == 0] = np.nan
    assert (raw_file == 0).any()
    np.testing.assert_array_equal(scaled.data.compute()[0, 0], expected)
    rescaled = pyr.rescale(pyr.read_stac(landsat, bands=["sr_b4"], chunks=128))
    np.testing.assert_array_equal(rescaled.data.compute()[0, 0], expected)


def test_items_with_different_factors(real_data, landsat):
    later = json.loads(json.dumps(landsat))
    later["id"], later["properties"]["datetime"] = "later", "2020-11-16T14:10:00Z"
    later["assets"]["sr_b4"]["raster:bands"][0].update(scale=1e-4, offset=-0.1)
    with pytest.raises(InvalidArgument, match="scaled=True"):
        pyr.read_stac([landsat, later], bands=["sr_b4"])
    cube = pyr.read_stac([later, landsat], bands=["sr_b4"], scaled=True)
    raw, _, _ = file_grid(real_data / C2.format("SR_B4"))
    got = cube.data.compute()
    valid = raw > 0
    assert np.allclose(got[0, 0][valid], raw[valid] * np.float32(2.75e-5) - np.float32(0.2))  # 10-31 first
    assert np.allclose(got[1, 0][valid], raw[valid] * np.float32(1e-4) - np.float32(0.1))


def test_default_grid_overrides(real_data, s2):
    _, grid, _ = file_grid(real_data / S2 / "B04.tif")
    part = pyr.read_stac(s2, bands=["b04"], bbox=(-10.0, 25.0, -9.8, 25.2))
    t = part.geobox.transform
    assert part.geobox.crs == grid.crs
    assert (t.a, t.e) == (100.0, -100.0)
    assert (t.c - grid.transform.c) % 100 == 0  # on the item's own lattice
    assert (grid.transform.f - t.f) % 100 == 0
    assert 200 < part.geobox.width < 230
    web = pyr.read_stac(s2, bands=["b04"], crs="EPSG:3857", resolution=250)
    wt = web.geobox.transform
    assert web.geobox.crs.to_epsg() == 3857
    assert (wt.a, wt.e, wt.c % 250, wt.f % 250) == (250.0, -250.0, 0.0, 0.0)  # snapped as from_bbox does
    coarse = pyr.read_stac(s2, bands=["b04", "b11"], resolution=200)
    assert coarse.geobox.shape == (549, 549)


def test_item_forms_and_items_without_proj_agree(real_data, s2, tmp_path):
    expected = pyr.read_stac([s2], bands=["b04", "scl"]).data.compute()
    collection = pystac.ItemCollection([pystac.Item.from_dict(s2)])
    for items in (s2, pystac.Item.from_dict(s2), collection, collection.to_dict()):
        cube = pyr.read_stac(items, bands=["b04", "scl"])
        np.testing.assert_array_equal(cube.data.compute(), expected)
    bare = stac_item("no-proj", "2020-02-19T11:21:09Z", {"b04": real_data / S2 / "B04.tif"}, proj=False)
    assert "proj:shape" not in bare["assets"]["b04"]
    cube = pyr.read_stac(bare, bands=["b04"])  # the headers are read at call time for the grid
    np.testing.assert_array_equal(cube.data.compute()[0, 0], expected[0, 0])
    # relative hrefs are resolved against the item's self link
    rel = json.loads(json.dumps(s2))
    rel["links"] = [{"rel": "self", "href": (real_data / S2 / "item.json").as_uri()}]
    rel["assets"]["b04"]["href"] = "B04.tif"
    np.testing.assert_array_equal(pyr.read_stac(rel, bands=["b04"]).data.compute()[0, 0], expected[0, 0])


def test_bad_arguments_name_what_is_wrong(s2):
    with pytest.raises(InvalidArgument, match="no asset 'nir'"):
        pyr.read_stac(s2, bands=["b04", "nir"])
    with pytest.raises(InvalidArgument, match="geobox= and crs="):
        pyr.read_stac(s2, bands=["b04"], geobox=GeoBox.from_bounds((0, 0, 10, 10), 1, 32629), crs=32629)
    with pytest.raises(InvalidArgument, match="group_by"):
        pyr.read_stac(s2, bands="b04", group_by="month")
    with pytest.raises(InvalidArgument, match="on_error"):
        pyr.read_stac(s2, bands="b04", on_error="skip")
    with pytest.raises(InvalidArgument, match="bands="):
        pyr.read_stac(s2, bands=[])
    with pytest.raises(InvalidArgument, match="empty"):
        pyr.read_stac([], bands="b04")
    undated = json.loads(json.dumps(s2))
    undated["properties"] = {"datetime": None}
    with pytest.raises(InvalidArgument, match="no datetime"):
        pyr.read_stac(undated, bands="b04")


def test_plain_dicts_need_no_pystac_and_import_pyr_imports_none(s2):
    import subprocess
    import sys

    code = (
        "import sys, json\n"
        "sys.modules['pystac'] = sys.modules['pystac_client'] = None  # as if not installed\n"
        "import pyr\n"
        f"item = json.loads({json.dumps(json.dumps(s2))})\n"
        "cube = pyr.read_stac(item, bands=['b04'])\n"
        "assert int(cube.data[0, 0, :4, :4].compute().max()) > 0\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    check = "import sys, pyr; bad = {'pystac', 'pystac_client'} & set(sys.modules); assert not bad, bad"
    subprocess.run([sys.executable, "-c", check], check=True, timeout=120)


def test_each_task_carries_only_its_own_time_step(real_data):
    import pickle

    items = [ny_item(real_data, s) for s in NY_SCENES]
    cube = pyr.read_stac(items, bands=["B4"], group_by=None, chunks=40)
    graph = dict(cube.data.__dask_graph__())
    name = cube.data.name
    for t, item in enumerate(sorted(items, key=lambda i: i["properties"]["datetime"])):
        task = pickle.dumps(graph[(name, t, 0, 0, 0)])
        mine = item["assets"]["B4"]["href"].encode()
        others = [i["assets"]["B4"]["href"].encode() for i in items if i is not item]
        assert mine in task
        assert not any(o in task for o in others)
