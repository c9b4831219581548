"""Real servers on loopback for the cloud tests (and the HTTP benchmarks).

:class:`RangeServer` is a stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (an
ephemeral port) serving files from memory or a folder with HTTP/1.1 Range
support: single ranges (206 + ``Content-Range``), multi-range requests
``bytes=a-b,c-d`` (206 ``multipart/byteranges``), suffix and open ranges,
416 when unsatisfiable, and ``HEAD``. It counts requests and bytes per path,
logs every request (method, path, Range header), and fails on demand: a
status code always or for the first K requests (404, 503, ...), a
connection reset (RST, no answer) always or for the first K requests, or a
connection that stalls (before the headers or in the middle of the body).

Because it ignores authentication headers it also answers path-style S3
requests (``GET /bucket/key``), so GDAL's ``/vsis3/`` can be pointed at it
with ``AWS_S3_ENDPOINT``: a second "S3 endpoint" serving other bytes under
the same bucket and key as the moto server.

:func:`moto_s3` starts moto's standalone S3 server on loopback.
:func:`serve_directory` is the small interface the benchmarks use.
The last section holds what the cloud tests share besides fixtures (those
are in ``conftest_cloud.py``): an offline AWS environment, GDAL settings for
fast failures, the S3 env and s3fs options of the moto server, COG writers.

Every server binds 127.0.0.1 only and stops by itself when its context exits;
a stalled handler waits at most ``stall`` seconds and is released at stop.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
import time
import uuid
from collections import Counter as _Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import numpy as np
import rasterio
from affine import Affine

from pyr import cloud_env
from pyr.testing._loopback import LoopbackServer

__all__ = ["Fault", "RangeServer", "free_port", "moto_s3", "parse_ranges", "serve_directory"]

_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")
BOUNDARY = "pyr-test-boundary-3d6b6a416f9b"


def parse_ranges(header: str, size: int) -> list[tuple[int, int]] | None:
    """The inclusive byte ranges of a ``Range`` header, clipped to ``size``.

    ``None`` when the header is absent or not a ``bytes=`` header (serve the
    whole file); an empty list when no range is satisfiable (416).

    >>> parse_ranges("bytes=0-9,20-", 25)
    [(0, 9), (20, 24)]
    >>> parse_ranges("bytes=-5", 25)
    [(20, 24)]
    >>> parse_ranges("bytes=30-40", 25)
    []
    """
    header = header.strip()
    if not header.startswith("bytes="):
        return None
    out: list[tuple[int, int]] = []
    for part in header[len("bytes=") :].split(","):
        m = _SPEC.match(part)
        if m is None or (not m.group(1) and not m.group(2)):
            return None  # malformed: ignore the header, as RFC 9110 allows
        if not m.group(1):  # suffix: the last N bytes
            n = int(m.group(2))
            if n > 0 and size > 0:
                out.append((max(size - n, 0), size - 1))
            continue
        start = int(m.group(1))
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size or end < start:
            continue
        out.append((start, min(end, size - 1)))
    return out


@dataclass
class Fault:
    """How requests to one path fail.

    ``status``: answer with this HTTP status (e.g. 404, 503) instead of the
    file, for the first ``times`` requests (every request when ``None``).
    ``stall``: seconds to hold the connection without finishing it;
    ``after_bytes``: how many body bytes to send first (``None``: stall
    before sending any header). ``reset``: close the connection with a TCP
    reset instead of answering.
    """

    status: int | None = None
    reset: bool = False
    times: int | None = None
    stall: float = 0.0
    after_bytes: int | None = None
    hits: int = 0


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (timeouts, aborted size probes) are not errors here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class RangeServer(LoopbackServer):
    """A Range-capable HTTP server on 127.0.0.1 that counts what it serves.

    Use as a context manager (or ``start()``/``stop()``); files come from
    ``root`` (a folder) and/or :meth:`put` (bytes kept in memory, which win).

    >>> with RangeServer() as srv:
    ...     url = srv.put("a.bin", b"0123456789")
    ...     import urllib.request
    ...     req = urllib.request.Request(url, headers={"Range": "bytes=2-4"})
    ...     urllib.request.urlopen(req).read(), srv.requests("a.bin"), srv.bytes_sent("a.bin")
    (b'234', 1, 3)
    """

    server_class = _QuietServer
    thread_name = "range-server"

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        super().__init__()
        self.root = None if root is None else Path(root).resolve()
        self._files: dict[str, bytes] = {}
        self._faults: dict[str, Fault] = {}
        self._required: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.log: list[tuple[str, str, str | None]] = []  # (method, path, Range header)
        self._bytes: _Counter[str] = _Counter()

    # -- lifecycle -------------------------------------------------------------
    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The Range-capable handler serving this server's files and faults."""
        return _handler_for(self)

    def start(self) -> Self:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        self._released.clear()
        return super().start()

    def stop(self) -> None:
        """Release stalled handlers and stop serving."""
        self._released.set()
        super().stop()

    # -- content and faults ----------------------------------------------------
    @property
    def endpoint(self) -> str:
        """``127.0.0.1:port`` (what GDAL's ``AWS_S3_ENDPOINT`` takes)."""
        return f"127.0.0.1:{self.port}"

    def url(self, name: str, query: str = "") -> str:
        """The URL of ``name`` (with ``?query`` when given)."""
        return f"{self.base_url}/{name.lstrip('/')}" + (f"?{query}" if query else "")

    def put(self, name: str, data: bytes) -> str:
        """Serve ``data`` at ``/name``; return its URL."""
        with self._lock:
            self._files["/" + name.lstrip("/")] = bytes(data)
        return self.url(name)

    def fail(self, name: str, status: int = 404, *, times: int | None = None) -> None:
        """Answer requests to ``name`` with ``status`` (the first ``times`` ones only, if given)."""
        with self._lock:
            self._faults["/" + name.lstrip("/")] = Fault(status=status, times=times)

    def drop(self, name: str, *, times: int | None = None) -> None:
        """Reset the connection (TCP RST, no answer) of requests to ``name`` (the first ``times`` ones only)."""
        with self._lock:
            self._faults["/" + name.lstrip("/")] = Fault(reset=True, times=times)

    def stall(self, name: str, seconds: float, *, after_bytes: int | None = None) -> None:
        """Hold requests to ``name`` open for ``seconds`` (after ``after_bytes`` body bytes, if given)."""
        with self._lock:
            self._faults["/" + name.lstrip("/")] = Fault(stall=seconds, after_bytes=after_bytes)

    def protect(self, name: str, header: str, value: str) -> None:
        """Answer 403 to requests for ``name`` that lack ``header: value``."""
        with self._lock:
            self._required["/" + name.lstrip("/")] = (header, value)

    def heal(self, name: str) -> None:
        """Remove the fault set on ``name``."""
        with self._lock:
            self._faults.pop("/" + name.lstrip("/"), None)

    # -- counts ----------------------------------------------------------------
    def requests(self, name: str | None = None, *, method: str | None = None) -> int:
        """Requests received (for ``name``, of ``method``), failed ones included."""
        key = None if name is None else "/" + name.lstrip("/")
        with self._lock:
            return sum(1 for m, p, _ in self.log if (key is None or p == key) and (method is None or m == method))

    def ranges(self, name: str) -> list[str | None]:
        """The Range headers of the GET requests for ``name``, in order."""
        key = "/" + name.lstrip("/")
        with self._lock:
            return [r for m, p, r in self.log if m == "GET" and p == key]

    def paths(self) -> set[str]:
        """Every path requested so far."""
        with self._lock:
            return {p for _, p, _ in self.log}

    def bytes_sent(self, name: str | None = None) -> int:
        """Body bytes sent (for ``name``, or in all)."""
        with self._lock:
            if name is None:
                return sum(self._bytes.values())
            return self._bytes["/" + name.lstrip("/")]

    def reset(self) -> None:
        """Forget the counts and the log (files and faults stay)."""
        with self._lock:
            self.log.clear()
            self._bytes.clear()

    # -- used by the handler ---------------------------------------------------
    def _record(self, method: str, path: str, rng: str | None) -> Fault | None:
        with self._lock:
            self.log.append((method, path, rng))
            fault = self._faults.get(path)
            if fault is None:
                return None
            fault.hits += 1
            if fault.times is not None and fault.hits > fault.times:
                return None
            return fault

    def _count(self, path: str, n: int) -> None:
        with self._lock:
            self._bytes[path] += n

    def _content(self, path: str) -> bytes | None:
        with self._lock:
            data = self._files.get(path)
        if data is not None or self.root is None:
            return data
        full = (self.root / path.lstrip("/")).resolve()
        if self.root not in full.parents or not full.is_file():
            return None
        return _FileBytes(full)  # type: ignore[return-value]


