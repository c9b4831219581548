"""Map user-facing sources (paths, URLs) to the paths GDAL opens.

One small pure function, :func:`to_gdal_path`, tested table-driven.
"""

from __future__ import annotations

import os
from pathlib import PurePath
from typing import Any
from urllib.parse import unquote, urlsplit

from pyr.errors import InvalidArgument

__all__ = ["display_name", "to_gdal_path"]

_PREFIXES = {
    "http": "/vsicurl/",
    "https": "/vsicurl/",
    "s3": "/vsis3/",
    "gs": "/vsigs/",
    "gcs": "/vsigs/",
    "az": "/vsiaz/",
    "abfs": "/vsiaz/",
}


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


def display_name(source: Any) -> str:
    """``source`` as shown in messages: the query string (signatures) elided."""
    text = os.fspath(source) if isinstance(source, os.PathLike) else str(source)
    head, sep, _ = text.partition("?")
    return head + ("?..." if sep else "")
