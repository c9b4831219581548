"""The GDAL options around one open or read: the read's ``env``, the network defaults, the block cache cap.

:func:`applied` is the only place where pyr hands options to GDAL for a
read. It applies, for the duration of a block and in the calling thread:

- the read's ``env`` (credentials go to GDAL through a rasterio session;
  rasterio refuses them as plain options and would look them up with boto3);
- for a network path, :data:`~pyr.io.gdal.env.NETWORK_DEFAULTS` (timeouts,
  retries with back-off, no directory listing) for every option the user
  has not set (in ``env``, ``os.environ``, :func:`pyr.configure`, or an
  active ``rasterio.Env``), so that no network read can hang or probe
  sidecar files, with or without ``env=``;
- once per process, a cap on GDAL's block cache (:data:`DEFAULT_CACHEMAX`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import rasterio
import rasterio.env
import rasterio.errors
from rasterio.env import get_gdal_config, set_gdal_config
from rasterio.session import DummySession, Session

from pyr.errors import InvalidArgument, PyrError
from pyr.io.gdal.env import NETWORK_DEFAULTS, secret_values
from pyr.io.gdal.messages import remembering
from pyr.io.gdal.sources import network_part

__all__ = ["DEFAULT_CACHEMAX", "applied", "cachemax_bytes", "gdal_env", "network_options"]

# rasterio.Env refuses these as options ("credentials are handled by boto3");
# they go to GDAL through a session instead.
_CREDENTIAL_OPTIONS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")

#: GDAL's block cache in processes where pyr reads, unless GDAL_CACHEMAX is set.
DEFAULT_CACHEMAX = 64 * 2**20
_capped_pid: int | None = None


class _Credentials(Session):  # type: ignore[misc]  # rasterio is untyped
    """A rasterio session that hands GDAL the credential options it was given."""

    def __init__(self, options: Mapping[str, str]) -> None:
        self._options = dict(options)

    @property
    def credentials(self) -> dict[str, str]:
        return {}  # never exposed through rasterio

    def get_credential_options(self) -> dict[str, str]:
        return dict(self._options)

    def __repr__(self) -> str:
        return "_Credentials(***)"


def network_options(path: str, env: Mapping[str, str] | None) -> dict[str, str]:
    """The options a read of ``path`` runs under: ``env``, plus the network defaults the user has not set.

    For a local path, ``env`` alone. An option counts as set when it is in
    ``env`` or GDAL sees a value for it (``os.environ``, :func:`pyr.configure`,
    an active ``rasterio.Env``).
    """
    options = dict(env or {})
    if network_part(path) is not None:
        for key, value in NETWORK_DEFAULTS.items():
            if key not in options and get_gdal_config(key, normalize=False) is None:
                options[key] = value
    return options


@contextmanager
def gdal_env(env: Mapping[str, str] | None, *, path: str = "") -> Iterator[None]:
    """Apply ``env`` (GDAL config options), and the network defaults when ``path`` is remote, in the block.

    The values of secret options are remembered for the block so that
    :func:`pyr.io.gdal.messages.sanitize` removes them from error messages.
    """
    options: dict[str, Any] = network_options(path, env)
    with remembering(secret_values(options)):
        if not options:
            with _detached_errors():
                yield
            return
        if "GDAL_CACHEMAX" in options:
            options["GDAL_CACHEMAX"] = cachemax_bytes(options["GDAL_CACHEMAX"])
        creds = {k: options.pop(k) for k in _CREDENTIAL_OPTIONS if k in options}
        session = _Credentials(creds) if creds else DummySession()
        with rasterio.Env(session=session, **options), _detached_errors():
            yield


@contextmanager
def applied(path: str, env: Mapping[str, str] | None) -> Iterator[None]:
    """The options for one open or read of ``path`` (see the module docstring), block cache capped."""
    _cap_block_cache(env)
    with gdal_env(env, path=path):
        yield


@contextmanager
def _detached_errors() -> Iterator[None]:
    """Let pyr's errors leave the block without the rasterio exceptions they replaced.

    ``raise ReadError(...) from None`` hides the chain from tracebacks but
    keeps it in ``__context__``; ``distributed`` pickles that chain with the
    error, fails to unpickle rasterio's exceptions, and would hand the user a
    bare ``Exception`` instead of the ``ReadError``.
    """
    try:
        yield
    except PyrError as err:
        err.__context__ = None
        err.__cause__ = None
        raise


def cachemax_bytes(value: str | int) -> int:
    """GDAL's ``GDAL_CACHEMAX`` as bytes: ``"64"`` is MB (below 100000), ``"5%"`` of RAM.

    rasterio applies this option with ``GDALSetCacheMax``, which takes bytes.
    """
    text = str(value).strip()
    try:
        if text.endswith("%"):
            ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            return int(ram * float(text[:-1]) / 100)
        number = int(float(text))
    except ValueError:
        raise InvalidArgument(f"GDAL_CACHEMAX={value!r}: expected MB, bytes or a percentage.") from None
    return number * 2**20 if number < 100_000 else number


def _cap_block_cache(env: Mapping[str, str] | None) -> None:
    """Cap GDAL's block cache once per process, unless the user set GDAL_CACHEMAX.

    pyr reads each block once (chunks are whole multiples of the blocks), so
    GDAL's default cache (5% of RAM per process) only holds memory.
    """
    global _capped_pid
    if _capped_pid == os.getpid():
        return
    _capped_pid = os.getpid()
    if (env and "GDAL_CACHEMAX" in env) or "GDAL_CACHEMAX" in os.environ or "GDAL_CACHEMAX" in _rasterio_env():
        return
    set_gdal_config("GDAL_CACHEMAX", DEFAULT_CACHEMAX)


def _rasterio_env() -> dict[str, Any]:
    """Options of the user's active ``rasterio.Env`` (empty when none is active)."""
    try:
        return dict(rasterio.env.getenv())
    except rasterio.errors.EnvError:
        return {}
