"""A minimal Range-capable static HTTP server on loopback that counts the bytes it sends.

Used only when ``tests/servers.py`` (the test suite's server) is not there.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The first and last byte a ``Range`` header (``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) asks of ``size``.

    ``None`` without a range (the whole file, 200). A first byte at or past
    ``size`` is unsatisfiable (416). Used by both benchmark servers.
    """
    m = _RANGE.match((header or "").strip())
    if not m or not (m.group(1) or m.group(2)):
        return None
    if m.group(1):
        start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else size - 1
    else:
        start, end = max(size - int(m.group(2)), 0), size - 1
    return start, min(end, size - 1)


class Counter:
    """Bytes and requests served (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.bytes = 0
        self.requests = 0

    def add(self, n: int) -> None:
        with self.lock:
            self.bytes += n
            self.requests += 1

    def reset(self) -> None:
        with self.lock:
            self.bytes = self.requests = 0


def _handler(root: str, counter: Counter) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _resolve(self) -> str | None:
            rel = self.path.split("?", 1)[0].lstrip("/")
            path = os.path.realpath(os.path.join(root, rel))
            if not path.startswith(os.path.realpath(root)) or not os.path.isfile(path):
                return None
            return path

        def do_HEAD(self) -> None:
            path = self._resolve()
            if path is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(os.path.getsize(path)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

        def do_GET(self) -> None:
            path = self._resolve()
            if path is None:
                self.send_error(404)
                return
            size = os.path.getsize(path)
            start, end = 0, size - 1
            asked = byte_range(self.headers.get("Range"), size)
            if asked is not None and asked[0] >= size:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if asked is not None:
                start, end = asked
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            else:
                self.send_response(200)
            n = end - start + 1
            self.send_header("Content-Length", str(n))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            with open(path, "rb") as f:
                f.seek(start)
                self.wfile.write(f.read(n))
            counter.add(n)

    return Handler


@contextmanager
def serve(root: str) -> Iterator[tuple[str, Counter]]:
    """Serve ``root`` on 127.0.0.1 (a free port) in a thread; yield (base URL, counter)."""
    counter = Counter()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(root, counter))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="bench-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counter
    finally:
        server.shutdown()
        server.server_close()
