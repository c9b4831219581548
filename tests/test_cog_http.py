"""pyr's native COG reader over HTTP: concurrent range requests, GDAL's retry and timeout promises, no secrets.

A chunk task issues all its tile requests at once (adjacent tiles merged),
so requests are in flight together even on one thread, up to
``pyr.requests-in-flight`` per process. Retries of 5xx and reset
connections, timeouts, and errors naming the URL without credentials hold
as they do for GDAL's reads (tests/test_http.py runs those through this
path too).
"""

from __future__ import annotations

import sys
from pathlib import Path

import dask
import numpy as np
import pytest
from servers import FAST, SECRET, cog_array, layouts_read_ahead, parse_range_header, serve, tile_ranges, write_cog

import pyr
from pyr import ReadError, cloud_env
from pyr.io.cog import prefetch
from pyr.io.cog import read as cog_read
from pyr.io.tiff import read_header, source_spec

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import _delay_server

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.network, pytest.mark.usefixtures("offline_aws_module"), pytest.mark.timeout(120)]
pytest.importorskip("imagecodecs")
pytest.importorskip("aiohttp")

ENV = cloud_env(**FAST)


@pytest.fixture
def no_read_ahead():
    with dask.config.set({"pyr.read-ahead": 0}):
        yield


def test_http_reads_go_native_one_merged_request_per_full_width_chunk(http_server, cog, no_read_ahead):
    path, data = cog
    name, url = serve(http_server, path)
    r = pyr.read(url, chunks=(256, 1024), env=ENV)
    assert cog_read.read_native(source_spec(url, env=ENV), (1,), (0, 1, 0, 1), read_header) is not None
    before = len(http_server.ranges(name))
    for i in range(3):
        start = len(http_server.ranges(name))
        r.data.blocks[0, i, 0].compute(scheduler="sync")
        got = http_server.ranges(name)[start:]
        assert len(got) == 1, got  # the 4 tiles of a row, one range
        assert len(parse_range_header(got[0])) == 1
    tiles = tile_ranges(path)
    fetched = sum(b - a + 1 for h in http_server.ranges(name)[before:] for a, b in parse_range_header(h))
    needed = sum(size for (i, _), (_, size) in tiles.items() if i < 3)
    assert needed <= fetched < needed + 1024  # the tiles (and the few bytes between them in the file)
    np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """The benchmarks' delay server (own process): 0.1 s before each answer, counting requests in flight."""
    root = tmp_path_factory.mktemp("slow")
    write_cog(root / "wide.tif", cog_array((1024, 1024), seed=3), block=256)
    write_cog(root / "ahead.tif", cog_array((1024, 1024), seed=4), block=256)
    base, proc = _delay_server.start(root, delay=0.1)
    yield base, root
    proc.kill()
    proc.wait()


def test_a_chunks_tiles_are_in_flight_together_on_one_thread(slow_server, no_read_ahead):
    base, root = slow_server
    url = f"{base}/wide.tif"
    r = pyr.read(url, chunks=(1024, 256), env=ENV)  # a column of 4 tiles: 4 ranges, not adjacent in the file
    _delay_server.stats(base, reset=True)
    out = r.data.compute(scheduler="sync")
    stats = _delay_server.stats(base, reset=True)
    assert stats["max_in_flight"] >= 4, stats  # one thread, yet a chunk's 4 requests overlapped
    np.testing.assert_array_equal(out, pyr.read(root / "wide.tif").data)


def test_next_chunks_are_fetched_ahead_each_tile_once(slow_server):
    base, root = slow_server
    r = pyr.read(f"{base}/ahead.tif", chunks=(256, 1024), env=ENV)  # a row of 4 tiles: one request a chunk
    layouts_read_ahead()  # the build's own request is in before the count starts
    _delay_server.stats(base, reset=True)
    out = r.data.compute(scheduler="sync")
    stats = _delay_server.stats(base, reset=True)
    assert stats["max_in_flight"] >= 2, stats  # one thread, yet the next chunks' requests overlapped
    assert stats["requests"] <= 1 + 4  # the layout, then each row of tiles once (ahead or on demand, never both)
    tiles = sum(size for (i, _), (_, size) in tile_ranges(root / "ahead.tif").items() if i < 4)
    assert stats["bytes"] <= tiles + 65536 + 1024
    np.testing.assert_array_equal(out, pyr.read(root / "ahead.tif").data)


