"""Keep glibc from page-faulting every chunk buffer anew in the processes that run pyr's tasks.

A chunk task allocates a few buffers of megabytes (the GDAL block, the
decoded chunk, the float32 result, the codec's output) and frees them. With
glibc's defaults the heap top they leave is trimmed back to the OS whenever it
exceeds twice the (adaptive) ``mmap`` threshold, so the next task faults the
same pages in again; in the main thread of a processes-scheduler worker that
was 7,000 to 137,000 page faults per worker per one-band run. ``distributed``'s
nanny makes it worse: it starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``,
which also pins the ``mmap`` threshold at 128 KiB, so every buffer is a fresh
``mmap`` (docs/design.md has the measurements).

So pyr's first chunk task in a process sets glibc's trim threshold to 64 MiB
and its ``mmap`` threshold to 32 MiB: buffers below 32 MiB are reused from the
heap, and at most 64 MiB of free heap top stays with each arena. Nothing
changes when ``MALLOC_TRIM_THRESHOLD_`` is already 64 MiB or more, when
``MALLOC_MMAP_THRESHOLD_`` is set (a choice made on purpose), on other C
libraries, or with the dask config ``pyr.tune-malloc: false``.
"""

from __future__ import annotations

import os

from pyr._imports import ensure

__all__ = ["MMAP_THRESHOLD", "TRIM_THRESHOLD", "tune_once"]

TRIM_THRESHOLD = 64 << 20
MMAP_THRESHOLD = 32 << 20
_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_THRESHOLD = -3

_checked_pid: int | None = None


def tune_once() -> bool:
    """Apply the thresholds once per process when the conditions above hold; whether they were applied."""
    global _checked_pid
    if _checked_pid == os.getpid():
        return False
    _checked_pid = os.getpid()
    return _tune()


def _tune() -> bool:
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    raw = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if raw is not None:
        try:
            if int(raw) >= TRIM_THRESHOLD:
                return False
        except ValueError:
            return False
    ensure("dask")
    import dask

    if not dask.config.get("pyr.tune-malloc", True):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):  # "glibc 2.36" under glibc
            return False
    except (ValueError, OSError):  # not a glibc system
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
