"""The layouts this process knows: one (layout, GDAL header) per file, kept, and those being read ahead.

Both are keyed by the source, its overview, its GDAL options and (local
files) the file's inode, size and modification time (:func:`key`), so a
replaced local file is read again; each keeps at most :data:`CACHE_SIZE`
files, the least recently used dropped first. A file the native path
declines is kept as ``None``. A layout read ahead (:mod:`pyr.io.cog.ahead`)
is held as a future until the file's first read takes it (:func:`take_early`).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from pyr.io.cog.fetch import Redirected, Source
from pyr.io.cog.layout import Layout, parse
from pyr.io.gdal.sources import SourceSpec

__all__ = ["CACHE_SIZE", "clear", "early", "key", "lookup", "read_layout", "store", "take_early"]

#: Files kept per process, in the cache and among the layouts read ahead.
CACHE_SIZE = 256

_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], tuple[Layout, Any] | None] = OrderedDict()
_early: OrderedDict[tuple[Any, ...], Future[Layout | None]] = OrderedDict()


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()
    _early.clear()  # their threads are the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


def key(spec: SourceSpec, source: Source) -> tuple[Any, ...]:
    """The key of ``spec``: the source, its overview and GDAL options, and (local files) its identity."""
    return (*spec.key(), source.stamp())


def lookup(k: tuple[Any, ...]) -> tuple[bool, tuple[Layout, Any] | None]:
    """Whether file ``k`` is known, and its (layout, header) (``None``: declined)."""
    with _lock:
        if k not in _cache:
            return False, None
        _cache.move_to_end(k)
        return True, _cache[k]


def store(k: tuple[Any, ...], entry: tuple[Layout, Any] | None) -> None:
    """Keep ``entry`` for file ``k`` (``None``: declined)."""
    with _lock:
        _cache[k] = entry
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)


def early(k: tuple[Any, ...], start: Callable[[], Future[Layout | None]]) -> Future[Layout | None]:
    """The layout of file ``k`` being read ahead; ``start()`` starts reading it if nobody has yet."""
    with _lock:
        future = _early.get(k)
        if future is None:
            _early[k] = future = start()
            while len(_early) > CACHE_SIZE:
                _early.popitem(last=False)
        return future


def take_early(k: tuple[Any, ...]) -> Future[Layout | None] | None:
    """The layout of file ``k`` read ahead, if any, for its first read (it is no longer held)."""
    with _lock:
        return _early.pop(k, None)


def clear() -> None:
    """Forget every layout of this process, kept or read ahead."""
    with _lock:
        _cache.clear()
        _early.clear()


def read_layout(source: Source, overview: int | None) -> Layout | None:
    """The layout of ``source`` read now; ``None`` when the native path declines the file.

    Declined: a file it does not read or cannot parse (GDAL reads it, or says
    what is wrong with it), or one the server says to ask for elsewhere (S3:
    another region or endpoint, which GDAL follows). A failed fetch raises
    :class:`~pyr.io.cog.fetch.FetchError`.
    """
    try:
        return parse(source.read_at, overview)
    except (ValueError, Redirected):
        return None
