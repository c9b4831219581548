"""Peak resident memory of a whole process tree, sampled in a background thread.

Children are included (recursively), which matters for dask's ``processes``
scheduler and for a ``distributed.LocalCluster`` whose workers are separate
processes. RSS of pages shared between parent and forked children is counted
once per process, as ``ps`` would: the figure is an upper bound.
"""

from __future__ import annotations

import contextlib
import os
import threading
from types import TracebackType

import psutil

__all__ = ["PeakRSS", "tree_cpu", "tree_rss"]


def tree_cpu() -> float:
    """CPU seconds (user + system) of this process, its reaped children and its live descendants."""
    me = psutil.Process(os.getpid())
    t = me.cpu_times()
    total = t.user + t.system + t.children_user + t.children_system
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            ct = child.cpu_times()
            total += ct.user + ct.system
    return total


def tree_rss(pid: int | None = None) -> int:
    """Sum of the RSS (bytes) of process ``pid`` (default: this one) and all its descendants."""
    try:
        root = psutil.Process(os.getpid() if pid is None else pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            total += p.memory_info().rss
    return total


class PeakRSS:
    """Context manager sampling :func:`tree_rss` every ``interval`` seconds.

    ``baseline`` is the tree RSS on entry, ``peak`` the largest sample (bytes).

    >>> with PeakRSS() as m:
    ...     _ = bytearray(10_000_000)
    >>> m.peak >= m.baseline > 0
    True
    """

    def __init__(self, interval: float = 0.05, pid: int | None = None) -> None:
        self.interval = interval
        self.pid = pid
        self.baseline = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        self.baseline = tree_rss(self.pid)
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, tree_rss(self.pid))

    def sample_now(self) -> None:
        """Take one sample immediately (e.g. right before a step ends)."""
        self.peak = max(self.peak, tree_rss(self.pid))


def mb(nbytes: float) -> float:
    """Bytes to MiB, rounded to one decimal."""
    return round(nbytes / 2**20, 1)
