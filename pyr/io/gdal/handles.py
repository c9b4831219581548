"""One cache of open GDAL datasets per process, capped, shared by all threads; :func:`dataset` is the way in.

A dataset handle is checked out by one thread at a time (GDAL handles are
not thread-safe) and checked back in when the thread is done with it; any
thread may then reuse it. The number of open handles in the process, idle
and checked out, is capped (:func:`handle_limit`): well under the process's
open-file limit, whatever the number of threads. When the cap is reached,
the least recently used idle handle is closed; when every handle is checked
out, a thread waits for one to come back. A handle never crosses a fork (the
child starts with an empty cache and never touches its parent's handles),
and task graphs hold only the picklable :class:`SourceSpec`, never a handle.

Running out of file descriptors anyway (other code holds them) is an
``OSError`` (``EMFILE``), never a :class:`~pyr.errors.ReadError`: the source
is fine, the process is starved, so ``read_cube(..., on_error="nodata")``
does not turn it into nodata.
"""

from __future__ import annotations

import errno
import os
import resource
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

from pyr._malloc import tune_once as tune_malloc_once
from pyr._warnings import quiet
from pyr.errors import InvalidArgument, ReadError
from pyr.io.gdal.context import applied
from pyr.io.gdal.gate import clear_network_cache, gated
from pyr.io.gdal.messages import out_of_files, reason
from pyr.io.gdal.sources import SourceSpec

__all__ = ["close_all", "dataset", "handle_limit", "open_count", "out_of_files_error"]

#: Handles per process unless ``PYR_MAX_OPEN_DATASETS`` says otherwise (never above a quarter of
#: the open-file limit: a dataset may hold several files, and the rest of the process needs some).
DEFAULT_MAX_HANDLES = 256
_ENV_VAR = "PYR_MAX_OPEN_DATASETS"

Stamp = tuple[int, int, int] | None


@attrs.define(eq=False)
class _Handle:
    key: tuple[Any, ...]
    ds: Any
    stamp: Stamp
    generation: int


class _Pool:
    """The open handles of this process: idle ones by key and in LRU order, and a count of all."""

    def __init__(self) -> None:
        self.cond = threading.Condition(threading.Lock())
        self.idle: dict[tuple[Any, ...], list[_Handle]] = {}
        self.lru: OrderedDict[int, _Handle] = OrderedDict()  # idle handles, least recently used first
        self.count = 0  # open handles, idle and checked out (and being opened)
        self.generation = 0  # close_all() bumps it: older handles are closed when they come back
        self.limit: int | None = None

    def take_idle(self, key: tuple[Any, ...], stamp: Stamp, stale: list[_Handle]) -> _Handle | None:
        """An idle handle for ``key`` opened on the same file (call with ``cond`` held)."""
        handles = self.idle.get(key)
        found = None
        while handles and found is None:
            handle = handles.pop()
            del self.lru[id(handle)]
            if handle.stamp == stamp and not handle.ds.closed:
                found = handle
            else:
                stale.append(handle)  # the file was replaced since it was opened: reopen
                self.count -= 1
        if not handles:
            self.idle.pop(key, None)
        return found

    def evict_one(self, stale: list[_Handle]) -> bool:
        """Close the least recently used idle handle (call with ``cond`` held); whether there was one."""
        if not self.lru:
            return False
        _, handle = self.lru.popitem(last=False)
        handles = self.idle[handle.key]
        handles.remove(handle)
        if not handles:
            del self.idle[handle.key]
        stale.append(handle)
        self.count -= 1
        return True


_pool = _Pool()
_local = threading.local()  # .held: handles this thread has checked out
_abandoned: list[_Pool] = []  # a forked child's copy of its parent's pool: never used, never closed


