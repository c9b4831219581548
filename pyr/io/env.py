"""GDAL configuration for cloud reads: ``cloud_env`` (pure) and ``configure`` (process-wide).

Read tasks carry their env in the task graph (see :mod:`pyr.io.tiff`) and
apply it around every open and read, in whatever process runs them.
``configure`` additionally writes the options into ``os.environ``, which GDAL
consults, and which worker processes started afterwards inherit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from pyr.errors import InvalidArgument

__all__ = ["CLOUD_DEFAULTS", "GdalEnv", "cloud_env", "configure"]

#: GDAL options for reading COGs from object storage: header-then-tiles access.
CLOUD_DEFAULTS: Mapping[str, str] = {
    # Never list the "directory" of a remote file to look for sidecars.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif,.tiff,.TIF,.TIFF,.vrt,.jp2,.zarr",
    # One request for several tiles of a chunk, adjacent ranges merged.
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "GDAL_HTTP_VERSION": "2",
    # The first request fetches the whole COG header.
    "GDAL_INGESTED_BYTES_AT_OPEN": "65536",
    # Transient errors (429, 5xx) are retried with a delay.
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    # A dead or stalled server fails the read instead of hanging it.
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_TIMEOUT": "60",
    "GDAL_HTTP_LOW_SPEED_TIME": "20",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
    # Cache the header and recently fetched ranges per file handle.
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": "33554432",
    "CPL_VSIL_CURL_CACHE_SIZE": "134217728",
}

_AWS_KEYS = {
    "region": "AWS_REGION",
    "profile": "AWS_PROFILE",
    "endpoint": "AWS_S3_ENDPOINT",
    "access_key_id": "AWS_ACCESS_KEY_ID",
    "secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "session_token": "AWS_SESSION_TOKEN",
}
_AWS_FLAGS = {
    "aws_unsigned": ("AWS_NO_SIGN_REQUEST", "YES", "NO"),
    "https": ("AWS_HTTPS", "YES", "NO"),
    "virtual_hosting": ("AWS_VIRTUAL_HOSTING", "TRUE", "FALSE"),
    "requester_pays": ("AWS_REQUEST_PAYER", "requester", None),
}
_SECRET_MARKERS = ("SECRET", "TOKEN", "PASSWORD", "ACCESS_KEY", "AUTHORIZATION", "HEADERS", "SAS")


def is_secret(key: str) -> bool:
    """Whether the GDAL option ``key`` holds a credential (its value is never shown)."""
    upper = key.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


class GdalEnv(Mapping[str, str]):
    """An immutable mapping of GDAL config options whose ``repr`` masks secrets."""

    __slots__ = ("_items",)
    _items: tuple[tuple[str, str], ...]

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        items = dict(items or {})
        for key, value in items.items():
            if not isinstance(key, str) or not key:
                raise InvalidArgument(f"GDAL option name {key!r} must be a non-empty string.")
            if value is None:
                raise InvalidArgument(f"GDAL option {key} has no value (None).")
        object.__setattr__(self, "_items", tuple(sorted((k, _to_str(v)) for k, v in items.items())))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("GdalEnv is immutable")

    def __getitem__(self, key: str) -> str:
        for k, v in self._items:
            if k == key:
                return str(v)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return (k for k, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._items) == {k: _to_str(v) for k, v in other.items()}
        return NotImplemented

    def __reduce__(self) -> tuple[Any, ...]:
        return (GdalEnv, (dict(self._items),))

    def __dask_tokenize__(self) -> object:
        return ("pyr.GdalEnv", self._items)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {'***' if is_secret(k) else repr(v)}" for k, v in self._items)
        return f"GdalEnv({{{shown}}})"

    __str__ = __repr__


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


def cloud_env(*, cloud_defaults: bool = True, aws: Mapping[str, Any] | None = None, **gdal_options: Any) -> GdalEnv:
    """GDAL config options for cloud COG reads, as an immutable mapping.

    ``cloud_defaults`` adds :data:`CLOUD_DEFAULTS`; ``aws`` maps
    ``aws_unsigned``, ``region``, ``profile``, ``endpoint`` (host[:port]),
    ``https``, ``virtual_hosting``, ``access_key_id``, ``secret_access_key``,
    ``session_token`` and ``requester_pays`` to GDAL's ``AWS_*`` options;
    other keyword arguments are GDAL options passed through. Secrets are
    masked in the ``repr``.

    >>> env = cloud_env(aws={"aws_unsigned": True, "region": "us-west-2"})
    >>> env["AWS_NO_SIGN_REQUEST"], env["GDAL_HTTP_MULTIRANGE"]
    ('YES', 'YES')
    >>> cloud_env(cloud_defaults=False, aws={"secret_access_key": "s3cr3t"})
    GdalEnv({'AWS_SECRET_ACCESS_KEY': ***})
    """
    options: dict[str, Any] = dict(CLOUD_DEFAULTS) if cloud_defaults else {}
    for key, value in (aws or {}).items():
        if key in _AWS_KEYS:
            options[_AWS_KEYS[key]] = value
            if key == "region":
                options["AWS_DEFAULT_REGION"] = value
        elif key in _AWS_FLAGS:
            option, yes, no = _AWS_FLAGS[key]
            if value:
                options[option] = yes
            elif no is not None:
                options[option] = no
        else:
            known = ", ".join(sorted([*_AWS_KEYS, *_AWS_FLAGS]))
            raise InvalidArgument(f"aws={{{key!r}: ...}}: unknown key; expected one of {known}.")
    options.update(gdal_options)
    return GdalEnv(options)


def configure(*, cloud_defaults: bool = True, aws: Mapping[str, Any] | None = None, **gdal_options: Any) -> GdalEnv:
    """Apply :func:`cloud_env` process-wide and return it.

    The options go into ``os.environ``: GDAL reads its config options from
    the environment, and worker processes started afterwards (dask's
    ``processes`` scheduler, ``distributed`` workers of a ``LocalCluster``)
    inherit it. On a cluster whose workers already run, pass ``env=`` to
    :func:`pyr.read` instead: that env travels with every task.
    """
    env = cloud_env(cloud_defaults=cloud_defaults, aws=aws, **gdal_options)
    os.environ.update(env)
    return env
