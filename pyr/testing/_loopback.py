"""An HTTP server on 127.0.0.1 serving from a daemon thread: the life cycle of pyr's test servers.

Subclasses (:class:`pyr.testing.stac_api.StacApi`, the test suite's
``RangeServer``) give the request handler; this class binds a free port,
serves, stops and is a context manager.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LoopbackServer"]


class LoopbackServer:
    """Serves ``handler()`` on ``127.0.0.1`` (an ephemeral port) in a daemon thread; a context manager."""

    server_class: type[ThreadingHTTPServer] = ThreadingHTTPServer
    thread_name = "loopback-server"

    def __init__(self) -> None:
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def handler(self) -> type[BaseHTTPRequestHandler]:
        """The request handler class bound to this server's state."""
        raise NotImplementedError

    @property
    def port(self) -> int:
        """The port the server listens on."""
        assert self._server is not None, "start() the server first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:port``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Bind a free loopback port and serve in a daemon thread."""
        server = self.server_class(("127.0.0.1", 0), self.handler())
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name=self.thread_name, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
