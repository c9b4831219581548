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
whose reason names the URL without its query string or credentials (and,
from an S3 error body, its code: ``HTTP error code: 403
(SignatureDoesNotMatch)``). An answer sending the request elsewhere (S3's
``PermanentRedirect``, ``TemporaryRedirect`` or
``AuthorizationHeaderMalformed``: another region or endpoint; any
redirect of a signed request) is a :class:`~pyr.io.cog.fetch.Redirected`
error, upon which the native path declines the file and GDAL, which follows
such answers, reads it.

A source may sign its requests (signed S3 reads, see :mod:`pyr.io.cog.s3`):
each attempt is signed afresh, once it may go out (a fresh date, also for
retries), and its URL is sent exactly as signed (not normalised again) and
never redirected. Ranges fetched ahead are held per URL and signer, so a
read never takes bytes fetched under other credentials.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import os
import re
import sys
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from typing import Any

import attrs

from pyr.io.cog import held
from pyr.io.cog.fetch import FetchError, Redirected, Sign, merge_ranges
from pyr.io.gdal.env import NETWORK_DEFAULTS
from pyr.io.gdal.messages import sanitize

__all__ = ["DEFAULT_IN_FLIGHT", "HttpSource", "in_flight", "read_ahead"]

#: Requests in flight per process unless dask config ``pyr.requests-in-flight`` says otherwise.
DEFAULT_IN_FLIGHT = 32
_RETRY = frozenset({429, 500, 502, 503, 504})
# S3's answers that the request must go to another region or endpoint (GDAL follows them, see Redirected)
_ELSEWHERE = frozenset({"PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed"})
_CODE = re.compile(rb"<Code>([A-Za-z0-9.]{1,64})</Code>")
_ERROR_BODY = 8192  # bytes of an error answer read for its code


def _error_code(body: bytes) -> str | None:
    """The ``<Code>`` of an S3 (or S3-like) XML error body, else ``None``.

    >>> _error_code(b"<?xml ...?><Error><Code>SignatureDoesNotMatch</Code><Message>...</Message></Error>")
    'SignatureDoesNotMatch'
    """
    found = _CODE.search(body)
    return None if found is None else found.group(1).decode()


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


