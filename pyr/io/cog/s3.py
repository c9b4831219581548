"""The HTTP URL of a ``/vsis3/`` object the native fetcher may read: public buckets, unsigned requests.

GDAL's own options say where the object is and how to ask for it (the
read's ``env``, then GDAL's configuration, as for GDAL itself):
``AWS_NO_SIGN_REQUEST`` must be on (anything signed, requester-pays or
resolved from a profile is left to GDAL), ``AWS_S3_ENDPOINT`` (default AWS,
regional with ``AWS_REGION``/``AWS_DEFAULT_REGION``), ``AWS_HTTPS`` and
``AWS_VIRTUAL_HOSTING`` (bucket as a host name where DNS allows it) as GDAL
reads them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

__all__ = ["unsigned_url"]

_YES = ("YES", "TRUE", "ON", "1")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _option(env: Mapping[str, str] | None, key: str) -> str | None:
    from rasterio.env import get_gdal_config

    value = (env or {}).get(key)
    if value is None:
        found = get_gdal_config(key, normalize=False)
        value = None if found is None else str(found)
    return value


def unsigned_url(path: str, env: Mapping[str, str] | None) -> str | None:
    """``https://bucket.s3.amazonaws.com/key`` (or the endpoint's form) for ``/vsis3/bucket/key``; else ``None``.

    ``None`` unless ``AWS_NO_SIGN_REQUEST`` is on, or when the request
    would need signing or a header (``AWS_REQUEST_PAYER``).

    >>> aws = {"AWS_NO_SIGN_REQUEST": "YES", "AWS_REQUEST_PAYER": "", "AWS_S3_ENDPOINT": "", "AWS_HTTPS": "YES"}
    >>> unsigned_url("/vsis3/sentinel-cogs/a/B04.tif", {**aws, "AWS_REGION": "us-west-2", "AWS_VIRTUAL_HOSTING": "1"})
    'https://sentinel-cogs.s3.us-west-2.amazonaws.com/a/B04.tif'
    >>> unsigned_url("/vsis3/b/k.tif", {**aws, "AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO",
    ...     "AWS_VIRTUAL_HOSTING": "FALSE"})
    'http://127.0.0.1:9000/b/k.tif'
    """
    if not path.startswith("/vsis3/"):
        return None
    bucket, _, key = path[len("/vsis3/") :].partition("/")
    if not bucket or not key or "?" in path:
        return None
    if (_option(env, "AWS_NO_SIGN_REQUEST") or "").upper() not in _YES or _option(env, "AWS_REQUEST_PAYER"):
        return None
    region = _option(env, "AWS_REGION") or _option(env, "AWS_DEFAULT_REGION") or "us-east-1"
    endpoint = _option(env, "AWS_S3_ENDPOINT")
    if not endpoint:
        endpoint = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    scheme = "https" if (_option(env, "AWS_HTTPS") or "YES").upper() in _YES else "http"
    virtual = (_option(env, "AWS_VIRTUAL_HOSTING") or "TRUE").upper() in _YES
    where = quote(key, safe="/~")
    if virtual and _DNS_BUCKET.match(bucket):
        return f"{scheme}://{bucket}.{endpoint}/{where}"
    return f"{scheme}://{endpoint}/{bucket}/{where}"
