"""read_stac against real servers on loopback: a STAC API searched with pystac_client, COGs over HTTP.

The STAC API is pyr.testing.stac_api.StacApi (item search with paging and ``next`` links, as Earth
Search answers); the assets are served by tests/servers.RangeServer, which counts the requests GDAL
makes. Oracles: read_stac of the same items with local hrefs (checked against rasterio in
test_stac.py) and numpy.
"""

from __future__ import annotations

import math

import numpy as np
import pystac_client
import pytest
from servers import FAST, RangeServer, serve
from test_stac import NY, NY_SCENES, ny_item

import pyr
from pyr import GeoBox, ReadError
from pyr.testing.stac_api import StacApi

SCENES = NY_SCENES  # three path/rows; two dates shared by two of them


@pytest.fixture(scope="module")
def http():
    with RangeServer() as srv:
        yield srv


def published(real, srv: RangeServer, scene: str, **kw) -> tuple[dict, dict]:
    """The item of ``scene`` with its files at fresh URLs (nothing of them in GDAL's cache), and the local one."""
    pr, folder, day, _ = SCENES[scene]
    hrefs = {b: serve(srv, real / NY.format(pr, folder, day, b))[1] for b in ("B4", "BQA")}
    return ny_item(real, scene, hrefs=hrefs, **kw), ny_item(real, scene, **kw)


@pytest.fixture(scope="module")
def catalogue(real_data, http):
    pairs = [published(real_data, http, s) for s in SCENES]
    with StacApi([remote for remote, _ in pairs]) as api:
        yield api, [remote for remote, _ in pairs], [local for _, local in pairs]


def test_search_pages_then_read_stac(catalogue):
    api, remote, local = catalogue
    client = pystac_client.Client.open(api.url)
    before = api.requests
    search = client.search(
        collections=["l8"], bbox=(-76.0, 40.0, -74.0, 42.0), datetime="2018-04-01/2018-06-30", limit=2
    )
    ids = [item.id for item in search.items()]
    wanted = [i["id"] for i in remote if i["properties"]["datetime"].startswith("2018-04")]
    assert ids == wanted  # only April's, in catalogue order
    assert api.requests - before >= 1 + math.ceil(len(wanted) / 2)  # the landing page and one request per page
    by_get = client.search(collections=["l8"], datetime="2018-04-01/2018-06-30", limit=1, method="GET")
    assert [i.id for i in by_get.items()] == wanted
    cube = pyr.read_stac(search, bands=["B4"], env=FAST, chunks=40)
    expected = pyr.read_stac([i for i in local if i["id"] in wanted], bands=["B4"], chunks=40)
    assert cube.geobox == expected.geobox
    assert list(cube.times) == list(expected.times)
    np.testing.assert_array_equal(cube.data.compute(), expected.data.compute())
    from_items = pyr.read_stac(list(search.items()), bands=["B4"], env=FAST, geobox=cube.geobox)
    np.testing.assert_array_equal(from_items.data.compute(), cube.data.compute())


def test_no_file_opened_at_call_time_and_missed_items_cost_nothing(real_data, http):
    west, _ = published(real_data, http, "014032_20180428")
    east, _ = published(real_data, http, "013032_20180421")  # x >= 525 km: outside the grid below
    bare, _ = published(real_data, http, "014031_20180428", proj=False)  # no projection extension
    grid = GeoBox.from_bounds((400_000, 4_400_000, 500_000, 4_560_000), 3000, "EPSG:32618")
    http.reset()
    cube = pyr.read_stac([west, east, bare], bands=["B4", "BQA"], geobox=grid, env=FAST, chunks=20)
    assert http.requests() == 0  # the items said everything: no header read
    default = pyr.read_stac([west, east], bands=["B4", "BQA"], env=FAST)  # the default grid, from the items too
    assert http.requests() == 0
    assert default.geobox.crs.to_epsg() == 32618
    cube.data.compute()
    touched = {p.rsplit("/", 1)[-1] for p in http.paths()}
    assert any("014032" in p for p in touched)
    assert any("014031" in p for p in touched)  # read in the tasks (its header there, once per process)
    assert not any("013032" in p for p in touched)  # its footprint misses every chunk: never opened


def test_on_error_nodata_leaves_a_failed_asset_out(real_data, http):
    north, north_local = published(real_data, http, "014031_20180428")
    south, south_local = published(real_data, http, "014032_20180428")
    http.fail(south["assets"]["B4"]["href"].split("/", 3)[-1], 404)
    grid = pyr.read_stac([north_local, south_local], bands=["B4"]).geobox
    with pytest.raises(ReadError, match="B4"):
        pyr.read_stac([north, south], bands=["B4"], geobox=grid, env=FAST).data.compute()
    got = pyr.read_stac([north, south], bands=["B4"], geobox=grid, env=FAST, on_error="nodata")
    expected = pyr.read_stac([north_local], bands=["B4"], geobox=grid)
    np.testing.assert_array_equal(got.data.compute(), expected.data.compute())


@pytest.mark.parametrize("scheduler", ["threads", "processes", "distributed"])
def test_every_scheduler(catalogue, scheduler):
    import dask

    _, remote, local = catalogue

    def cloud_free_median(items, **kw):
        """read_stac -> mask (Landsat Collection 1 BQA bit 4: cloud, grown by a cell) -> median."""
        red = pyr.read_stac(items, bands=["B4"], chunks=40, scaled=True, **kw)
        qa = pyr.read_stac(items, bands=["BQA"], geobox=red.geobox, chunks=40, **kw)
        return pyr.reduce_time(pyr.mask(red, qa, bits=[4], dilate=1), "median"), red

    median, _ = cloud_free_median(remote, env=FAST)
    expected, local_red = cloud_free_median(local)
    with dask.config.set(scheduler="threads"):
        want = expected.data.compute()
        unmasked = pyr.reduce_time(local_red, "median").data.compute()
    assert np.isnan(want).sum() > np.isnan(unmasked).sum()  # the mask took cells out
    if scheduler == "distributed":
        from distributed import Client, LocalCluster

        with (
            LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster,
            Client(cluster),
        ):
            got = median.data.compute()
    else:
        with dask.config.set(scheduler=scheduler, num_workers=2):
            got = median.data.compute()
    np.testing.assert_array_equal(got, want)
    assert np.isfinite(got).any()