class _FileBytes:
    """A large file read on demand (so a 200 MB benchmark COG is not held in memory)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __len__(self) -> int:
        return self.path.stat().st_size

    def __getitem__(self, item: slice) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(item.start)
            return f.read(item.stop - item.start)


def _handler_for(srv: RangeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "pyr-test-range"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            rng = self.headers.get("Range")
            fault = srv._record(self.command, path, rng)
            if fault is not None and fault.reset:
                # SO_LINGER 0: close() sends a RST at once ("Connection reset by peer")
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
                self.close_connection = True
                return
            if fault is not None and fault.stall and fault.after_bytes is None:
                srv._released.wait(fault.stall)
                self.close_connection = True
                return
            if fault is not None and fault.status is not None:
                self._status_only(fault.status)
                return
            required = srv._required.get(path)
            if required is not None and self.headers.get(required[0]) != required[1]:
                self._status_only(403)
                return
            data = srv._content(path)
            if data is None:
                self._status_only(404)
                return
            size = len(data)
            ranges = parse_ranges(rng, size) if rng else None
            if ranges is not None and not ranges:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if ranges is None:
                self._send(200, [("Content-Type", "application/octet-stream")], data[0:size], head, fault)
            elif len(ranges) == 1:
                a, b = ranges[0]
                headers = [("Content-Type", "application/octet-stream"), ("Content-Range", f"bytes {a}-{b}/{size}")]
                self._send(206, headers, data[a : b + 1], head, fault)
            else:
                parts = []
                for a, b in ranges:
                    parts.append(
                        f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\n"
                        f"Content-Range: bytes {a}-{b}/{size}\r\n\r\n".encode()
                    )
                    parts.append(data[a : b + 1])
                    parts.append(b"\r\n")
                parts.append(f"--{BOUNDARY}--\r\n".encode())
                headers = [("Content-Type", f"multipart/byteranges; boundary={BOUNDARY}")]
                self._send(206, headers, b"".join(parts), head, fault)

        def _status_only(self, status: int) -> None:
            body = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _send(
            self, status: int, headers: list[tuple[str, str]], body: bytes, head: bool, fault: Fault | None
        ) -> None:
            path = unquote(urlsplit(self.path).path)
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if head:
                return
            if fault is not None and fault.stall:
                first = body[: fault.after_bytes or 0]
                srv._count(path, len(first))
                self.wfile.write(first)
                self.wfile.flush()
                srv._released.wait(fault.stall)
                self.close_connection = True
                return
            # Count what really left, piece by piece. Each piece is counted
            # *before* it is written (and uncounted if the write fails): a
            # client that has read the whole body must see it counted, and the
            # client can finish reading before this thread runs again.
            view = memoryview(body)
            for start in range(0, len(body), 1 << 16):
                piece = view[start : start + (1 << 16)]
                srv._count(path, len(piece))
                try:
                    self.wfile.write(piece)
                except (BrokenPipeError, ConnectionResetError):  # the client hung up (timeouts, size probes)
                    srv._count(path, -len(piece))
                    self.close_connection = True
                    return

    return Handler


class _Tally:
    """Requests and bytes served, the interface ``benchmarks/run.py`` reads."""

    def __init__(self, server: RangeServer) -> None:
        self._server = server

    @property
    def bytes(self) -> int:
        return self._server.bytes_sent()

    @property
    def requests(self) -> int:
        return self._server.requests()

    def reset(self) -> None:
        self._server.reset()


@contextmanager
def serve_directory(root: str | os.PathLike[str]) -> Iterator[tuple[str, _Tally]]:
    """Serve the folder ``root`` on loopback; yield (base URL, tally with ``bytes``/``requests``/``reset()``)."""
    with RangeServer(root) as srv:
        yield srv.base_url, _Tally(srv)


@contextmanager
def moto_s3() -> Iterator[str]:
    """moto's standalone S3 server on 127.0.0.1 (a free port); yield its ``host:port``.

    moto keeps its buckets in this process, shared by every moto server in it:
    give each test its own bucket.
    """
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        _wait_listening(host, port)
        yield f"{host}:{port}"
    finally:
        server.stop()


def _wait_listening(host: str, port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def free_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- settings and data for the cloud tests -------------------------------------------

SECRET = "SECRET-c0ffee-42"
KEY_ID = "AKIDPYRTEST0000"
TRANSFORM = Affine(10.0, 0.0, 600000.0, 0.0, -10.0, 5700000.0)

# GDAL retries and timeouts small enough for tests on loopback.
FAST = {
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "0.05",
    "GDAL_HTTP_CONNECTTIMEOUT": "3",
    "GDAL_HTTP_TIMEOUT": "10",
    "GDAL_HTTP_LOW_SPEED_TIME": "2",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
}
_DECOY_PORT = free_port()
OFFLINE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/pyr-test-aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/pyr-test-aws-credentials",
    "CPL_AWS_CREDENTIALS_FILE": "/nonexistent/pyr-test-aws-credentials",
    "AWS_S3_ENDPOINT": f"127.0.0.1:{_DECOY_PORT}",  # a closed port: never the real AWS
    "AWS_HTTPS": "NO",
    "AWS_VIRTUAL_HOSTING": "FALSE",
    "NO_PROXY": "127.0.0.1,localhost",
    "no_proxy": "127.0.0.1,localhost",
}
_REMOVED = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_NO_SIGN_REQUEST",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@contextmanager
def restored_environ() -> Iterator[None]:
    """Restore ``os.environ`` and GDAL's process-wide config of the touched keys on exit."""
    from rasterio._env import del_gdal_config, set_gdal_config

    before = dict(os.environ)
    try:
        yield
    finally:
        touched = set(before) ^ set(os.environ) | {k for k in before if os.environ.get(k) != before[k]}
        os.environ.clear()
        os.environ.update(before)
        for key in touched:  # undo what configure() / rasterio set process-wide
            if key in before:
                set_gdal_config(key, before[key], normalize=False)
            else:
                del_gdal_config(key)