def test_requests_in_flight_is_capped_by_dask_config(slow_server):
    base, _ = slow_server
    r = pyr.read(f"{base}/wide.tif", chunks=(1024, 256), env=ENV)
    layouts_read_ahead()  # the build's own request is in before the count starts
    _delay_server.stats(base, reset=True)
    with dask.config.set({"pyr.requests-in-flight": 2}):
        r.data.compute(scheduler="threads", num_workers=4)
    stats = _delay_server.stats(base, reset=True)
    assert stats["max_in_flight"] <= 2, stats
    assert stats["requests"] >= 16  # 4 chunks x 4 tiles


def test_5xx_and_resets_during_a_chunk_read_are_retried(http_server, cog, no_read_ahead):
    path, data = cog
    name, url = serve(http_server, path)
    r = pyr.read(url, chunks=(256, 1024), env=ENV)  # GDAL_HTTP_MAX_RETRY=3, small delay
    r.data.blocks[0, 0, 0].compute(scheduler="sync")  # the layout is read: only tile requests follow
    http_server.fail(name, 503, times=2)
    before = http_server.requests(name)
    np.testing.assert_array_equal(r.data.blocks[0, 1, 0].compute(scheduler="sync")[0], data[256:512])
    assert http_server.requests(name) - before == 3  # two 503s, then the tiles
    http_server.drop(name, times=1)
    np.testing.assert_array_equal(r.data.blocks[0, 2, 0].compute(scheduler="sync")[0], data[512:])


def test_a_failed_chunk_names_url_and_window_never_the_credentials(http_server, cog):
    path, _ = cog
    name, url = serve(http_server, path)
    signed = url.replace("http://", f"http://reader:{SECRET}@") + f"?X-Amz-Signature={SECRET}"
    r = pyr.read(signed, chunks=(256, 1024), env=ENV)
    http_server.fail(name, 404)
    with pytest.raises(ReadError, match=r"rows 0:256, cols 0:1024.*404") as info:
        r.data.blocks[0, 0, 0].compute(scheduler="sync")
    assert SECRET not in str(info.value)
    assert "http://***@127.0.0.1" in str(info.value)
    assert info.value.__context__ is None
    http_server.heal(name)


@pytest.mark.timeout(60)
def test_a_stalled_chunk_read_times_out_as_gdal_http_timeout_says(http_server, cog, no_read_ahead):
    path, _ = cog
    name, url = serve(http_server, path)
    env = cloud_env(**{**FAST, "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_LOW_SPEED_TIME": "1"})
    r = pyr.read(url, chunks=(256, 1024), env=env)
    r.data.blocks[0, 0, 0].compute(scheduler="sync")
    http_server.stall(name, 30, after_bytes=100)
    with pytest.raises(ReadError, match=r"timed out"):
        r.data.blocks[0, 1, 0].compute(scheduler="sync")
    http_server.heal(name)


