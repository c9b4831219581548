"""GDAL configuration for cloud reads: ``cloud_env`` (pure) and ``configure`` (process-wide).

Read tasks carry their env in the task graph (see :mod:`pyr.io.tiff`) and
apply it around every open and read, in whatever process runs them (see
:mod:`pyr.io.gdal.context`, which also applies :data:`NETWORK_DEFAULTS` to
every network read). ``configure`` additionally writes the options into
``os.environ``, which GDAL consults and which worker processes started
afterwards inherit, and hands them to the workers of a running
``distributed`` client (see :mod:`pyr.io.worker`).

The option names and meanings follow GDAL 3.10's documentation; what a
read costs with them is shown by ``tests/test_http.py``.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any

from pyr.errors import InvalidArgument

__all__ = ["CLOUD_DEFAULTS", "NETWORK_DEFAULTS", "GdalEnv", "cloud_env", "configure", "is_secret", "masked"]

#: GDAL options every network read gets, with or without ``env=``, unless the
#: user set them (in ``env=``, ``os.environ``, :func:`configure` or an active
#: ``rasterio.Env``): a dead or stalled server fails the read instead of
#: hanging it, transient failures are retried with back-off, and opening a
#: file reads its header only.
NETWORK_DEFAULTS: Mapping[str, str] = {
    # Never list the "directory" of a remote file, nor probe sidecar files
    # (.aux.xml, .ovr, .msk): the COG is opened with a HEAD and one GET.
    # (CPL_VSIL_CURL_ALLOWED_EXTENSIONS is deliberately not set: it adds
    # nothing once listing is off and makes extension-less URLs unreadable.)
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # Transient errors (429, 5xx, and connection resets and timeouts, which
    # GDAL retries as it does those codes) are retried, the delay doubling.
    "GDAL_HTTP_MAX_RETRY": "5",
    "GDAL_HTTP_RETRY_DELAY": "0.5",
    # No connection within 10 s, or under 1 byte/s for 30 s, fails the request;
    # no request may take longer than 120 s in all.
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    "GDAL_HTTP_TIMEOUT": "120",
    "GDAL_HTTP_LOW_SPEED_TIME": "30",
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1",
}

#: GDAL options for reading COGs from object storage: header-then-tiles access
#: (:data:`NETWORK_DEFAULTS` and the options below).
CLOUD_DEFAULTS: Mapping[str, str] = {
    **NETWORK_DEFAULTS,
    # The several tiles of a chunk are fetched at once; adjacent tiles are
    # merged into one range. YES issues the ranges in parallel (multiplexed
    # over one HTTP/2 connection where the server speaks it); SINGLE_GET (one
    # multipart request) is left opt-in since S3 does not support it.
    "GDAL_HTTP_MULTIRANGE": "YES",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    # HTTP/2 over TLS only: no h2c upgrade headers sent to plain-HTTP servers.
    "GDAL_HTTP_VERSION": "2TLS",
    # The first GET fetches the whole COG header (IFDs and tile offsets).
    "GDAL_INGESTED_BYTES_AT_OPEN": "65536",
    # /vsicurl/'s own per-process cache of headers and recent ranges (read
    # once, at the first remote access of the process); no second per-handle
    # cache on top of it (pyr keeps its handles open between chunks, and each
    # chunk is read once).
    "CPL_VSIL_CURL_CACHE_SIZE": "134217728",
    "VSI_CACHE": "FALSE",
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
# Parts of GDAL option names whose values are credentials (AWS, GCS, Azure,
# OSS, Swift, HTTP auth and headers, TLS key passphrases); their values are never shown.
_SECRET_MARKERS = (
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "USERPWD",
    "ACCESS_KEY",
    "PRIVATE_KEY",
    "SWIFT_KEY",
    "AUTHORIZATION",
    "BEARER",
    "HEADERS",
    "COOKIE",
    "SAS",
    "CONNECTION_STRING",
)


def is_secret(key: str) -> bool:
    """Whether the GDAL option ``key`` holds a credential (its value is never shown).

    >>> is_secret("AWS_SECRET_ACCESS_KEY"), is_secret("GDAL_HTTP_HEADERS"), is_secret("AWS_REGION")
    (True, True, False)
    """
    upper = key.upper()
    return any(marker in upper for marker in _SECRET_MARKERS)


def _is_proxy(key: str) -> bool:
    return key.upper().endswith("_PROXY")  # GDAL_HTTP_PROXY, GDAL_HTTPS_PROXY, HTTPS_PROXY ...


def _proxy_userinfo(value: str) -> str | None:
    """The ``user:password`` of a proxy setting (``[scheme://]user:password@host:port``), if any."""
    rest = value.split("://", 1)[-1]
    head = rest.split("/", 1)[0]
    return head.rpartition("@")[0] or None


def masked(key: str, value: str) -> str:
    """How the value of option ``key`` may be shown: ``***`` for a secret, a proxy without its credentials.

    >>> masked("AWS_SECRET_ACCESS_KEY", "abc"), masked("GDAL_HTTP_PROXY", "http://me:pw@proxy:3128")
    ('***', 'http://***@proxy:3128')
    >>> masked("AWS_REGION", "eu-west-1")
    'eu-west-1'
    """
    if is_secret(key):
        return "***"
    if _is_proxy(key):
        userinfo = _proxy_userinfo(value)
        if userinfo:
            return value.replace(userinfo + "@", "***@", 1)
    return value


def secret_values(items: Mapping[str, str]) -> tuple[str, ...]:
    """The values among ``items`` that messages must never show (secrets, proxy credentials)."""
    out: list[str] = []
    for key, value in items.items():
        if not value:
            continue
        if is_secret(key):
            out.append(value)
        elif _is_proxy(key):
            userinfo = _proxy_userinfo(value)
            if userinfo:
                out += [userinfo, *(p for p in userinfo.split(":")[1:] if p)]
    return tuple(out)


class GdalEnv(Mapping[str, str]):
    """An immutable mapping of GDAL config options whose ``repr`` masks secrets.

    >>> env = GdalEnv({"AWS_REGION": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "abc"})
    >>> env
    GdalEnv({'AWS_REGION': 'eu-west-1', 'AWS_SECRET_ACCESS_KEY': ***})
    >>> env["AWS_SECRET_ACCESS_KEY"]
    'abc'
    """

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
        if isinstance(other, GdalEnv):
            return self._items == other._items
        if isinstance(other, Mapping):
            return dict(self._items) == {k: _to_str(v) for k, v in other.items()}
        return NotImplemented

    def __reduce__(self) -> tuple[Any, ...]:
        return (GdalEnv, (dict(self._items),))

    def __dask_tokenize__(self) -> object:
        return ("pyr.GdalEnv", self._items)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {'***' if is_secret(k) else repr(masked(k, v))}" for k, v in self._items)
        return f"GdalEnv({{{shown}}})"

    __str__ = __repr__

    def secrets(self) -> tuple[str, ...]:
        """The values of the secret options and proxy credentials (what messages must never show)."""
        return secret_values(dict(self._items))


def _to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "YES" if value else "NO"
    return str(value)


def _endpoint(value: Any, options: dict[str, Any]) -> str:
    """``host[:port]`` for ``AWS_S3_ENDPOINT``; a ``http(s)://`` prefix sets ``AWS_HTTPS``."""
    text = str(value).strip().rstrip("/")
    for scheme, https in (("http://", "NO"), ("https://", "YES")):
        if text.lower().startswith(scheme):
            options["AWS_HTTPS"] = https
            text = text[len(scheme) :]
    if not text or "/" in text:
        raise InvalidArgument(f"aws={{'endpoint': {value!r}}}: expected host[:port] (or http(s)://host[:port]).")
    return text


def cloud_env(*, cloud_defaults: bool = True, aws: Mapping[str, Any] | None = None, **gdal_options: Any) -> GdalEnv:
    """GDAL config options for cloud COG reads, as an immutable mapping.

    Parameters
    ----------
    cloud_defaults
        Add :data:`CLOUD_DEFAULTS`: :data:`NETWORK_DEFAULTS` (no directory
        listing on open, retries with back-off, connect, low-speed and total
        timeouts; every network read gets these anyway, unless set otherwise),
        multi-range reads with merged ranges, HTTP/2 multiplexing, a
        per-process range cache.
    aws
        ``aws_unsigned``, ``region``, ``profile``, ``endpoint`` (host[:port];
        an ``http://`` or ``https://`` prefix also sets ``AWS_HTTPS``),
        ``https`` (default True), ``virtual_hosting``, ``access_key_id``,
        ``secret_access_key``, ``session_token`` and ``requester_pays``,
        mapped to GDAL's ``AWS_*`` options. Credentials (or a profile)
        without ``aws_unsigned`` also set ``AWS_NO_SIGN_REQUEST=NO``.
    **gdal_options
        Other GDAL config options, passed through (they win over the above).

    Returns
    -------
    GdalEnv
        An immutable mapping whose ``repr`` masks secrets.

    Examples
    --------
    >>> env = cloud_env(aws={"aws_unsigned": True, "region": "us-west-2"})
    >>> env["AWS_NO_SIGN_REQUEST"], env["GDAL_DISABLE_READDIR_ON_OPEN"]
    ('YES', 'EMPTY_DIR')
    >>> cloud_env(cloud_defaults=False, aws={"secret_access_key": "s3cr3t"})
    GdalEnv({'AWS_SECRET_ACCESS_KEY': ***})
    >>> dict(cloud_env(cloud_defaults=False, aws={"endpoint": "http://127.0.0.1:9000"}))
    {'AWS_HTTPS': 'NO', 'AWS_S3_ENDPOINT': '127.0.0.1:9000'}
    """
    options: dict[str, Any] = dict(CLOUD_DEFAULTS) if cloud_defaults else {}
    aws = dict(aws or {})
    for key, value in aws.items():
        if key == "endpoint":
            implied: dict[str, Any] = {}
            options["AWS_S3_ENDPOINT"] = _endpoint(value, implied)
            if "https" not in aws:  # an explicit ``https`` wins over the URL's scheme
                options.update(implied)
        elif key in _AWS_KEYS:
            if value is None:
                raise InvalidArgument(f"aws={{{key!r}: None}}: give a value or leave the key out.")
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
    if "aws_unsigned" not in aws and ("access_key_id" in aws or "profile" in aws):
        # credentials mean signed requests, even where an unsigned configure() came first
        options["AWS_NO_SIGN_REQUEST"] = "NO"
    options.update(gdal_options)
    return GdalEnv(options)


def configure(*, cloud_defaults: bool = True, aws: Mapping[str, Any] | None = None, **gdal_options: Any) -> GdalEnv:
    """Apply :func:`cloud_env` process-wide and return it.

    The options go into ``os.environ`` (GDAL reads its config options from
    the environment; worker processes started afterwards, by dask's
    ``processes`` scheduler or a ``distributed`` ``LocalCluster``, inherit
    it) and into GDAL's own process-wide configuration. When ``distributed``
    is in use and a client is current, its running workers get the options
    too, and so do workers that join later (a worker plugin, see
    :class:`pyr.io.worker.GdalEnvPlugin`). Tasks that carry an ``env``
    (``pyr.read(..., env=...)``) apply it on top.

    Parameters
    ----------
    cloud_defaults, aws, **gdal_options
        As for :func:`cloud_env`.

    Returns
    -------
    GdalEnv
        The options applied.

    Examples
    --------
    >>> env = configure(cloud_defaults=False, PYR_DOCTEST_OPTION="on")  # doctest: +SKIP
    >>> os.environ["PYR_DOCTEST_OPTION"]  # doctest: +SKIP
    'on'
    """
    env = cloud_env(cloud_defaults=cloud_defaults, aws=aws, **gdal_options)
    apply_process_wide(env)
    if "distributed" in sys.modules:  # never import distributed just to look
        from pyr.io.worker import register_with_current_client

        register_with_current_client(env)
    return env


def apply_process_wide(env: Mapping[str, str]) -> None:
    """Write ``env`` into ``os.environ`` and GDAL's process-wide configuration."""
    os.environ.update(env)
    if threading.current_thread() is threading.main_thread():
        # rasterio sets options process-wide from the main thread only (from
        # other threads they would be thread-local). Setting them here too
        # keeps them visible after a ``rasterio.Env`` restores older values.
        from rasterio.env import set_gdal_config

        for key, value in env.items():
            set_gdal_config(key, value, normalize=False)
