"""Where tile bytes come from: a local file (``os.pread``), or an HTTP(S) URL or S3 object (range requests).

:func:`open_source` gives a :class:`Source` for a GDAL path the native path
can fetch itself, or ``None`` (GDAL reads it). A source answers
``read_at(offset, size)`` (the header) and ``read_many(ranges)`` (a chunk's
tiles, all at once).

S3 objects are fetched natively when GDAL's options give unsigned requests
(public buckets) or static keys (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``, a session token, requester pays): each request is
then signed (:mod:`pyr.io.cog.s3`, a :data:`Sign` given to the source).
Credentials from profiles, web identity or instance metadata stay with GDAL.
"""

from __future__ import annotations

import functools
import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Protocol

from pyr.io.gdal.env import is_secret

__all__ = ["FetchError", "LocalFile", "Redirected", "Sign", "Source", "http_url", "merge_ranges", "open_source"]

#: Two ranges closer than this are fetched as one request (the bytes between are read and dropped).
MERGE_GAP = 16384
#: A merged request never grows past this: a whole file in one request is slow under a per-connection cap.
MAX_REQUEST = 2**20

# GDAL options that change who may read a URL or how it is reached: the native path leaves such reads to GDAL.
_HTTP_DECLINES = (
    "GDAL_HTTP_HEADERS",
    "GDAL_HTTP_HEADER_FILE",
    "GDAL_HTTP_USERPWD",
    "GDAL_HTTP_AUTH",
    "GDAL_HTTP_BEARER",
    "GDAL_HTTP_COOKIE",
    "GDAL_HTTP_COOKIEFILE",
    "GDAL_HTTP_PROXY",
    "GDAL_HTTPS_PROXY",
    "GDAL_HTTP_PROXYUSERPWD",
    "GDAL_HTTP_SSL_VERIFYSTATUS",
    "GDAL_HTTP_USE_CAPI_STORE",
    "GDAL_HTTP_CAPATH",
    "GDAL_HTTP_SSLCERT",
    "GDAL_HTTP_SSLKEY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "http_proxy",
    "https_proxy",
    "CPL_VSIL_CURL_USE_HEAD",
    "CPL_VSIL_CURL_NON_CACHED",
)


#: Signs a request: called with the URL and the request's headers before each attempt, it returns the
#: headers to send (those and the signature's; see :class:`pyr.io.cog.s3.SigV4`).
Sign = Callable[[str, dict[str, str]], dict[str, str]]


class FetchError(Exception):
    """A network fetch failed for good (after its retries); ``str`` is the reason, without secrets."""


class Redirected(FetchError):
    """The server says to ask elsewhere (S3: the bucket is in another region, or at another endpoint).

    GDAL follows such answers (it switches the region or endpoint and signs
    again); the native path does not: it declines the file and GDAL reads it.
    """


class Source(Protocol):
    """Bytes of one file."""

    name: str
    remote: bool  # whether fetching ahead pays (network latency)

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset`` (fewer only at the end of the file)."""
        ...

    def read_many(self, ranges: list[tuple[int, int]], ahead: list[tuple[int, int]] | None = None) -> list[bytes]:
        """The bytes of each ``(offset, size)`` range, in order; ``ahead`` ranges may be fetched ahead."""
        ...

    def stamp(self) -> tuple[int, ...] | None:
        """Identity of the content (local files: inode, size, mtime); ``None`` when unknown."""
        ...

    def warm(self, offset: int, size: int) -> None:
        """Start fetching ``read_at(offset, size)`` now (where that pays), without waiting."""
        ...

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Start fetching ``ranges`` for later reads in this process (where that pays), without waiting."""
        ...


