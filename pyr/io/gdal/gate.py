"""Who may use a network path in this process now (:class:`_Gate`), and dropping GDAL's cache of it.

GDAL's network file systems (``/vsicurl/``, ``/vsis3/``, ...) keep a cache
per process, keyed by URL, of file properties (existence, size) and of
downloaded ranges, failures included: one 404 or exhausted 503 would make
the URL unreadable for the rest of a worker's life, and bytes fetched with
one set of credentials would be served to a task holding other (or no)
credentials. So pyr drops GDAL's cache for a path after a failed open or
read (:func:`clear_network_cache`), and lets threads use a network path
under one access setting (credentials, endpoint, headers) at a time,
dropping the cache when the setting changes (:func:`gated`).
"""

from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import rasterio

from pyr.io.gdal.env import GdalEnv, is_secret
from pyr.io.gdal.sources import SourceSpec, network_part

__all__ = ["clear_network_cache", "gated"]

_local = threading.local()
# Options that decide what a URL resolves to or who may read it.
_ACCESS_PREFIXES = ("AWS_", "GS_", "GOOGLE_", "AZURE_", "OSS_", "SWIFT_", "CPL_AWS_", "CPL_GS_", "GDAL_HTTP_AUTH")
_ACCESS_OPTIONS = ("GDAL_HTTP_HEADERS", "GDAL_HTTP_HEADER_FILE", "GDAL_HTTP_USERPWD", "GDAL_HTTP_BEARER")

Access = tuple[tuple[str, str], ...]


def _access(env: Mapping[str, str] | None) -> Access:
    """The options of ``env`` that decide what a URL resolves to or who may read it, sorted."""
    if not env:
        return ()
    if isinstance(env, GdalEnv):
        return _access_of(env)  # once per env value: every network read asks
    return tuple(
        sorted((k, v) for k, v in env.items() if k.startswith(_ACCESS_PREFIXES) or k in _ACCESS_OPTIONS or is_secret(k))
    )


@functools.lru_cache(maxsize=256)
def _access_of(env: GdalEnv) -> Access:
    return _access(dict(env))


class _Gate:
    """Who may use one network path in this process now: one access setting at a time.

    GDAL's cache of a path is shared by every thread of the process, failures
    included. While one thread reads under one access setting, a thread under
    another (other credentials, endpoint or headers) waits; the first thread
    under a new setting drops GDAL's cache of the path before it goes on. So a
    task never reads bytes fetched with another task's credentials, and one
    task's 403 is never a cached failure for a task that holds the token.
    Threads under the same setting share the path freely; once a thread under
    another setting waits, newcomers under the current one queue behind it,
    and when the path falls idle the setting that has waited longest goes next
    (so neither side starves the other).
    """

    __slots__ = ("access", "active", "cond", "turn", "waiting")

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.access: Access | None = None  # the setting of the last (or current) users
        self.active = 0  # threads inside now
        self.waiting: dict[Access, int] = {}  # threads waiting, by setting, oldest setting first
        self.turn: Access | None = None  # the setting that goes next, once set

    def may_enter(self, access: Access) -> bool:
        if self.turn is not None:
            return access == self.turn and (self.active == 0 or self.access == access)
        if self.active == 0:
            return True
        return self.access == access and not any(a != access for a in self.waiting)

    def enter(self, access: Access) -> None:
        """Wait for ``access``'s turn and go in (call with ``cond`` held)."""
        if not self.may_enter(access):
            self.waiting[access] = self.waiting.get(access, 0) + 1
            try:
                self.cond.wait_for(lambda: self.may_enter(access))
            finally:
                self.waiting[access] -= 1
                if not self.waiting[access]:
                    del self.waiting[access]
        if self.turn == access and access not in self.waiting:
            self.turn = None  # every thread that waited for this turn is in
        self.active += 1

    def leave(self) -> None:
        """Go out; the last one out hands the path to the setting waiting longest (call with ``cond`` held)."""
        self.active -= 1
        if self.active == 0 and self.waiting:
            self.turn = next(iter(self.waiting))
        self.cond.notify_all()


_gates: OrderedDict[str, _Gate] = OrderedDict()
_gates_lock = threading.Lock()
MAX_GATES = 4096


def _gate_for(part: str) -> _Gate:
    with _gates_lock:
        gate = _gates.get(part)
        if gate is None:
            gate = _gates[part] = _Gate()
            if len(_gates) > MAX_GATES:  # forget the oldest idle gate (its next user clears the cache)
                for old, g in _gates.items():
                    if g.active == 0 and not g.waiting and old != part:
                        del _gates[old]
                        break
        else:
            _gates.move_to_end(part)
        return gate


@contextmanager
def gated(spec: SourceSpec) -> Iterator[None]:
    """Hold ``spec``'s network path under ``spec``'s access setting (see :class:`_Gate`).

    Local paths pass straight through; a thread already inside for this path
    (a nested open) does not wait for itself.
    """
    part = network_part(spec.path)
    held: set[str] = _local.__dict__.setdefault("gated", set())
    if part is None or part in held:
        yield
        return
    access = _access(spec.env)
    gate = _gate_for(part)
    with gate.cond:
        gate.enter(access)
        if gate.access is not None and gate.access != access:
            clear_network_cache(part)
        gate.access = access
    held.add(part)
    try:
        yield
    finally:
        held.discard(part)
        with gate.cond:
            gate.leave()


@functools.cache
def _libgdal() -> Any:
    """The libgdal that rasterio loaded, through ctypes (``None`` when it cannot be found)."""
    candidates: list[str] = []
    try:
        with open("/proc/self/maps") as maps:  # Linux: exactly the library in use
            candidates += sorted({line.split()[-1] for line in maps if "libgdal" in line and "/" in line})
    except OSError:
        pass
    root = os.path.dirname(os.path.dirname(rasterio.__file__))
    for pattern in ("rasterio.libs/libgdal*", "rasterio/.dylibs/libgdal*"):  # wheels (Linux, macOS)
        candidates += sorted(glob.glob(os.path.join(root, pattern)))
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
            fn = lib.VSICurlPartialClearCache
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_char_p]
        fn.restype = None
        return lib
    return None


def clear_network_cache(path: str) -> bool:
    """Drop GDAL's per-process cache (file properties, ranges) of a network ``path``.

    Returns whether a cache was cleared (``False`` for local paths, or when
    libgdal cannot be reached through ctypes).
    """
    part = network_part(path)
    lib = None if part is None else _libgdal()
    if lib is None or part is None:
        return False
    lib.VSICurlPartialClearCache(part.encode("utf-8", "surrogateescape"))
    return True
