"""Fetching ahead of reads: what a cube's chunk task will read next, and layouts read in background threads.

:func:`prefetch` starts the tile requests of a window of the sources a task
reads next (a cube's neighbouring dates, :func:`pyr.io.cube.read_date_chunk`),
reading first, in a background thread, the layout of a file this process has
not read yet; :func:`layouts_ahead` reads only layouts (a lazy read calls it
while GDAL opens the file for the header). The bytes are held by the HTTP
fetcher as its read-ahead's are (:mod:`pyr.io.cog.http`), the layouts by
:mod:`pyr.io.cog.cache` until the file's first read. Everything here is a
hint: nothing raises, and a fetch that fails is fetched again, with its
retries and errors, by the read that needs it. Only remote sources are
fetched ahead, and nothing is when ``pyr.read-ahead`` is 0.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

from pyr.io.cog import cache
from pyr.io.cog.fetch import Source, open_source
from pyr.io.cog.layout import Layout
from pyr.io.cog.read import enabled
from pyr.io.gdal.sources import SourceSpec

__all__ = ["LAYOUT_THREADS", "layouts_ahead", "prefetch"]

#: Threads per process that read the layouts of remote files ahead of their first read (they wait on the network).
LAYOUT_THREADS = 8


class _Background:
    """Up to ``size`` daemon threads running submitted calls (a process exits without waiting for them).

    A layout read ahead waits on the network, up to GDAL's timeouts and
    retries; nobody waits for its result at exit, so neither does the process.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]]] = queue.SimpleQueue()
        self.threads: list[threading.Thread] = []

    def submit(self, call: Callable[[], Any]) -> Future[Any]:
        """``call()``'s outcome, run in a background thread."""
        future: Future[Any] = Future()
        self.calls.put((future, call))
        if len(self.threads) < self.size:
            thread = threading.Thread(target=self._run, name=f"pyr-layout-{len(self.threads)}", daemon=True)
            thread.start()
            self.threads.append(thread)
        return future

    def _run(self) -> None:
        while True:
            future, call = self.calls.get()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as err:
                    future.set_exception(err)


_pool: _Background | None = None


def _after_fork_in_child() -> None:
    global _pool
    _pool = None


os.register_at_fork(after_in_child=_after_fork_in_child)


def prefetch(
    specs: Sequence[SourceSpec],
    indexes: tuple[int, ...],
    window: tuple[int, int, int, int],
    layouts: Sequence[SourceSpec] = (),
) -> None:
    """Start fetching what reading ``window`` of each remote source of ``specs`` needs first; never waits.

    For a file whose layout this process knows, the window's tiles; else a
    background thread reads its layout (its head holds the tile index) and
    then starts fetching the window's tiles. A cube's chunk task calls it for
    the dates it reads next, so that their round trips overlap the one it
    waits for. Of the sources ``layouts`` (the dates after those) only the
    layout is read ahead, so that their tiles are one round trip away when
    they are next.
    """
    _start([*((s, window) for s in specs), *((s, None) for s in layouts)], indexes)


def layouts_ahead(specs: Sequence[SourceSpec]) -> None:
    """Start reading the layouts of the remote sources ``specs`` in the background; never waits.

    A lazy read calls it before GDAL opens the first file for the graph, so
    that the two overlap and the first chunk task finds the layout read.
    """
    _start([(s, None) for s in specs], ())


def _start(todo: list[tuple[SourceSpec, tuple[int, int, int, int] | None]], indexes: tuple[int, ...]) -> None:
    """Fetch ahead, for each ``(source, window)``, the window's tiles (``None``: the layout only); remote ones."""
    todo = [(spec, window) for spec, window in todo if spec.path.startswith("/vsi")]
    if not todo or not enabled():
        return
    from pyr.io.cog.http import read_ahead

    if not read_ahead():
        return
    for spec, window in todo:
        try:
            _prefetch(spec, indexes, window)
        except Exception:  # a hint only: the read itself reports what is wrong
            continue


def _prefetch(spec: SourceSpec, indexes: tuple[int, ...], window: tuple[int, int, int, int] | None) -> None:
    """Fetch ``window``'s tiles of ``spec`` ahead, reading its layout first if unknown (``None``: only that)."""
    with open_source(spec.path, spec.name, spec.env) as source:
        if source is None or not source.remote:
            return
        k = cache.key(spec, source)
        known, entry = cache.lookup(k)
        if not known:
            _layout_ahead(spec, k, indexes, window)
        elif entry is not None and window is not None:  # else declined (GDAL reads it), or only the layout
            _prefetch_tiles(source, entry[0], indexes, window)


def _prefetch_tiles(
    source: Source, layout: Layout, indexes: tuple[int, ...], window: tuple[int, int, int, int]
) -> None:
    if layout.fits(indexes, window):
        source.prefetch([r for r in layout.tile_ranges(layout.window_tiles(indexes, window)) if r[1] > 0])


def _layout_ahead(
    spec: SourceSpec, k: tuple[Any, ...], indexes: tuple[int, ...], window: tuple[int, int, int, int] | None
) -> None:
    """Read the layout of remote ``spec`` in a background thread, then prefetch ``window``'s tiles; never waits.

    Without it, the first read of each date of a cube waits two round trips
    in turn (head, then tiles). The layout is read once (later calls for the
    same file only add their windows) and held until the file's first read
    takes it (:func:`pyr.io.cog.cache.take_early`); a failure is that read's
    to report.
    """

    def start() -> Future[Layout | None]:
        global _pool
        if _pool is None:
            _pool = _Background(LAYOUT_THREADS)
        return _pool.submit(lambda: _read_layout(spec))

    future = cache.early(k, start)
    if window is not None:
        future.add_done_callback(lambda done: _tiles_ahead(spec, done, indexes, window))


def _read_layout(spec: SourceSpec) -> Layout | None:
    with open_source(spec.path, spec.name, spec.env) as source:
        return None if source is None else cache.read_layout(source, spec.overview)


def _tiles_ahead(
    spec: SourceSpec, layout: Future[Layout | None], indexes: tuple[int, ...], window: tuple[int, int, int, int]
) -> None:
    """Once ``layout`` is read, start fetching ``window``'s tiles (a hint: nothing is raised)."""
    try:
        found = None if layout.exception() is not None else layout.result()
        if found is not None:
            with open_source(spec.path, spec.name, spec.env) as source:
                if source is not None:
                    _prefetch_tiles(source, found, indexes, window)
    except Exception:
        return