class LocalFile:
    """A local file, read with ``os.pread`` on a descriptor held for one read."""

    remote = False

    def __init__(self, path: str, name: str) -> None:
        self.name = name
        self.fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))

    def read_at(self, offset: int, size: int) -> bytes:
        """``size`` bytes at ``offset``."""
        return os.pread(self.fd, size, offset)

    def read_many(self, ranges: list[tuple[int, int]], ahead: list[tuple[int, int]] | None = None) -> list[bytes]:
        """Each range, one ``pread`` each (nothing is read ahead: the OS does)."""
        return [os.pread(self.fd, size, offset) for offset, size in ranges]

    def warm(self, offset: int, size: int) -> None:
        """Nothing: a local read is not worth starting early."""

    def prefetch(self, ranges: list[tuple[int, int]]) -> None:
        """Nothing: a local read is not worth starting early."""

    def stamp(self) -> tuple[int, ...]:
        """(inode, size, mtime) of the open file."""
        st = os.fstat(self.fd)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def close(self) -> None:
        """Close the descriptor."""
        os.close(self.fd)


def _plain_http(env: Mapping[str, str] | None) -> bool:
    """Whether neither ``env`` nor the process sets HTTP options the native fetcher does not honour."""
    return _plain_keys(frozenset(env or ())) and _plain_keys(frozenset(os.environ))


@functools.lru_cache(maxsize=64)
def _plain_keys(keys: frozenset[str]) -> bool:
    """Whether none of the option names ``keys`` changes who may read a URL or how (once per set of names)."""
    return not any(key in keys for key in _HTTP_DECLINES) and not any(is_secret(key) for key in keys if "HTTP" in key)


def http_url(path: str, env: Mapping[str, str] | None) -> str | None:
    """The URL of a ``/vsicurl/http(s)://`` GDAL path the native fetcher may read, else ``None``.

    ``None`` too when ``env`` or the process environment sets options that
    change who may read the URL or how it is reached (headers, auth, cookies,
    proxies, client certificates): GDAL reads those. (CA bundles and
    ``GDAL_HTTP_UNSAFESSL`` are honoured by :mod:`pyr.io.cog.http`.)
    """
    if not path.startswith(("/vsicurl/http://", "/vsicurl/https://")) or not _plain_http(env):
        return None
    return path[len("/vsicurl/") :]


@contextmanager
def open_source(path: str, name: str, env: Mapping[str, str] | None) -> Iterator[Source | None]:
    """A :class:`Source` for ``path`` for the block, or ``None`` when the native path cannot fetch it."""
    if not path.startswith("/vsi"):
        try:
            local = LocalFile(path, name)
        except OSError:
            yield None  # GDAL reports it
            return
        try:
            yield local
        finally:
            local.close()
        return
    url = http_url(path, env)
    sign: Sign | None = None
    if url is None and path.startswith("/vsis3/") and _plain_http(env) and _has_aiohttp():
        from pyr.io.cog.s3 import s3_request

        request = s3_request(path, env)
        if request is not None:
            url, sign = request
    if url is None or not _has_aiohttp():
        yield None
        return
    from pyr.io.cog.http import HttpSource

    yield HttpSource(url, name, env, sign)


@functools.cache
def _has_aiohttp() -> bool:
    """Whether the HTTP fetcher's library is installed (without it GDAL reads URLs)."""
    return importlib.util.find_spec("aiohttp") is not None


def merge_ranges(ranges: list[tuple[int, int]]) -> list[tuple[int, int, list[int]]]:
    """Requests covering ``ranges``: ``(offset, size, [index of each range served])``.

    Ranges closer than :data:`MERGE_GAP` share one request unless it would
    grow past :data:`MAX_REQUEST` (a range larger than that is one request).

    >>> merge_ranges([(100, 10), (0, 50), (50, 50)])
    [(0, 110, [1, 2, 0])]
    """
    order = sorted(range(len(ranges)), key=lambda i: ranges[i][0])
    out: list[tuple[int, int, list[int]]] = []
    for i in order:
        offset, size = ranges[i]
        if out:
            start, length, members = out[-1]
            end = max(start + length, offset + size)
            if offset - (start + length) <= MERGE_GAP and end - start <= MAX_REQUEST:
                out[-1] = (start, end - start, [*members, i])
                continue
        out.append((offset, size, [i]))
    return out