def read_ahead() -> int:
    """Tile ranges a chunk read fetches ahead: dask config ``pyr.read-ahead`` (default in-flight / 4, >= 4)."""
    value: Any = None
    if "dask" in sys.modules:
        import dask

        value = dask.config.get("pyr.read-ahead", None)
    if value is None:
        return max(4, in_flight() // 4)
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        return max(4, in_flight() // 4)


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

    async def get(
        self, url: str, start: int, size: int, policy: _Policy, limit: int, sign: Sign | None = None
    ) -> bytes:
        """Bytes ``start`` .. ``start + size`` of ``url`` (fewer past its end), retried as ``policy`` says.

        With ``sign``, each attempt's headers are signed when it may go out.
        """
        import aiohttp
        from yarl import URL

        session, sem = self._ready(limit)
        timeout = aiohttp.ClientTimeout(
            total=policy.total or None, sock_connect=policy.connect or None, sock_read=policy.low_speed or None
        )
        ranged = {"Range": f"bytes={start}-{start + size - 1}"}
        target: Any = url if sign is None else URL(url, encoded=True)  # a signed path goes out as signed
        delay = policy.delay
        reason = ""
        for attempt in range(policy.retries + 1):
            if attempt:
                await asyncio.sleep(delay)
                delay *= 2
            try:
                async with sem:
                    headers = ranged if sign is None else sign(url, ranged)
                    async with session.get(
                        target, headers=headers, timeout=timeout, ssl=policy.ssl, allow_redirects=sign is None
                    ) as resp:
                        if resp.status in (200, 206):
                            data: bytes = await resp.read()
                            return data[start : start + size] if resp.status == 200 else data
                        if resp.status == 416:
                            return b""  # past the end of the file
                        code = _error_code(await resp.content.read(_ERROR_BODY))
                        reason = f"HTTP error code: {resp.status}" + (f" ({code})" if code else "")
                        if code in _ELSEWHERE or (sign is not None and 300 <= resp.status < 400):
                            raise Redirected(f"{reason} (bytes {start}-{start + size - 1})")
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


@atexit.register
def _close_at_exit() -> None:
    client = _client
    if client is not None and _pid == os.getpid() and client.session is not None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(client.session.close(), client.loop).result(timeout=2)


def _after_fork_in_child() -> None:
    global _lock, _client
    _lock = threading.Lock()
    _client = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class HttpSource:
    """One URL, read with concurrent range requests through the process's client (each signed by ``sign``, if given).

    Its ranges fetched ahead are held under :attr:`held_as`: the URL, and
    the signer's hash when signed (equal credentials, equal signers), so
    that a read never takes a range fetched with other credentials.
    """

    remote = True

    def __init__(self, url: str, name: str, env: Mapping[str, str] | None, sign: Sign | None = None) -> None:
        self.url = url
        self.name = name
        self.policy = _policy(env)
        self.sign = sign
        self.held_as = url if sign is None else f"{url} signed:{hash(sign):x}"
        self._warm: tuple[int, int, Future[bytes]] | None = None

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer at the end of the file)."""
        warm, self._warm = self._warm, None
        if warm is not None and warm[:2] == (offset, size):
            return self._wait(warm[2])
        return self.read_many([(offset, size)])[0]

    def warm(self, offset: int, size: int) -> None:
        """Start the request of ``read_at(offset, size)`` now (unless it is held already); that call takes it."""
        if not held.ranges.holds((self.held_as, offset, size)):
            self._warm = (offset, size, self._submit(_the_client(), offset, size, in_flight()))

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Fetch ``ranges`` ahead, all of them, as :meth:`read_many`'s ``ahead`` (held for a later read)."""
        limit = in_flight()
        self._fetch_ahead(_the_client(), ranges, limit, want=len(ranges), cap=4 * limit)

    def _submit(self, client: _Client, start: int, size: int, limit: int) -> Future[bytes]:
        request = client.get(self.url, start, size, self.policy, limit, self.sign)
        return asyncio.run_coroutine_threadsafe(request, client.loop)

    def _wait(self, fut: Future[bytes]) -> bytes:
        try:
            return fut.result()
        except FetchError as err:  # the same class (Redirected declines), the name for the URL, no secrets
            raise type(err)(sanitize(str(err).replace(self.url, self.name))) from None

    def read_many(self, ranges: list[tuple[int, int]], ahead: list[tuple[int, int]] | None = None) -> list[bytes]:
        """Each range; the requests (adjacent ranges merged) all in flight at once.

        Ranges fetched ahead by an earlier call are taken from there. The
        ``ahead`` ranges (the tiles of the chunks likely read next) are then
        requested too, without waiting for them, as far as there is room.
        """
        client = _the_client()
        limit = in_flight()
        taken = {i: held.ranges.take((self.held_as, *r)) for i, r in enumerate(ranges)}
        missing = [i for i, hit in taken.items() if hit is None]
        own = [
            (self._submit(client, start, size, limit), start, [missing[m] for m in members])
            for start, size, members in merge_ranges([ranges[i] for i in missing])
        ]
        if ahead:
            self._fetch_ahead(client, ahead, limit, want=read_ahead(), cap=2 * limit)
        out: list[bytes] = [b""] * len(ranges)
        for fut, start, members in own:
            body = self._wait(fut)
            for i in members:
                offset, size = ranges[i]
                out[i] = body[offset - start : offset - start + size]
        for i, hit in taken.items():
            if hit is None:
                continue
            offset, size = ranges[i]
            try:
                body, start = hit.future.result(), hit.start
            except Exception:  # failed or dropped: fetch it now, with this task's retries and messages
                body, start = self._wait(self._submit(client, offset, size, limit)), offset
            out[i] = body[offset - start : offset - start + size]
        return out

    def _fetch_ahead(self, client: _Client, ranges: list[tuple[int, int]], limit: int, *, want: int, cap: int) -> None:
        reserved = held.ranges.reserve([(self.held_as, *r) for r in ranges], want, cap)
        for start, size, members in merge_ranges([(k[1], k[2]) for k, _ in reserved]):
            request = self._submit(client, start, size, limit)
            for m in members:
                reserved[m][1].follow(request, start)

    def stamp(self) -> None:
        """Unknown for a URL (``None``)."""