def _after_fork_in_child() -> None:
    global _pool
    _abandoned.append(_pool)
    _pool = _Pool()
    _local.__dict__.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def handle_limit() -> int:
    """How many datasets this process keeps open at most.

    ``PYR_MAX_OPEN_DATASETS`` (default 256), never above a quarter of the
    soft open-file limit (``RLIMIT_NOFILE``), and at least 1.
    """
    text = os.environ.get(_ENV_VAR, "").strip()
    try:
        wanted = int(text) if text else DEFAULT_MAX_HANDLES
    except ValueError:
        raise InvalidArgument(f"{_ENV_VAR}={text!r}: expected a positive integer.") from None
    if wanted < 1:
        raise InvalidArgument(f"{_ENV_VAR}={text!r}: expected a positive integer.")
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY:
        wanted = min(wanted, soft // 4)
    return max(1, wanted)


def open_count() -> int:
    """How many datasets this process holds open now (idle and checked out)."""
    return _pool.count


def _file_stamp(path: str) -> Stamp:
    """Identity of a local file's content (inode, size, mtime); ``None`` for GDAL virtual paths."""
    if path.startswith("/vsi"):
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _close(handles: list[_Handle]) -> None:
    for handle in handles:
        handle.ds.close()


def out_of_files_error(spec: SourceSpec) -> OSError:
    """The error for a process that has no file descriptor left to read ``spec`` with."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OSError(
        errno.EMFILE,
        f"Too many open files in this process while reading {spec.name!r} (open-file limit {soft}; pyr holds "
        f"{_pool.count} datasets, at most {handle_limit()}). The source is not at fault: close files, raise "
        f"the limit (ulimit -n) or lower {_ENV_VAR}.",
    )


def _checkout(spec: SourceSpec) -> _Handle:
    """A handle for ``spec`` that no other thread uses until :func:`_checkin`; opened if none is idle."""
    pool = _pool
    key = spec.key()
    stamp = _file_stamp(spec.path)
    held = _local.__dict__.setdefault("held", 0)
    stale: list[_Handle] = []
    try:
        with pool.cond:
            if pool.limit is None:
                pool.limit = handle_limit()
            while True:
                handle = pool.take_idle(key, stamp, stale)
                if handle is not None:
                    return handle
                # a thread that holds a handle already (a nested open) never waits for itself
                if pool.count < pool.limit or pool.evict_one(stale) or held:
                    break
                pool.cond.wait()
            pool.count += 1  # this thread's new handle, from now on
            generation = pool.generation
    finally:
        _close(stale)
    try:
        ds = _open(spec)
    except BaseException:
        with pool.cond:
            pool.count -= 1
            pool.cond.notify()
        raise
    return _Handle(key, ds, stamp, generation)


def _open(spec: SourceSpec) -> Any:
    tune_malloc_once()
    kwargs = {} if spec.overview is None else {"overview_level": spec.overview}
    for attempt in (1, 2):
        try:
            with quiet(NotGeoreferencedWarning):
                return rasterio.open(spec.path, **kwargs)
        except (RasterioError, OSError) as err:
            clear_network_cache(spec.path)
            if not out_of_files(err):
                raise ReadError(f"Cannot open {spec.name!r}: {reason(err, spec)}") from None
            if attempt == 2 or not _close_idle():
                raise out_of_files_error(spec) from None
    raise AssertionError("unreachable")


def _close_idle() -> bool:
    """Close every idle handle of the process (to free descriptors); whether any was closed."""
    stale: list[_Handle] = []
    with _pool.cond:
        while _pool.evict_one(stale):
            pass
        _pool.cond.notify_all()
    _close(stale)
    return bool(stale)


def _checkin(handle: _Handle, *, keep: bool) -> None:
    """Give ``handle`` back: idle for the next user, or closed (``keep=False``, or after :func:`close_all`)."""
    pool = _pool
    with pool.cond:
        if keep and handle.generation == pool.generation and not handle.ds.closed:
            pool.idle.setdefault(handle.key, []).append(handle)
            pool.lru[id(handle)] = handle
            handle = None  # type: ignore[assignment]
        else:
            pool.count -= 1
        pool.cond.notify()
    if handle is not None:
        handle.ds.close()


@contextmanager
def dataset(spec: SourceSpec) -> Iterator[Any]:
    """The dataset for ``spec``, this thread's alone for the block, inside its GDAL options and its path's gate.

    Everything that touches the dataset belongs inside the block. An
    exception leaving the block closes the handle and drops GDAL's cache of
    the path (a failed read must not leave a broken handle or a cached
    failure behind).
    """
    with gated(spec), applied(spec.path, spec.env):
        handle = _checkout(spec)
        _local.held = _local.__dict__.get("held", 0) + 1
        ok = False
        try:
            yield handle.ds
            ok = True
        finally:
            _local.held -= 1
            _checkin(handle, keep=ok)
            if not ok:
                clear_network_cache(spec.path)


def close_all() -> None:
    """Close every idle handle of the process now, and every checked-out one when it comes back."""
    with _pool.cond:
        _pool.generation += 1
    _close_idle()
