"""GDAL's messages made fit to show: no query strings, credentials or secrets, and GDAL's reason kept.

Every message pyr builds from a GDAL error goes through :func:`reason` (or
:func:`sanitize`), and rasterio's log records of GDAL warnings go through a
logging filter that does the same. Inside :func:`remembering`, the secret
values of the read's env are removed too; GDAL's network warnings of the
block are kept as notes, so that an error that is only a consequence of a
network failure ("TIFFReadEncodedTile() failed") still says what failed.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pyr.io.gdal.sources import SourceSpec, strip_userinfo

__all__ = ["out_of_files", "reason", "remembering", "sanitize"]

_local = threading.local()

_QUERY = re.compile(r"((?:https?|s3|gs|az)://[^\s'\"?]*|/vsi\w+/[^\s'\"?]*)\?[^\s'\"]*", re.IGNORECASE)
_BARE_QUERY = re.compile(r"\?[\w.%-]+=[^\s'\"]*")  # a query string after a file name ("B04.tif?sig=...")
_AUTH = re.compile(r"((?:authorization|x-amz-security-token|x-amz-signature|signature|sig|token)\s*[:=]\s*)\S+", re.I)
_NETWORK = re.compile(r"HTTP|curl|timed? ?out|connect|resolve|SSL|S3|response_code|403|404|5\d\d", re.IGNORECASE)
_RETRYING = re.compile(r"\.?\s*Retrying again in [\d.]+ secs?\.?", re.IGNORECASE)
_EMFILE = re.compile(r"too many open files", re.IGNORECASE)


@contextmanager
def remembering(secrets: tuple[str, ...]) -> Iterator[None]:
    """Within the block, :func:`sanitize` also removes ``secrets``, and GDAL's network warnings are noted."""
    outer = getattr(_local, "secrets", ())
    _local.secrets = outer + secrets
    _local.notes = deque(maxlen=4)
    try:
        yield
    finally:
        _local.secrets = outer


def sanitize(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` without query strings of URLs, credentials in URLs, auth headers, or any of ``secrets``.

    The secrets of the env of an enclosing :func:`remembering` block are removed too.

    >>> sanitize("'/vsicurl/https://h/a.tif?X-Amz-Signature=abc' not found")
    "'/vsicurl/https://h/a.tif?...' not found"
    >>> sanitize("B04.tif?se=2030&sig=abc, band 1: failed")
    'B04.tif?... band 1: failed'
    >>> sanitize("denied for key s3cr3t", ("s3cr3t",))
    'denied for key ***'
    >>> sanitize("http://me:s3cr3t@host/a.tif: 404")
    'http://***@host/a.tif: 404'
    """
    text = _QUERY.sub(r"\1?...", text)
    text = _BARE_QUERY.sub("?...", text)
    text = _AUTH.sub(r"\1***", text)
    text = strip_userinfo(text)
    for secret in sorted({*secrets, *getattr(_local, "secrets", ())}, key=len, reverse=True):
        if secret and len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def reason(err: BaseException, spec: SourceSpec | None = None) -> str:
    """GDAL's reason, first line, with the GDAL path shown as the source's name and secrets removed.

    rasterio often puts GDAL's own message in the exception's cause. When
    GDAL's error is only a consequence ("TIFFReadEncodedTile() failed") of a
    network failure it reported as a warning (the last HTTP status, after
    its retries), that warning is added.
    """
    cause = err.__cause__ or err.__context__
    if cause is not None and "previous exception" in str(err):
        err = cause
    text = str(err).strip() or type(err).__name__
    secrets: tuple[str, ...] = ()
    if spec is not None:
        text = text.replace(spec.path, spec.name)
        if spec.env is not None:
            secrets = spec.env.secrets()
    text = sanitize(text.splitlines()[0], secrets)[:300]
    notes = getattr(_local, "notes", None)
    if notes and not _NETWORK.search(text):
        note = _RETRYING.sub("", notes[-1]).strip()
        if spec is not None:
            note = note.replace(spec.path, spec.name)
        text = f"{text} (after: {sanitize(note, secrets)[:200]})"
    return text


def out_of_files(err: BaseException) -> bool:
    """Whether ``err`` (or what it wraps) says the process ran out of file descriptors (EMFILE/ENFILE)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if getattr(current, "errno", None) in (errno.EMFILE, errno.ENFILE) or _EMFILE.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


class _GdalLogFilter(logging.Filter):
    """Removes query strings and secrets from GDAL's messages logged by rasterio; keeps network ones as notes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is not ours to fix
            return True
        clean = sanitize(message)
        if clean != message:
            record.msg, record.args = clean, ()
        notes: Any = getattr(_local, "notes", None)
        if notes is not None and _NETWORK.search(clean):
            notes.append(clean)
        return True


def _install_log_filter() -> None:
    for name in ("rasterio._env", "rasterio._err", "rasterio._io", "rasterio._base"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _GdalLogFilter) for f in logger.filters):
            logger.addFilter(_GdalLogFilter())


_install_log_filter()
