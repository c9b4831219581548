"""What a read opens: user-facing sources (paths, URLs), the GDAL paths they map to, and their names.

:func:`to_gdal_path` maps a source to the path GDAL opens, :func:`display_name`
is how messages show it (no query string, no credentials), and
:class:`SourceSpec` is what a task carries to open it: picklable, no handle.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

from pyr.errors import InvalidArgument
from pyr.io.gdal.env import GdalEnv

__all__ = ["NETWORK_PREFIXES", "SourceSpec", "display_name", "network_part", "strip_userinfo", "to_gdal_path"]

_PREFIXES = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "gcs": "/vsigs/",
    "az": "/vsiaz/",
    "abfs": "/vsiaz/",
}
#: GDAL's network file systems (each keeps a per-process cache of what it fetched).
NETWORK_PREFIXES = (
    "/vsicurl/",
    "/vsis3/",
    "/vsigs/",
    "/vsiaz/",
    "/vsiadls/",
    "/vsioss/",
    "/vsiswift/",
    "/vsiwebhdfs/",
)
# "scheme://user:password@host" -> the user-info part (up to the last "@" before the path).
_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)[^/\s'\"?#@]*@", re.IGNORECASE)


def to_gdal_path(source: Any) -> str:
    """The GDAL path for ``source``.

    ``http(s)://`` -> ``/vsicurl/`` (the whole URL, query string kept),
    ``s3://`` -> ``/vsis3/``, ``gs://`` -> ``/vsigs/``, ``az://`` -> ``/vsiaz/``,
    ``file://`` -> a local path, ``/vsi...`` and plain paths unchanged,
    ``pathlib.Path`` accepted.

    >>> to_gdal_path("s3://sentinel-cogs/a/B04.tif")
    '/vsis3/sentinel-cogs/a/B04.tif'
    >>> to_gdal_path("https://host/B04.tif?sig=abc")
    '/vsicurl/https://host/B04.tif?sig=abc'
    """
    if isinstance(source, PurePath | os.PathLike):
        return os.fspath(source)
    if not isinstance(source, str) or not source:
        raise InvalidArgument(f"source={source!r}: expected a path or URL string.")
    if source.startswith("/vsi"):
        return source
    scheme, sep, rest = source.partition("://")
    if not sep or len(scheme) < 2:  # no scheme, or a Windows drive letter
        return source
    scheme = scheme.lower()
    if scheme == "file":
        return unquote(urlsplit(source).path)
    if scheme in ("http", "https"):
        if not urlsplit(source).netloc:
            raise InvalidArgument(f"source={display_name(source)!r}: no host after {scheme}://.")
        return _PREFIXES[scheme] + source
    if scheme in _PREFIXES:
        if not rest.strip("/"):
            raise InvalidArgument(f"source={display_name(source)!r}: no bucket or container after {scheme}://.")
        return _PREFIXES[scheme] + rest
    raise InvalidArgument(f"source={display_name(source)!r}: unsupported URL scheme {scheme!r}.")


def strip_userinfo(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it replaced by ``***@``.

    >>> strip_userinfo("/vsicurl/http://me:pa55@host/a.tif failed")
    '/vsicurl/http://***@host/a.tif failed'
    """
    return _USERINFO.sub(r"\1***@", text)


def display_name(source: Any) -> str:
    """``source`` as shown in messages: the query string (signatures) and credentials elided.

    >>> display_name("https://me:pa55@host/B04.tif?sig=abc")
    'https://***@host/B04.tif?...'
    """
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    head, sep, _ = text.partition("?")
    return strip_userinfo(head) + ("?..." if sep else "")


def network_part(path: str) -> str | None:
    """The ``/vsicurl/...``-like part of a GDAL ``path`` (also inside chained paths), or ``None``.

    >>> network_part("/vsigzip//vsicurl/https://h/a.gz"), network_part("/data/a.tif")
    ('/vsicurl/https://h/a.gz', None)
    """
    hits = [i for i in (path.find(p) for p in NETWORK_PREFIXES) if i >= 0]
    return path[min(hits) :] if hits else None


@attrs.frozen(repr=False)
class SourceSpec:
    """What a task needs to open one source: picklable, no handle inside.

    Its ``repr`` shows the display name (query string and credentials elided)
    and masks secrets in the env, so signed URLs and credentials stay out of
    task reprs, logs and dashboards.
    """

    path: str  # the GDAL path
    name: str  # the user-facing name for messages (see display_name)
    env: GdalEnv | None = None
    overview: int | None = None

    def key(self) -> tuple[Any, ...]:
        """What identifies an open handle of this source: path, overview and GDAL options."""
        return (self.path, self.overview, self.env)

    def __repr__(self) -> str:
        return f"SourceSpec({self.name!r}, env={self.env!r}, overview={self.overview!r})"
