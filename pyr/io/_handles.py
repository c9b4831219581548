"""Per-process, per-thread cache of open rasterio datasets.

A dataset handle is never shared between threads (GDAL handles are not
thread-safe) and never crosses a fork (the cache is keyed by process id).
Task graphs hold only the picklable :class:`SourceSpec`, never a handle.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import attrs
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from pyr.errors import ReadError
from pyr.io.env import GdalEnv

__all__ = ["SourceSpec", "close_all", "gdal_env", "open_dataset"]

MAX_HANDLES_PER_THREAD = 64
_local = threading.local()


@attrs.frozen
class SourceSpec:
    """What a task needs to open one source: picklable, no handle inside."""

    path: str  # the GDAL path
    name: str  # the user-facing name for messages (query string elided)
    env: GdalEnv | None = None
    overview: int | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.path, self.overview, self.env)


@contextmanager
def gdal_env(env: Mapping[str, str] | None) -> Iterator[None]:
    """Apply ``env`` (GDAL config options) for the duration of the block."""
    if env:
        with rasterio.Env(**env):
            yield
    else:
        yield


def _cache() -> OrderedDict[tuple[Any, ...], Any]:
    cache = getattr(_local, "handles", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = OrderedDict()
        _local.handles = cache
        _local.pid = os.getpid()
    return cache


def open_dataset(spec: SourceSpec) -> Any:
    """The cached dataset for ``spec`` in this thread, opened on first use.

    Must be called inside ``gdal_env(spec.env)``. Raises :class:`ReadError`
    naming the source when GDAL cannot open it.
    """
    cache = _cache()
    key = spec.key()
    ds = cache.get(key)
    if ds is not None and not ds.closed:
        cache.move_to_end(key)
        return ds
    kwargs = {} if spec.overview is None else {"overview_level": spec.overview}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            ds = rasterio.open(spec.path, **kwargs)
    except (RasterioError, OSError) as err:
        raise ReadError(f"Cannot open {spec.name!r}: {_reason(err)}") from None
    cache[key] = ds
    while len(cache) > MAX_HANDLES_PER_THREAD:
        _, old = cache.popitem(last=False)
        old.close()
    return ds


def forget(spec: SourceSpec) -> None:
    """Close and drop this thread's handle for ``spec`` (after a failed read)."""
    ds = _cache().pop(spec.key(), None)
    if ds is not None:
        ds.close()


def close_all() -> None:
    """Close this thread's handles."""
    cache = _cache()
    while cache:
        cache.popitem()[1].close()


def _reason(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0][:300]