@contextmanager
def no_network_options() -> Iterator[None]:
    """None of pyr's network-default options set anywhere GDAL looks, for the block (restored after)."""
    from rasterio._env import del_gdal_config, get_gdal_config, set_gdal_config

    from pyr.io.gdal.env import NETWORK_DEFAULTS

    with restored_environ():
        before = {k: get_gdal_config(k, normalize=False) for k in NETWORK_DEFAULTS}
        for key in NETWORK_DEFAULTS:
            os.environ.pop(key, None)
            del_gdal_config(key)
        try:
            yield
        finally:
            for key, value in before.items():
                if value is None:
                    del_gdal_config(key)
                else:
                    set_gdal_config(key, value, normalize=False)


@contextmanager
def offline_aws() -> Iterator[None]:
    """Dummy AWS settings in ``os.environ`` and GDAL's process-wide config; restored on exit.

    GDAL's process-wide config wins over ``os.environ``, and an earlier
    ``configure(aws={"aws_unsigned": True})`` in this process leaves its
    options there: both are set here.
    """
    from rasterio._env import del_gdal_config, set_gdal_config

    with restored_environ():
        for key in _REMOVED:
            os.environ.pop(key, None)  # an old value comes back on exit
            del_gdal_config(key)
        os.environ.update(OFFLINE_AWS)
        for key, value in OFFLINE_AWS.items():
            set_gdal_config(key, value, normalize=False)
        yield


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=f"http://{endpoint}",
        region_name="us-east-1",
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET,
    )


