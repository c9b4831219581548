"""A Range-capable static HTTP server with a delay per request and a bandwidth cap per connection.

Run in its own process (``python -m benchmarks._delay_server ROOT --delay 0.04 --rate 50e6``);
it prints ``PORT <n>`` once listening. ``GET /_stats`` answers JSON
``{"requests", "bytes", "in_flight", "max_in_flight"}`` (requests in flight:
received and still waiting out the delay, so a client can never have
started its next request while one is still counted); ``GET /_reset`` answers them and zeroes them.
:func:`start` runs it from Python and returns ``(base URL, process)``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks._http import byte_range


class _Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = self.bytes = self.in_flight = self.max_in_flight = 0

    def enter(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def sent(self, n: int) -> None:
        with self.lock:
            self.bytes += n

    def as_dict(self) -> dict[str, int]:
        with self.lock:
            return {k: getattr(self, k) for k in ("requests", "bytes", "in_flight", "max_in_flight")}

    def reset(self) -> None:
        with self.lock:
            self.requests = self.bytes = self.max_in_flight = 0


def _handler(root: str, delay: float, rate: float, stats: _Stats) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _json(self, payload: dict[str, int]) -> None:
            body = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def do_GET(self) -> None:
            if self.path == "/_stats":
                self._json(stats.as_dict())
            elif self.path == "/_reset":
                before = stats.as_dict()
                stats.reset()
                self._json(before)
            else:
                self._serve(head=False)

        def _serve(self, *, head: bool) -> None:
            stats.enter()
            sent = 0
            try:
                if delay:
                    time.sleep(delay)
                stats.leave()
                rel = self.path.split("?", 1)[0].lstrip("/")
                path = os.path.realpath(os.path.join(root, rel))
                if not path.startswith(os.path.realpath(root)) or not os.path.isfile(path):
                    self.send_error(404)
                    return
                size = os.path.getsize(path)
                start, end = 0, size - 1
                asked = byte_range(self.headers.get("Range"), size)
                if asked is not None:
                    start, end = asked
                    if start >= size:
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{size}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                n = end - start + 1
                self.send_header("Content-Length", str(n))
                self.send_header("Accept-Ranges", "bytes")
                self.end_headers()
                if head:
                    return
                with open(path, "rb") as f:
                    f.seek(start)
                    data = f.read(n)
                step = 65536
                t0 = time.perf_counter()
                for i in range(0, n, step):
                    self.wfile.write(data[i : i + step])
                    sent += len(data[i : i + step])
                    if rate:
                        ahead = t0 + sent / rate - time.perf_counter()
                        if ahead > 0:
                            time.sleep(ahead)
            except (BrokenPipeError, ConnectionResetError):
                pass
            finally:
                stats.sent(sent)

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # the listen backlog: many clients connect at once (the default 5 drops SYNs)


def main(argv: list[str] | None = None) -> None:
    """Serve ``root`` until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--rate", type=float, default=0.0, help="bytes/s per connection (0: no cap)")
    args = parser.parse_args(argv)
    server = _Server(("127.0.0.1", 0), _handler(args.root, args.delay, args.rate, _Stats()))
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def start(root: str | Path, *, delay: float = 0.0, rate: float = 0.0) -> tuple[str, subprocess.Popen[str]]:
    """Start the server on ``root`` in a new process; (base URL, process). Stop it with ``process.kill()``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._delay_server", str(root), "--delay", str(delay), "--rate", str(rate)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"the delay server did not start: {line!r}")
    return f"http://127.0.0.1:{int(line.split()[1])}", proc


def stats(base: str, *, reset: bool = False) -> dict[str, int]:
    """The server's counters (zeroed afterwards with ``reset``)."""
    import urllib.request

    with urllib.request.urlopen(f"{base}/{'_reset' if reset else '_stats'}", timeout=10) as resp:
        out: dict[str, int] = json.loads(resp.read())
        return out


if __name__ == "__main__":
    main()
