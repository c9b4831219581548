"""How the native fetcher asks for a ``/vsis3/`` object: its HTTP URL, and the signature of each request.

GDAL's own options say where the object is and how to ask for it, read as
GDAL reads them: the read's ``env``, then GDAL's configuration
(:func:`rasterio.env.get_gdal_config`: an active ``rasterio.Env``,
:func:`pyr.configure`, and ``os.environ``, which GDAL's config lookup falls
back to). As in GDAL:

- ``AWS_NO_SIGN_REQUEST`` on: unsigned requests (public buckets). With
  ``AWS_REQUEST_PAYER`` too, GDAL reads it.
- else ``AWS_SECRET_ACCESS_KEY`` and ``AWS_ACCESS_KEY_ID`` (and
  ``AWS_SESSION_TOKEN`` if set): every request signed with AWS Signature
  Version 4 (botocore's signer; without botocore, GDAL reads it), for the
  region ``AWS_DEFAULT_REGION``, else ``AWS_REGION``, else ``us-east-1``,
  with ``x-amz-request-payer`` when ``AWS_REQUEST_PAYER`` is set
  (``requester``: requester-pays buckets).
- else (credentials from a profile or credentials file, ``AWS_PROFILE``, web
  identity, an assumed role, instance metadata): GDAL reads it.

``AWS_S3_ENDPOINT`` (default AWS, regional with the region), ``AWS_HTTPS``
and ``AWS_VIRTUAL_HOSTING`` (bucket as a host name where DNS allows it) say
where requests go. A bucket in another region than the one configured is
answered with a redirect or an ``AuthorizationHeaderMalformed`` error naming
the right one; the native path then declines the file and GDAL, which
follows those, reads it (see :class:`pyr.io.cog.fetch.Redirected`).
GDAL's path-specific credentials (``[credentials]`` sections of a GDAL
configuration file) are not seen here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

import attrs

__all__ = ["SigV4", "s3_request"]

_YES = ("YES", "TRUE", "ON", "1")
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def _option(env: Mapping[str, str] | None, key: str) -> str | None:
    """``key`` from ``env``, else GDAL's configuration (which falls back to ``os.environ``, as GDAL's does)."""
    from rasterio.env import get_gdal_config

    value = (env or {}).get(key)
    if value is None:
        found = get_gdal_config(key, normalize=False)
        value = None if found is None else str(found)
    return value


@attrs.frozen(repr=False)
class SigV4:
    """Signs a GET request for S3 with AWS Signature Version 4 (botocore's ``S3SigV4Auth``).

    Called with the URL and the request's headers before each attempt, it
    returns the headers to send: those plus ``Authorization``, a fresh
    ``X-Amz-Date``, ``X-Amz-Content-SHA256``, ``X-Amz-Security-Token`` (a
    session token) and ``x-amz-request-payer`` (requester pays), all of them
    signed. Equal credentials give equal signers (the read-ahead keeps
    ranges per URL and signer). Its ``repr`` shows no credential.
    """

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    region: str
    request_payer: str | None = None

    def __call__(self, url: str, headers: dict[str, str]) -> dict[str, str]:
        """``headers`` and the signature headers of ``GET url`` now."""
        from botocore.auth import S3SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method="GET", url=url, headers=dict(headers))
        if self.request_payer:
            request.headers["x-amz-request-payer"] = self.request_payer
        credentials = Credentials(self.access_key_id, self.secret_access_key, self.session_token)
        S3SigV4Auth(credentials, "s3", self.region).add_auth(request)
        return dict(request.headers.items())

    def __repr__(self) -> str:
        return f"SigV4(region={self.region!r}, request_payer={self.request_payer!r})"


def _botocore_available() -> bool:
    """Whether botocore's signer can be imported (not cached, so that tests can hide it)."""
    try:
        import botocore.auth
        import botocore.awsrequest
        import botocore.credentials  # noqa: F401
    except ImportError:
        return False
    return True


def _signer(env: Mapping[str, str] | None, region: str, payer: str | None) -> SigV4 | None:
    """The signer of GDAL's static credentials, else ``None`` (no such credentials, or no botocore)."""
    secret = _option(env, "AWS_SECRET_ACCESS_KEY")
    key_id = _option(env, "AWS_ACCESS_KEY_ID")
    if not secret or not key_id or not _botocore_available():
        return None  # a profile, instance credentials ... (or an error GDAL reports): GDAL reads it
    return SigV4(key_id, secret, _option(env, "AWS_SESSION_TOKEN") or None, region, payer)


def s3_request(path: str, env: Mapping[str, str] | None) -> tuple[str, SigV4 | None] | None:
    """The URL of ``/vsis3/bucket/key`` and the signer of its requests (``None``: unsigned); ``None``: GDAL reads it.

    >>> aws = {"AWS_NO_SIGN_REQUEST": "YES", "AWS_REQUEST_PAYER": "", "AWS_S3_ENDPOINT": "", "AWS_HTTPS": "YES",
    ...     "AWS_DEFAULT_REGION": ""}
    >>> s3_request("/vsis3/sentinel-cogs/a/B04.tif", {**aws, "AWS_REGION": "us-west-2", "AWS_VIRTUAL_HOSTING": "1"})
    ('https://sentinel-cogs.s3.us-west-2.amazonaws.com/a/B04.tif', None)
    >>> s3_request("/vsis3/b/k.tif", {**aws, "AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO",
    ...     "AWS_VIRTUAL_HOSTING": "FALSE"})
    ('http://127.0.0.1:9000/b/k.tif', None)
    >>> keys = {**aws, "AWS_NO_SIGN_REQUEST": "NO", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    ...     "AWS_SESSION_TOKEN": "", "AWS_REGION": "eu-west-1", "AWS_VIRTUAL_HOSTING": "TRUE"}
    >>> s3_request("/vsis3/my-bucket/a b.tif", {**keys, "AWS_REQUEST_PAYER": "requester"})
    ('https://my-bucket.s3.eu-west-1.amazonaws.com/a%20b.tif', SigV4(region='eu-west-1', request_payer='requester'))
    >>> s3_request("/vsis3/b/k.tif", {**keys, "AWS_SECRET_ACCESS_KEY": ""}) is None  # a profile's: GDAL reads it
    True
    """
    if not path.startswith("/vsis3/"):
        return None
    bucket, _, key = path[len("/vsis3/") :].partition("/")
    if not bucket or not key or "?" in path:
        return None
    # GDAL: AWS_REGION, overridden by the standard AWS_DEFAULT_REGION
    region = _option(env, "AWS_DEFAULT_REGION") or _option(env, "AWS_REGION") or "us-east-1"
    payer = _option(env, "AWS_REQUEST_PAYER") or None
    sign = None
    if (_option(env, "AWS_NO_SIGN_REQUEST") or "").upper() in _YES:
        if payer:
            return None
    else:
        sign = _signer(env, region, payer)
        if sign is None:
            return None
    endpoint = _option(env, "AWS_S3_ENDPOINT")
    if not endpoint:
        endpoint = "s3.amazonaws.com" if region == "us-east-1" else f"s3.{region}.amazonaws.com"
    scheme = "https" if (_option(env, "AWS_HTTPS") or "YES").upper() in _YES else "http"
    virtual = (_option(env, "AWS_VIRTUAL_HOSTING") or "TRUE").upper() in _YES
    where = quote(key, safe="/~")  # as GDAL's CPLAWSURLEncode: all but unreserved characters and "/"
    if virtual and _DNS_BUCKET.match(bucket):
        return f"{scheme}://{bucket}.{endpoint}/{where}", sign
    return f"{scheme}://{endpoint}/{bucket}/{where}", sign
