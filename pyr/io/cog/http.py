"""HTTP(S) range requests with many in flight per process, whatever the number of CPU workers.

One event loop thread and one ``aiohttp`` session per process (a forked
child starts its own) serve every thread's fetches. A chunk task hands over
all its tile ranges at once (adjacent ones merged, see
:func:`pyr.io.cog.fetch.merge_ranges`) and waits for them; up to
``pyr.requests-in-flight`` requests (dask config, default
:data:`DEFAULT_IN_FLIGHT`) are in flight in the process at once, shared by
all its threads. Decoding stays in the calling thread.

The requests keep the promises of GDAL's network options, read from the
read's ``env``, then GDAL's configuration (``os.environ``,
:func:`pyr.configure`, an active ``rasterio.Env``), then
:data:`~pyr.io.gdal.env.NETWORK_DEFAULTS`: ``GDAL_HTTP_CONNECTTIMEOUT``,
``GDAL_HTTP_TIMEOUT`` (a whole request), ``GDAL_HTTP_LOW_SPEED_TIME`` (no
byte for that long fails the request), and ``GDAL_HTTP_MAX_RETRY`` retries
of 429, 5xx, resets and timeouts, the delay starting at
``GDAL_HTTP_RETRY_DELAY`` and doubling. A failure is a :class:`FetchError`
whose reason names the URL without its query string or credentials.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from pyr.io.cog.fetch import FetchError, merge_ranges
from pyr.io.gdal.env import NETWORK_DEFAULTS
from pyr.io.gdal.messages import sanitize

__all__ = ["DEFAULT_IN_FLIGHT", "HttpSource", "in_flight"]

#: Requests in flight per process unless dask config ``pyr.requests-in-flight`` says otherwise.
DEFAULT_IN_FLIGHT = 32
_RETRY = frozenset({429, 500, 502, 503, 504})


def in_flight() -> int:
    """Requests in flight per process: dask config ``pyr.requests-in-flight`` (default 32)."""
    value: Any = DEFAULT_IN_FLIGHT
    if "dask" in sys.modules:
        import dask

        value = dask.config.get("pyr.requests-in-flight", DEFAULT_IN_FLIGHT)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return DEFAULT_IN_FLIGHT


@attrs.frozen
class _Policy:
    connect: float
    total: float
    low_speed: float
    retries: int
    delay: float
    ssl: Any  # an ssl.SSLContext, or False (GDAL_HTTP_UNSAFESSL)


def _policy(env: Mapping[str, str] | None) -> _Policy:
    from rasterio.env import get_gdal_config

    def option(key: str) -> str | None:
        text = (env or {}).get(key)
        if text is None:
            found = get_gdal_config(key, normalize=False)
            text = None if found is None else str(found)
        return text

    def value(key: str) -> float:
        try:
            return float(option(key) or NETWORK_DEFAULTS[key])
        except ValueError:
            return float(NETWORK_DEFAULTS[key])

    unsafe = (option("GDAL_HTTP_UNSAFESSL") or "NO").upper() in ("YES", "ON", "TRUE", "1")
    cafile = option("GDAL_CURL_CA_BUNDLE") or option("CURL_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    return _Policy(
        connect=value("GDAL_HTTP_CONNECTTIMEOUT"),
        total=value("GDAL_HTTP_TIMEOUT"),
        low_speed=value("GDAL_HTTP_LOW_SPEED_TIME"),
        retries=int(value("GDAL_HTTP_MAX_RETRY")),
        delay=value("GDAL_HTTP_RETRY_DELAY"),
        ssl=False if unsafe else _ssl_context(cafile),
    )


@functools.lru_cache(maxsize=8)
def _ssl_context(cafile: str | None) -> Any:
    """The TLS context of requests: the system's CAs, or those of ``cafile`` (GDAL's CA bundle)."""
    import ssl

    return ssl.create_default_context(cafile=cafile if cafile and os.path.isfile(cafile) else None)


class _Client:
    """The event loop thread, session and in-flight limit of this process."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="pyr-http", daemon=True)
        self.thread.start()
        self.session: Any = None
        self.limit = 0
        self.sem: asyncio.Semaphore | None = None

    def _ready(self, limit: int) -> tuple[Any, asyncio.Semaphore]:
        """The session and semaphore (in the loop thread)."""
        import aiohttp

        if self.session is None:
            connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
            self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
        if self.sem is None or limit != self.limit:
            self.sem, self.limit = asyncio.Semaphore(limit), limit
        return self.session, self.sem

    async def get(self, url: str, start: int, size: int, policy: _Policy, limit: int) -> bytes:
        """Bytes ``start`` .. ``start + size`` of ``url`` (fewer past its end), retried as ``policy`` says."""
        import aiohttp

        session, sem = self._ready(limit)
        timeout = aiohttp.ClientTimeout(
            total=policy.total or None, sock_connect=policy.connect or None, sock_read=policy.low_speed or None
        )
        headers = {"Range": f"bytes={start}-{start + size - 1}"}
        delay = policy.delay
        reason = ""
        for attempt in range(policy.retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                async with sem, session.get(url, headers=headers, timeout=timeout, ssl=policy.ssl) as resp:
                    if resp.status in (200, 206):
                        data: bytes = await resp.read()
                        return data[start : start + size] if resp.status == 200 else data
                    if resp.status == 416:
                        return b""  # past the end of the file
                    reason = f"HTTP error code: {resp.status}"
                    if resp.status not in _RETRY:
                        break
            except TimeoutError:
                reason = f"request timed out (GDAL_HTTP_TIMEOUT {policy.total:g} s, no byte for {policy.low_speed:g} s)"
            except (aiohttp.ClientError, OSError) as err:
                reason = f"{type(err).__name__}: {err}"
        tries = "" if attempt == 0 else f" after {attempt + 1} attempts"
        raise FetchError(f"{reason} (bytes {start}-{start + size - 1}{tries})")


_lock = threading.Lock()
_client: _Client | None = None
_pid = os.getpid()


def _the_client() -> _Client:
    global _client, _pid
    with _lock:
        if _client is None or _pid != os.getpid():  # a forked child starts its own loop
            _client, _pid = _Client(), os.getpid()
        return _client


def _after_fork_in_child() -> None:
    global _lock, _client
    _lock = threading.Lock()
    _client = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class HttpSource:
    """One URL, read with concurrent range requests through the process's client."""

    def __init__(self, url: str, name: str, env: Mapping[str, str] | None) -> None:
        self.url = url
        self.name = name
        self.policy = _policy(env)

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end of the file)."""
        return self.read_many([(offset, size)])[0]

    def read_many(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Each range; the requests (adjacent ranges merged) all in flight at once."""
        requests = merge_ranges(ranges)
        client = _the_client()
        limit = in_flight()

        async def gather() -> list[bytes]:
            return await asyncio.gather(*(client.get(self.url, o, s, self.policy, limit) for o, s, _ in requests))

        try:
            bodies = asyncio.run_coroutine_threadsafe(gather(), client.loop).result()
        except FetchError as err:
            raise FetchError(sanitize(str(err).replace(self.url, self.name))) from None
        out: list[bytes] = [b""] * len(ranges)
        for (start, _, members), body in zip(requests, bodies, strict=True):
            for i in members:
                offset, size = ranges[i]
                out[i] = body[offset - start : offset - start + size]
        return out

    def stamp(self) -> None:
        """Unknown for a URL (``None``)."""
