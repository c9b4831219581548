"""Reading COGs over HTTP from a real Range-capable server on loopback.

What is shown: a lazy read over HTTP equals the local read; building the
graph costs the header only (one HEAD and one GET of that file, nothing
else); each chunk costs one request per run of consecutive tiles (one per
chunk with multipart ranges); ``read_cube`` over 20 URLs touches one before
compute; 404, 503 and stalled servers give a ``ReadError`` naming the URL (or
a success after retries), never a hang, and never leave GDAL's per-process
cache poisoned; credentials (headers) and signed query strings never leak
into messages, and data fetched with one set of headers is not served to a
task holding another.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from servers import (
    FAST,
    SECRET,
    cog_array,
    layouts_read_ahead,
    no_network_options,
    parse_range_header,
    serve,
    tile_ranges,
    write_cog,
)

import pyr
from pyr import ReadError, cloud_env
from pyr.io.cog import read as cog_read
from pyr.io.gdal.env import NETWORK_DEFAULTS
from pyr.testing import assert_raster_equal, raise_if_dask_computes

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.network, pytest.mark.usefixtures("offline_aws_module"), pytest.mark.timeout(120)]

ENV = cloud_env(**FAST)


def gets(server, name):
    return server.requests(name, method="GET")


def test_lazy_http_read_equals_local_read_and_opens_only_the_header(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    cog_read.clear_cache()  # layouts other tests read ahead are not counted
    with raise_if_dask_computes():
        remote = pyr.read(url, chunks=(512, 512), env=ENV)
    assert remote.is_lazy
    # graph building: the header of this file only (a HEAD for its size, GDAL's GET of the header, and
    # the native reader's GET of the head holding the tile index, made meanwhile)
    native = layouts_read_ahead()
    assert native == 1
    assert {p for p in http_server.paths() if name.split("/")[0] in p} == {"/" + name}
    assert http_server.requests(name, method="HEAD") <= 1
    assert gets(http_server, name) == 1 + native
    assert http_server.bytes_sent(name) <= 65536 * (1 + native)
    assert_raster_equal(remote, pyr.read(path))
    np.testing.assert_array_equal(remote.data.compute(scheduler="threads")[0], data)
    assert http_server.paths() >= {"/" + name}
    assert not any(p.startswith("/" + name + ".") for p in http_server.paths())  # no .aux.xml, .ovr, .msk


def _per_chunk_requests(server, name, raster):
    """Compute the chunks one by one (sync).

    Returns {(i, j): (Range headers of the chunk's GETs, every range fetched so far)}:
    GDAL keeps what it fetched, so a tile may come partly from an earlier request.
    """
    layouts_read_ahead()  # the build's own requests are in before the count starts
    out = {}
    nby, nbx = raster.data.numblocks[1:]
    for i in range(nby):
        for j in range(nbx):
            before = len(server.ranges(name))
            raster.data.blocks[0, i, j].compute(scheduler="sync")
            headers = server.ranges(name)
            out[(i, j)] = (headers[before:], [rng for h in headers for rng in parse_range_header(h)])
    return out


def _chunk_tiles(raster, tiles, block=256):
    """(i, j) -> the (offset, size) of the tiles inside chunk (i, j)."""
    out = {}
    y0 = 0
    for i, cy in enumerate(raster.data.chunks[1]):
        x0 = 0
        for j, cx in enumerate(raster.data.chunks[2]):
            out[(i, j)] = [
                tiles[(ti, tj)]
                for ti in range(y0 // block, -(-(y0 + cy) // block))
                for tj in range(x0 // block, -(-(x0 + cx) // block))
            ]
            x0 += cx
        y0 += cy
    return out


def _covers(ranges, tiles):
    """Whether the union of ``ranges`` holds every byte of ``tiles``."""
    have = sorted(ranges)
    for off, size in tiles:
        pos, end = off, off + size - 1
        for a, b in have:
            if a <= pos <= b:
                pos = b + 1
        if pos <= end:
            return False
    return True


def test_full_width_chunks_cost_one_merged_request_each(http_server, cog, monkeypatch):
    monkeypatch.setenv("PYR_NATIVE", "0")  # GDAL's requests (tests/test_cog_http.py has pyr's own)
    path, data = cog
    name, url = serve(http_server, path)
    r = pyr.read(url, chunks=(256, 1024), env=ENV)  # one tile row (4 consecutive tiles) per chunk
    requests = _per_chunk_requests(http_server, name, r)
    expected = _chunk_tiles(r, tile_ranges(path))
    for key, (headers, fetched_so_far) in requests.items():
        assert len(headers) == 1, (key, headers)
        assert len(parse_range_header(headers[0])) == 1  # the 4 tiles merged into one range
        assert _covers(fetched_so_far, expected[key])
    # All chunks together fetch the full-resolution tiles and not the overviews
    # (GDAL rounds ranges out to 16 KiB blocks, and reads ahead when a handle
    # reads sequentially, so a chunk may bring part of the next one).
    data_bytes = sum(b - a + 1 for h in http_server.ranges(name)[1:] for a, b in parse_range_header(h))
    assert data_bytes <= sum(size for _, size in tile_ranges(path).values()) + 2 * 16384
    np.testing.assert_array_equal(r.data.compute(scheduler="sync")[0], data)


@pytest.mark.parametrize("mode", ["SINGLE_GET", "YES"])
def test_square_chunks_requests(http_server, cog, mode, monkeypatch):
    # 512 x 512 chunks span two tile rows, which are not adjacent in the file.
    # SINGLE_GET: one multipart request per chunk; YES (the default): at most
    # one request per tile row, issued in parallel.
    monkeypatch.setenv("PYR_NATIVE", "0")  # GDAL's requests (tests/test_cog_http.py has pyr's own)
    path, data = cog
    name, url = serve(http_server, path)
    r = pyr.read(url, chunks=(512, 512), env=cloud_env(**FAST, GDAL_HTTP_MULTIRANGE=mode))
    requests = _per_chunk_requests(http_server, name, r)
    expected = _chunk_tiles(r, tile_ranges(path))
    for key, (headers, fetched_so_far) in requests.items():
        tile_rows = 2 if key[0] == 0 else 1
        if mode == "SINGLE_GET":
            assert len(headers) == 1, (key, headers)
            assert len(parse_range_header(headers[0])) == tile_rows  # bytes=a-b,c-d
        else:
            assert 1 <= len(headers) <= tile_rows, (key, headers)
        assert _covers(fetched_so_far, expected[key])
    np.testing.assert_array_equal(r.data.compute(scheduler="sync")[0], data)


def test_read_cube_over_20_urls_opens_one_before_compute(http_server, tmp_path):
    paths, arrays = [], []
    for k in range(20):
        a = cog_array((256, 256), seed=k)
        paths.append(write_cog(tmp_path / f"d{k:02d}.tif", a, block=128))
        arrays.append(a)
    served = [serve(http_server, p, prefix="cube-") for p in paths]
    names, urls = [n for n, _ in served], [u for _, u in served]
    with raise_if_dask_computes():
        cube = pyr.read_cube(urls, chunks=(128, 128), env=ENV)
    touched = [n for n in names if http_server.requests(n)]
    assert touched == names[:1]
    assert cube.data.shape == (20, 1, 256, 256)
    values = cube.data.compute(scheduler="threads")
    np.testing.assert_array_equal(values[:, 0], np.stack(arrays))
    assert all(http_server.requests(n) for n in names)


# --- failures ---------------------------------------------------------------------------


def test_404_is_a_read_error_naming_the_url(http_server):
    name = "missing/B04.tif"
    http_server.fail(name, 404)
    url = http_server.url(name)
    with pytest.raises(ReadError, match=r"missing/B04\.tif") as info:
        pyr.read(url, chunks=256, env=ENV)
    assert url in str(info.value)
    assert "/vsicurl/" not in str(info.value)  # the user's URL, not GDAL's path


def test_read_errors_survive_distributed_serialisation(http_server, cog):
    # distributed pickles a task's error with its whole exception chain; pyr's
    # errors carry none of rasterio's (unpicklable) exceptions, so a cluster
    # user gets the ReadError itself, not a bare Exception.
    core = pytest.importorskip("distributed.core")
    from distributed.protocol.pickle import loads

    path, _ = cog
    name, url = serve(http_server, path)
    r = pyr.read(url, chunks=(256, 1024), env=ENV)
    http_server.fail(name, 404)
    for action in (lambda: r.data.compute(scheduler="sync"), lambda: pyr.read(url + ".missing", env=ENV)):
        with pytest.raises(ReadError) as info:
            action()
        assert info.value.__context__ is None
        again = loads(core.error_message(info.value)["exception"].data)
        assert type(again) is ReadError
        assert str(again) == str(info.value)
    http_server.heal(name)


def test_signed_url_errors_never_show_the_signature(http_server):
    name = "signed/B04.tif"
    http_server.fail(name, 403)
    url = http_server.url(name, query=f"X-Amz-Signature={SECRET}&sig={SECRET}")
    with pytest.raises(ReadError) as info:
        pyr.read(url, env=ENV)
    assert SECRET not in str(info.value)
    assert http_server.url(name) + "?..." in str(info.value)


def test_503_twice_then_success_is_retried(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    http_server.fail(name, 503, times=2)
    r = pyr.read(url, chunks=(256, 1024), env=ENV)  # GDAL_HTTP_MAX_RETRY=3, small delay
    assert http_server.requests(name) >= 3  # two 503s, then the file
    np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)


def test_a_failure_does_not_poison_the_process(http_server, cog):
    # GDAL caches a failed URL for the life of the process; pyr drops that
    # cache entry, so the same URL reads once the server has recovered.
    path, data = cog
    name, url = serve(http_server, path)
    http_server.fail(name, 503)  # every retry fails
    with pytest.raises(ReadError, match="503"):
        pyr.read(url, env=ENV)
    http_server.heal(name)
    np.testing.assert_array_equal(pyr.read(url, env=ENV).data[0], data)
    # and a failure during a chunk read, after a good open
    name2, url2 = serve(http_server, path)
    r = pyr.read(url2, chunks=(256, 1024), env=ENV)
    http_server.fail(name2, 503)
    with pytest.raises(ReadError, match="503"):
        r.data.compute(scheduler="sync")
    http_server.heal(name2)
    np.testing.assert_array_equal(r.data.compute(scheduler="sync")[0], data)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("after_bytes", [None, 100], ids=["before-headers", "mid-body"])
def test_stalled_server_is_a_read_error_not_a_hang(http_server, cog, after_bytes):
    path, _ = cog
    name, url = serve(http_server, path)
    env = cloud_env(**{**FAST, "GDAL_HTTP_MAX_RETRY": "0", "GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_LOW_SPEED_TIME": "1"})
    r = pyr.read(url, chunks=(256, 1024), env=env)  # the header is served
    http_server.stall(name, 30, after_bytes=after_bytes)  # then the server stops answering
    with pytest.raises(ReadError, match=name.replace(".", r"\.")):
        r.data.compute(scheduler="sync")
    http_server.heal(name)


# --- credentials (HTTP headers) --------------------------------------------------------------


def test_data_fetched_with_a_header_is_not_served_to_a_task_without_it(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    http_server.protect(name, "X-Pyr-Token", SECRET)
    with_token = cloud_env(**FAST, GDAL_HTTP_HEADERS=f"X-Pyr-Token: {SECRET}")
    np.testing.assert_array_equal(pyr.read(url, env=with_token).data[0], data)
    before = http_server.requests(name)
    with pytest.raises(ReadError, match="403") as info:
        pyr.read(url, env=ENV)  # GDAL has this URL cached; pyr makes it ask the server again
    assert http_server.requests(name) > before
    assert SECRET not in str(info.value)
    np.testing.assert_array_equal(pyr.read(url, env=with_token).data[0], data)


@pytest.mark.slow
def test_env_travels_with_the_tasks_to_the_processes_scheduler(http_server, cog):
    # The server wants a token header that only the read's env carries: the
    # chunks read in other processes succeed only because the env went with them.
    path, data = cog
    name, url = serve(http_server, path)
    http_server.protect(name, "X-Pyr-Token", SECRET)
    r = pyr.read(url, chunks=(256, 1024), env=cloud_env(**FAST, GDAL_HTTP_HEADERS=f"X-Pyr-Token: {SECRET}"))
    http_server.reset()
    values = r.data.compute(scheduler="processes", num_workers=2)
    np.testing.assert_array_equal(values[0], data)
    assert http_server.requests(name, method="GET") >= 3  # the chunks were fetched by the workers


def test_server_counts_a_body_before_the_client_has_it(http_server):
    """The test server's byte count is final once a response is read.

    It once counted each piece after writing it, so a client that read the
    whole body could look before the count moved (seen in CI: the
    ``RangeServer`` doctest read 0 bytes sent after reading 3).
    """
    import urllib.request

    url = http_server.put("count.bin", bytes(range(256)) * 4)
    expected = 0
    for i in range(300):
        a = i % 1000
        req = urllib.request.Request(url, headers={"Range": f"bytes={a}-{a + 9}"})
        with urllib.request.urlopen(req) as resp:
            assert resp.read() == (bytes(range(256)) * 4)[a : a + 10]
        expected += 10
        assert http_server.bytes_sent("count.bin") == expected, f"request {i}"
    assert http_server.requests("count.bin") == 300


def test_a_tokenless_task_never_breaks_a_concurrent_task_with_the_token(http_server, cog):
    # One thread reads with the token while another reads without it, at the
    # same time in one process: every tokenless read is a 403 ReadError, every
    # read with the token gets the pixels. (GDAL caches a URL's failures for
    # the whole process; before pyr's access gate, the tokenless thread's 403
    # made the other thread's block reads fail with "IReadBlock failed".)
    import threading

    path, data = cog
    name, url = serve(http_server, path)
    http_server.protect(name, "X-Pyr-Token", SECRET)
    with_token = cloud_env(**FAST, GDAL_HTTP_HEADERS=f"X-Pyr-Token: {SECRET}")
    outcomes: dict[str, list[str]] = {"token": [], "none": []}
    token_done = threading.Event()

    def read(tag: str, env) -> None:
        try:
            got = pyr.read(url, chunks=128, env=env).data.compute(scheduler="sync")[0]
            outcomes[tag].append("equal" if np.array_equal(got, data) else "different")
        except ReadError as err:
            outcomes[tag].append("403" if "403" in str(err) else f"error: {err}")

    def with_the_token() -> None:
        for _ in range(10):
            read("token", with_token)
        token_done.set()

    def without() -> None:  # all the while the other thread reads
        while not token_done.is_set():
            read("none", ENV)

    threads = [threading.Thread(target=with_the_token), threading.Thread(target=without)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert outcomes["token"] == ["equal"] * 10
    assert outcomes["none"]
    assert set(outcomes["none"]) == {"403"}


# --- without env=: defaults that keep every network read from hanging ------------------------
# These reads run in a child process: GDAL may hold the GIL while it waits on the
# network, and a read that hangs must fail the test, not stall the suite.

_ROOT = Path(__file__).resolve().parents[1]


def _child(code: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python with this checkout's pyr and no GDAL network option set."""
    env = {k: v for k, v in os.environ.items() if k not in NETWORK_DEFAULTS}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=_ROOT, env=env
    )


def _read_sum(url: str) -> str:
    """Code that reads ``url`` eagerly without env= and prints the sum of its pixels."""
    return f"import pyr; r = pyr.read({url!r}); print(int(r.data.sum()))"


def test_without_env_an_open_lists_no_directory_and_probes_no_sidecar(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    out = _child(_read_sum(url))
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == int(data.sum())
    folder = name.split("/")[0]
    assert {p for p in http_server.paths() if folder in p} == {"/" + name}  # no "/folder/", no .aux.xml, .ovr ...


def test_without_env_503_then_200_is_retried(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    http_server.fail(name, 503, times=2)
    out = _child(_read_sum(url))
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == int(data.sum())
    assert http_server.requests(name) >= 3  # two 503s, then the file


def test_without_env_a_reset_connection_is_retried(http_server, cog):
    path, data = cog
    name, url = serve(http_server, path)
    http_server.drop(name, times=2)  # the first two connections are reset, no answer
    out = _child(_read_sum(url))
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) == int(data.sum())
    assert http_server.requests(name) >= 3


def test_a_server_that_never_answers_is_a_read_error_naming_the_url(http_server, cog):
    path, _ = cog
    name, url = serve(http_server, path)
    http_server.stall(name, 20)  # accepts the connection, never sends a byte
    env = {"GDAL_HTTP_TIMEOUT": "2", "GDAL_HTTP_MAX_RETRY": "1", "GDAL_HTTP_RETRY_DELAY": "0.1"}
    code = (
        "import pyr\n"
        f"try:\n    pyr.read({url!r}, env={env!r})\n"
        "except pyr.ReadError as err:\n    print('ReadError:', err)\n"
    )
    out = _child(code, timeout=60)
    http_server.heal(name)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.startswith("ReadError:"), out.stdout
    assert url in out.stdout  # the user's URL ...
    assert "timed out" in out.stdout.lower() or "timeout" in out.stdout.lower()  # ... and GDAL's reason


# --- credentials inside URLs ------------------------------------------------------------------


def test_credentials_in_a_url_never_show(http_server, cog, caplog, capsys):
    # http://user:password@host/... : not in ReadError, read_cube's on_error
    # log lines, check_sources' answer or pyr info's output.
    from pyr.cli import main
    from pyr.io.cube import LOGGER_NAME

    path, _ = cog
    name, url = serve(http_server, path)
    good = url.replace("http://", f"http://reader:{SECRET}@")
    missing = good.replace(".tif", "-missing.tif")
    http_server.fail(name.replace(".tif", "-missing.tif"), 404)
    with pytest.raises(ReadError) as info:
        pyr.read(missing, env=ENV)
    assert SECRET not in str(info.value)
    assert "http://***@127.0.0.1" in str(info.value)
    cube = pyr.read_cube([good, missing], chunks=512, env=ENV, on_error="nodata")
    with caplog.at_level("WARNING", logger=LOGGER_NAME):
        cube.data.compute(scheduler="sync")
    assert any("-missing.tif" in r.getMessage() for r in caplog.records)
    assert SECRET not in caplog.text
    bad = pyr.check_sources([good, missing], env=ENV)
    assert len(bad) == 1
    assert SECRET not in repr(bad)
    assert main(["info", good]) == 0
    assert main(["info", missing]) != 0
    shown = capsys.readouterr()
    assert "reader:" not in shown.out + shown.err
    assert SECRET not in shown.out + shown.err
    assert "http://***@127.0.0.1" in shown.out


def test_every_network_open_and_read_runs_under_the_network_defaults(http_server, cog, monkeypatch):
    # what test_env shows for the options, checked where GDAL opens and reads
    import rasterio
    from rasterio.env import get_gdal_config

    from pyr.io.gdal import handles

    path, data = cog
    _, url = serve(http_server, path)
    seen: list[dict[str, str | None]] = []
    real_open = rasterio.open

    def recording_open(*args, **kwargs):
        seen.append({k: get_gdal_config(k, normalize=False) for k in NETWORK_DEFAULTS})
        return real_open(*args, **kwargs)

    monkeypatch.setattr(handles.rasterio, "open", recording_open)
    handles.close_all()
    with no_network_options():
        r = pyr.read(url, chunks=(256, 1024))
        np.testing.assert_array_equal(r.data.compute(scheduler="threads")[0], data)
    assert seen
    assert all(s == dict(NETWORK_DEFAULTS) for s in seen), seen