def s3_env(endpoint: str, **extra: Any) -> Any:
    """The GDAL env that reaches the moto server (with the test secret as credentials)."""
    aws = {
        "endpoint": f"http://{endpoint}",
        "virtual_hosting": False,
        "region": "us-east-1",
        "access_key_id": KEY_ID,
        "secret_access_key": SECRET,
    }
    return cloud_env(aws=aws, **{**FAST, **extra})


def storage_options(endpoint: str) -> dict[str, Any]:
    """s3fs options for the moto server (with the test secret)."""
    return {
        "key": KEY_ID,
        "secret": SECRET,
        "client_kwargs": {"endpoint_url": f"http://{endpoint}", "region_name": "us-east-1"},
    }


def put_object(endpoint: str, bucket: str, key: str, data: bytes) -> str:
    s3_client(endpoint).put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def all_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    """Every object of ``bucket``: key -> bytes."""
    client = s3_client(endpoint)
    out = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def cog_array(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Smooth-ish uint16 pixels (compressible like imagery) with a nodata (0) corner."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    a = 1000 + 3 * x + 2 * y + rng.integers(0, 200, shape)
    a[: rows // 8, : cols // 8] = 0
    return a.astype("uint16")


def write_cog(path: Path, data: np.ndarray, *, block: int = 256, nodata: int | None = 0) -> Path:
    """A COG (GDAL's COG driver: tiled, DEFLATE, overviews, header first)."""
    profile: dict[str, Any] = {
        "driver": "COG",
        "width": data.shape[1],
        "height": data.shape[0],
        "count": 1,
        "dtype": str(data.dtype),
        "crs": "EPSG:32631",
        "transform": TRANSFORM,
        "compress": "DEFLATE",
        "blocksize": block,
        "overview_resampling": "average",
    }
    if nodata is not None:
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
    return path


def tile_ranges(path: Path) -> dict[tuple[int, int], tuple[int, int]]:
    """(tile row, tile col) -> (offset, size) of the full-resolution tiles, from GDAL's TIFF metadata."""
    out = {}
    with rasterio.open(path) as ds:
        by, bx = ds.block_shapes[0]
        for i in range(-(-ds.height // by)):
            for j in range(-(-ds.width // bx)):
                offset = int(ds.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=1))
                size = int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1))
                out[(i, j)] = (offset, size)
    return out


def parse_range_header(header: str | None) -> list[tuple[int, int]]:
    """The (start, end) pairs a ``Range`` header asks for."""
    return parse_ranges(header or "", 1 << 62) or []


def serve(server: RangeServer, path: Path, prefix: str = "") -> tuple[str, str]:
    """Serve the file at a fresh name; return (name, URL)."""
    name = f"{prefix}{uuid.uuid4().hex[:8]}/{path.name}"
    return name, server.put(name, path.read_bytes())


def layouts_read_ahead(timeout: float = 30.0) -> int:
    """Wait until the layouts pyr's COG reader is reading ahead in this process are in; how many it holds.

    A lazy read of a URL starts reading the file's layout in the background
    while GDAL opens it: a test counting a server's requests waits for it.
    """
    from pyr.io.cog import cache

    deadline = time.monotonic() + timeout
    while not all(f.done() for f in list(cache._early.values())) and time.monotonic() < deadline:
        time.sleep(0.01)
    return len(cache._early)
