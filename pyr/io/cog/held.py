"""Ranges fetched ahead, held for the reads that will take them (the HTTP fetcher's read-ahead and prefetch).

Keys are ``(source, offset, size)``, the source being the URL and, for a
signed one, its signer (:attr:`pyr.io.cog.http.HttpSource.held_as`), so a
read never takes bytes fetched under other credentials. :data:`ranges` is
this process's store (a forked child starts an empty one).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future

__all__ = ["AHEAD_SECONDS", "TAKEN_SECONDS", "Held", "HeldRanges", "ranges"]


class Held:
    """One range fetched ahead: the body of its request once it is in, and where that request starts."""

    __slots__ = ("future", "since", "start")

    def __init__(self) -> None:
        self.future: Future[bytes] = Future()
        self.start = -1
        self.since = time.monotonic()

    def follow(self, request: Future[bytes], start: int) -> None:
        """Take the outcome of ``request`` (a request starting at ``start``) when it is in."""
        self.start = start

        def done(fut: Future[bytes]) -> None:
            if fut.cancelled():
                self.future.cancel()
            elif fut.exception() is not None:
                self.future.set_exception(fut.exception())
            else:
                self.future.set_result(fut.result())

        request.add_done_callback(done)


class HeldRanges:
    """Tile ranges fetched ahead of the tasks that will ask for them, in this process.

    Each :meth:`reserve` says how many ranges may be held at once (the
    fetcher's read-ahead and prefetch caps); a range nobody took within
    :data:`AHEAD_SECONDS` is dropped. A range a task has taken is not fetched
    ahead again for :data:`TAKEN_SECONDS` (a later read of the same file reads
    ahead again), and a range is reserved (held) before its request goes out,
    so no range is ever fetched twice.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: OrderedDict[tuple[str, int, int], Held] = OrderedDict()
        self.taken: OrderedDict[tuple[str, int, int], float] = OrderedDict()

    def holds(self, key: tuple[str, int, int]) -> bool:
        """Whether the range ``key`` is held (fetched ahead, not taken yet)."""
        with self.lock:
            return key in self.pending

    def take(self, key: tuple[str, int, int]) -> Held | None:
        """The held range ``key`` (``None`` if not held); from now on it is never fetched ahead."""
        with self.lock:
            hit = self.pending.pop(key, None)
            now = time.monotonic()
            self.taken.pop(key, None)
            self.taken[key] = now
            while self.taken and (len(self.taken) > 4096 or next(iter(self.taken.values())) < now - TAKEN_SECONDS):
                self.taken.popitem(last=False)
        return hit

    def reserve(self, keys: list[tuple[str, int, int]], want: int, cap: int) -> list[tuple[tuple[str, int, int], Held]]:
        """Hold the first ``want`` of ``keys`` neither held nor taken, as many as there is room for under ``cap``."""
        now = time.monotonic()
        with self.lock:
            while self.pending and next(iter(self.pending.values())).since < now - AHEAD_SECONDS:
                _, old = self.pending.popitem(last=False)
                old.future.cancel()
            free = max(0, min(want, cap - len(self.pending)))
            chosen = [k for k in keys if k not in self.pending and k not in self.taken][:free]
            out = [(k, Held()) for k in chosen]
            self.pending.update(out)
        return out


#: A range taken by a chunk read is not fetched ahead again for this long.
TAKEN_SECONDS = 10.0
#: A range fetched ahead and not taken for this long is dropped.
AHEAD_SECONDS = 30.0
ranges = HeldRanges()


def _after_fork_in_child() -> None:
    global ranges
    ranges = HeldRanges()  # the parent's requests are not this process's


os.register_at_fork(after_in_child=_after_fork_in_child)
