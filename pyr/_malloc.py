"""Keep glibc from page-faulting every large buffer anew in ``distributed`` workers.

``distributed``'s nanny starts every worker with ``MALLOC_TRIM_THRESHOLD_=65536``
(so that freed memory goes back to the OS). Setting it also freezes glibc's
``mmap`` threshold at 128 KiB, so every buffer a chunk task allocates (the
GDAL block, the decoded chunk, the float32 result, the codec's output) is a
fresh ``mmap`` whose pages fault in one by one, and is unmapped when freed.
On the one-band pipeline that made each chunk task about 40% slower
(docs/benchmarks.md, "What limits each pipeline").

So, in a process whose ``MALLOC_TRIM_THRESHOLD_`` is below 64 MiB, pyr's
first chunk task raises glibc's trim threshold to 64 MiB and its ``mmap``
threshold to 32 MiB: buffers below 32 MiB are reused from the heap, and at
most 64 MiB of free heap top stays with each arena. Nothing changes when the
variable is unset (glibc then adapts by itself), when it is already large,
when ``MALLOC_MMAP_THRESHOLD_`` is set, on other C libraries, or with the
dask config ``pyr.tune-malloc: false``.
"""

from __future__ import annotations

import os

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
    raw = os.environ.get("MALLOC_TRIM_THRESHOLD_")
    if raw is None or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        if int(raw) >= TRIM_THRESHOLD:
            return False
    except ValueError:
        return False
    import dask

    if not dask.config.get("pyr.tune-malloc", True):
        return False
    import platform

    if platform.libc_ver()[0] != "glibc":
        return False
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) and libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False