def test_http_headers_or_auth_in_env_leave_the_read_to_gdal(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    http_server.protect(name, "X-Pyr-Token", SECRET)
    env = cloud_env(**FAST, GDAL_HTTP_HEADERS=f"X-Pyr-Token: {SECRET}")
    assert cog_read.read_native(source_spec(url, env=env), (1,), (0, 256, 0, 256), read_header) is None
    np.testing.assert_array_equal(pyr.read(url, env=env, chunks=256).data.compute()[0], data)


def test_without_aiohttp_gdal_reads_urls(http_server, cog, monkeypatch):
    from pyr.io.cog import fetch

    path, data = cog
    _, url = serve(http_server, path)
    monkeypatch.setattr(fetch, "_has_aiohttp", lambda: False)
    assert cog_read.read_native(source_spec(url, env=ENV), (1,), (0, 256, 0, 256), read_header) is None
    np.testing.assert_array_equal(pyr.read(url, env=ENV, chunks=256).data.compute()[0], data)


def test_public_s3_objects_are_read_natively_with_unsigned_requests(s3_endpoint, bucket, cog):
    from servers import s3_client

    path, data = cog
    client = s3_client(s3_endpoint)
    client.put_object(Bucket=bucket, Key="public/B04.tif", Body=path.read_bytes(), ACL="public-read")
    url = f"s3://{bucket}/public/B04.tif"
    aws = {"aws_unsigned": True, "endpoint": f"http://{s3_endpoint}", "virtual_hosting": False, "region": "us-east-1"}
    env = cloud_env(aws=aws, **FAST)
    spec = source_spec(url, env=env)
    got = cog_read.read_native(spec, (1,), (0, 768, 0, 1024), read_header)
    assert got is not None
    np.testing.assert_array_equal(got[0][0], data)
    np.testing.assert_array_equal(pyr.read(url, env=env, chunks=256).data.compute(scheduler="threads")[0], data)
    # static keys sign natively (tests/test_s3_signed.py); credentials GDAL resolves itself (a profile) decline
    profile = cloud_env(aws={**aws, "aws_unsigned": False, "profile": "p"}, AWS_SECRET_ACCESS_KEY="", **FAST)
    assert cog_read.read_native(source_spec(url, env=profile), (1,), (0, 256, 0, 256), read_header) is None
    missing = pyr.read(url, env=env, chunks=256)
    client.put_object(Bucket=bucket, Key="public/B04.tif", Body=b"", ACL="public-read")  # now an empty object
    cog_read.clear_cache()
    with pytest.raises(ReadError, match=r"s3://.*public/B04\.tif"):
        missing.data.compute(scheduler="sync")


def test_a_url_whose_tags_agree_with_the_plan_is_read_without_a_gdal_open(http_server, cog):
    import attrs

    from pyr.errors import GridMismatch
    from pyr.io.tiff import read_window

    path, data = cog
    _, url = serve(http_server, path)
    spec = source_spec(url, env=ENV)
    planned = read_header(spec)

    def no_gdal(_spec):
        raise AssertionError("GDAL opened the file")

    got = cog_read.read_native(spec, (1,), (0, 256, 0, 1024), no_gdal, planned)
    assert got is not None
    np.testing.assert_array_equal(got[0][0], data[:256])
    _, url2 = serve(http_server, path)  # a new URL: no layout cached yet
    other = attrs.evolve(planned, nodata=7)  # a plan the file does not match: GDAL's header decides
    with pytest.raises(GridMismatch, match="nodata"):
        read_window(source_spec(url2, env=ENV), other, (1,), (0, 256, 0, 1024))


def test_a_url_with_band_scales_is_checked_against_gdals_header(http_server, cog, tmp_path):
    """Band scales and offsets live in GDAL's metadata tag: a plan with other factors is refused, never reused."""
    import attrs
    import rasterio

    from pyr.errors import GridMismatch
    from pyr.io.tiff import read_window

    path, data = cog
    scaled = tmp_path / "scaled.tif"
    scaled.write_bytes(path.read_bytes())
    with rasterio.open(scaled, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
        ds.scales, ds.offsets = (2.75e-5,), (-0.2,)
    _, url = serve(http_server, scaled)
    spec = source_spec(url, env=ENV)
    planned = read_header(spec)
    assert planned.scales == (2.75e-5,)
    assert planned.offsets == (-0.2,)
    opened = []

    def gdal(s):
        opened.append(s)
        return read_header(s)

    got = cog_read.read_native(spec, (1,), (0, 256, 0, 1024), gdal, planned)
    assert got is not None
    assert opened  # the tags cannot say the factors: GDAL's header is read
    np.testing.assert_array_equal(got[0][0], data[:256])
    _, url2 = serve(http_server, path)  # the same pixels without factors, planned with them
    with pytest.raises(GridMismatch, match="scales/offsets"):
        read_window(source_spec(url2, env=ENV), attrs.evolve(planned), (1,), (0, 256, 0, 1024))


def test_a_cube_chunk_task_fetches_the_next_dates_while_it_waits_for_one(slow_server):
    """One task reading one chunk of three dates (one 256 x 256 tile each): the next dates' bytes are in flight
    together with this date's, instead of one round trip after another."""
    base, root = slow_server
    arrays = [cog_array((256, 256), seed=20 + k) for k in range(3)]
    for k, a in enumerate(arrays):
        write_cog(root / f"date{k}.tif", a, block=256)
    urls = [f"{base}/date{k}.tif" for k in range(3)]
    cube = pyr.read_cube(urls, env=ENV)  # the first file's header, read here by GDAL
    layouts_read_ahead()  # the build's own request is in before the count starts
    cog_read.clear_cache()
    _delay_server.stats(base, reset=True)
    top = pyr.reduce_time(cube, "max").data.compute(scheduler="sync")  # one task: the three dates in turn
    stats = _delay_server.stats(base, reset=True)
    assert stats["max_in_flight"] >= 2, stats
    np.testing.assert_array_equal(top[0], np.max(arrays, axis=0))
    for k, a in enumerate(arrays):
        write_cog(root / f"again{k}.tif", a, block=256)
    again = pyr.read_cube([f"{base}/again{k}.tif" for k in range(3)], env=ENV)
    layouts_read_ahead()  # the build's own request is in before the count starts
    _delay_server.stats(base, reset=True)
    with dask.config.set({"pyr.read-ahead": 0}):  # off: one request at a time
        pyr.reduce_time(again, "max").data.compute(scheduler="sync")
    assert _delay_server.stats(base, reset=True)["max_in_flight"] == 1


def test_a_dates_layout_and_tiles_are_fetched_ahead_before_its_first_read(slow_server):
    """Prefetching a date whose layout this process does not know yet reads the layout in the background and
    then fetches the window's tiles: its first read waits for neither (one round trip, not head then tiles)."""
    import time

    base, root = slow_server
    arrays = [cog_array((256, 512), seed=30 + k) for k in range(3)]
    for k, a in enumerate(arrays):
        write_cog(root / f"early{k}.tif", a, block=256)
    urls = [f"{base}/early{k}.tif" for k in range(3)]
    cube = pyr.read_cube(urls, chunks=(256, 256), env=ENV)  # the first file's header, read here by GDAL
    layouts_read_ahead()  # the build's own request is in before the count starts
    cog_read.clear_cache()
    _delay_server.stats(base, reset=True)
    prefetch([source_spec(u, env=ENV) for u in urls[1:]], (1,), (0, 256, 256, 512))
    deadline = time.monotonic() + 30
    while _delay_server.stats(base)["requests"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # anything else it would send is sent by now
    assert _delay_server.stats(base)["requests"] == 4  # each date's head, then the window's one tile
    with dask.config.set({"pyr.read-ahead": 0}):  # nothing else ahead: every other request is a read's own
        got = cube.data[:, :, :, 256:].compute(scheduler="sync")
    stats = _delay_server.stats(base, reset=True)
    assert stats["requests"] == 4 + 2  # the first date's head and tile; dates 1 and 2 took what was fetched ahead
    np.testing.assert_array_equal(got[:, 0], np.stack(arrays)[:, :, 256:])


def test_the_dates_after_those_only_have_their_layout_read_ahead(slow_server):
    """``layouts=`` sources (the dates beyond the ones fetched ahead) get their head read, not their tiles; their
    first read then costs the tiles' round trip only."""
    import time

    base, root = slow_server
    arrays = [cog_array((256, 256), seed=40 + k) for k in range(2)]
    for k, a in enumerate(arrays):
        write_cog(root / f"later{k}.tif", a, block=256)
    urls = [f"{base}/later{k}.tif" for k in range(2)]
    cube = pyr.read_cube(urls, env=ENV)
    layouts_read_ahead()  # the build's own request is in before the count starts
    cog_read.clear_cache()
    _delay_server.stats(base, reset=True)
    prefetch([], (1,), (0, 256, 0, 256), layouts=[source_spec(urls[1], env=ENV)])
    deadline = time.monotonic() + 30
    while _delay_server.stats(base)["requests"] < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert _delay_server.stats(base)["requests"] == 1  # the head only
    with dask.config.set({"pyr.read-ahead": 0}):
        got = cube.data.compute(scheduler="sync")
    assert _delay_server.stats(base, reset=True)["requests"] == 1 + 2 + 1  # + date 0's head and tile, date 1's tile
    np.testing.assert_array_equal(got[:, 0], np.stack(arrays))


def test_a_lazy_read_of_a_url_fetches_its_layout_while_gdal_opens_it(slow_server):
    """Building ``read`` (GDAL opens the URL for the header) also starts reading the native layout, so the first
    chunk task sends only its tiles' request."""
    base, root = slow_server
    write_cog(root / "one.tif", cog_array((256, 256), seed=50), block=256)
    url = f"{base}/one.tif"
    cog_read.clear_cache()
    r = pyr.read(url, chunks=(256, 256), env=ENV)
    assert layouts_read_ahead() == 1
    _delay_server.stats(base, reset=True)
    out = r.data.compute(scheduler="sync")
    assert _delay_server.stats(base, reset=True)["requests"] == 1  # the tile; the head was read during the build
    np.testing.assert_array_equal(out, pyr.read(root / "one.tif").data)
