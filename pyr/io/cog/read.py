"""A window of a tiled GeoTIFF read natively: the tiles it needs, fetched at once, decoded, assembled.

The layout of each file (see :mod:`pyr.io.cog.layout`) is read once per
process and kept, with the header GDAL reads for it, in a small cache keyed
by the source, its overview, its GDAL options and (local files) the file's
inode, size and modification time; a replaced file is read again. A file
whose layout disagrees with what GDAL says of it (size, bands, dtype,
blocks) is declined, and remembered as declined; so is a file the server
says to ask for elsewhere (S3: another region or endpoint, which GDAL
follows; see :class:`pyr.io.cog.fetch.Redirected`).
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from pyr.errors import ReadError
from pyr.io.cog.decode import codecs_available, decode_tile
from pyr.io.cog.fetch import FetchError, Redirected, Source, open_source
from pyr.io.cog.georef import agrees
from pyr.io.cog.layout import HEAD_BYTES, Layout, parse
from pyr.io.gdal.sources import SourceSpec

__all__ = ["enabled", "layouts_ahead", "prefetch", "read_native"]

_CACHE_SIZE = 256
_OFF = ("0", "false", "no", "off")

#: Threads per process that read the layouts of remote files ahead of their first read (they wait on the network).
LAYOUT_THREADS = 8

_lock = threading.Lock()
_cache: OrderedDict[tuple[Any, ...], tuple[Layout, Any] | None] = OrderedDict()
# layouts of remote files read ahead (see _layout_ahead), until their first read takes them
_early: OrderedDict[tuple[Any, ...], Future[Layout | None]] = OrderedDict()
_available: bool | None = None


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
    global _lock, _pool
    _lock = threading.Lock()
    _pool = None
    _early.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def enabled() -> bool:
    """Whether reads try the native path: imagecodecs is importable and ``PYR_NATIVE`` is not ``0``."""
    global _available
    if os.environ.get("PYR_NATIVE", "1").strip().lower() in _OFF:
        return False
    if _available is None:
        available = codecs_available()
        if available is None:
            return False
        _available = available
    return _available


def clear_cache() -> None:
    """Forget every layout of this process."""
    with _lock:
        _cache.clear()
        _early.clear()


def _entry(
    spec: SourceSpec, source: Source, header_of: Callable[[SourceSpec], Any], expect: Any = None
) -> tuple[Layout, Any] | None:
    """(layout, header) of ``spec``, read once per file per process; ``None`` when declined.

    The header is GDAL's, or for a URL ``expect`` itself when the file's
    own tags give exactly its grid, bands, dtype and nodata, and neither has
    band scales or offsets (:func:`pyr.io.cog.georef.agrees`): no GDAL open then.
    """
    key = _key(spec, source)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    with _lock:
        early = _early.pop(key, None)
    header = None
    if source.remote:  # GDAL's open and the header fetch both wait on the network: overlap them
        if early is None:
            source.warm(0, HEAD_BYTES)
        if expect is None:
            header = header_of(spec)
    layout = _parse(source, spec.overview, early)
    entry = None
    if layout is not None:
        if header is None and source.remote and expect is not None and agrees(layout, expect):
            header = expect
        header = header_of(spec) if header is None else header
        if (
            header.geobox.shape == (layout.height, layout.width)
            and header.count == layout.samples
            and header.dtype == layout.dtype
            and tuple(header.block_shape) == (layout.tile_height, layout.tile_width)
        ):
            entry = (layout, header)
    with _lock:
        _cache[key] = entry
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return entry


def _parse(source: Source, overview: int | None, early: Future[Layout | None] | None) -> Layout | None:
    """The layout of ``source``: read ahead (``early``), else now; ``None`` when declined or unparsable."""
    if early is not None:
        try:
            return early.result()
        except Exception:  # a failed fetch ahead: read it now, with this read's retries and errors
            pass
    try:
        return parse(source.read_at, overview)
    except ValueError:
        return None  # GDAL reads it, or says what is wrong with it
    except Redirected:
        return None  # another S3 region or endpoint: GDAL follows the server there, and reads this file


def read_native(
    spec: SourceSpec,
    indexes: tuple[int, ...],
    window: tuple[int, int, int, int],
    header_of: Callable[[SourceSpec], Any],
    expect: Any = None,
) -> tuple[np.ndarray, Any] | None:
    """``window`` = (row0, row1, col0, col1) of bands ``indexes`` (1-based) and GDAL's header of the file.

    ``None`` when the native path does not read this source or window (GDAL
    reads it then), also when a tile does not decode or the file is cut
    short: GDAL then reads the window and raises its own :class:`ReadError`
    naming the source, the window and GDAL's reason. ``header_of(spec)`` is
    GDAL's header, asked once per file per process (for a URL, not at all
    when the file's own tags agree with ``expect``, the header the read was
    planned with), and when the server sends the request elsewhere (S3:
    another region; see :class:`~pyr.io.cog.fetch.Redirected`). Raises
    :class:`ReadError` naming the URL when a network fetch fails.
    """
    if not enabled():
        return None
    r0, r1, c0, c1 = window
    try:
        return _read(spec, indexes, window, header_of, expect)
    except Redirected:
        return None  # GDAL follows the server to another S3 region or endpoint
    except FetchError as err:
        why = str(err)
    # raised outside the handler: no exception chain (distributed pickles it with the error)
    raise ReadError(f"Cannot read {spec.name!r} (rows {r0}:{r1}, cols {c0}:{c1}): {why}")


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
    waits for (:func:`pyr.io.cube.read_date_chunk`). Of the sources
    ``layouts`` (the dates after those) only the layout is read ahead, so
    that their tiles are one round trip away when they are next. The bytes are held as
    the read-ahead's are (:mod:`pyr.io.cog.http`); a fetch that fails is
    fetched again, with its retries and errors, by the read that needs it,
    so this never raises. Off when ``pyr.read-ahead`` is 0.
    """
    from pyr.io.cog.http import read_ahead

    if not enabled() or not read_ahead():
        return
    for spec, tiles in [*((s, True) for s in specs), *((s, False) for s in layouts)]:
        try:
            _prefetch(spec, indexes, window if tiles else None)
        except Exception:  # a hint only: the read itself reports what is wrong
            continue


def layouts_ahead(specs: Sequence[SourceSpec]) -> None:
    """Start reading the layouts of the remote sources ``specs`` in the background; never waits.

    A lazy read calls it before GDAL opens the first file for the graph, so
    that the two overlap and the first chunk task finds the layout read.
    """
    prefetch((), (), (0, 0, 0, 0), layouts=specs)


def _prefetch(spec: SourceSpec, indexes: tuple[int, ...], window: tuple[int, int, int, int] | None) -> None:
    """Fetch ``window``'s tiles of ``spec`` ahead, reading its layout first if unknown (``None``: only that)."""
    if not spec.path.startswith("/vsi"):
        return
    with open_source(spec.path, spec.name, spec.env) as source:
        if source is None or not source.remote:
            return
        key = _key(spec, source)
        with _lock:
            known = key in _cache
            entry = _cache.get(key)
        if not known:
            _layout_ahead(spec, key, indexes, window)
            return
        if entry is not None and window is not None:  # else declined (GDAL reads it), or only the layout
            _prefetch_tiles(source, entry[0], indexes, window)


def _prefetch_tiles(
    source: Source, layout: Layout, indexes: tuple[int, ...], window: tuple[int, int, int, int]
) -> None:
    if _fits(layout, indexes, window):
        source.prefetch([r for r in _ranges(layout, _tiles(layout, indexes, window)) if r[1] > 0])


def _layout_ahead(
    spec: SourceSpec, key: tuple[Any, ...], indexes: tuple[int, ...], window: tuple[int, int, int, int] | None
) -> None:
    """Read the layout of remote ``spec`` in a background thread, then prefetch ``window``'s tiles; never waits.

    Without it, the first read of each date of a cube waits two round trips
    in turn (head, then tiles). The layout is read once (later calls for the
    same file only add their windows) and kept until the file's first read
    takes it (:func:`_entry`).
    """
    global _pool
    with _lock:
        future = _early.get(key)
        if future is None:
            if _pool is None:
                _pool = _Background(LAYOUT_THREADS)
            _early[key] = future = _pool.submit(lambda: _read_layout(spec))  # a failure is the first read's to report
            while len(_early) > _CACHE_SIZE:
                _early.popitem(last=False)
    if window is not None:
        future.add_done_callback(lambda done: _tiles_ahead(spec, done, indexes, window))


def _read_layout(spec: SourceSpec) -> Layout | None:
    with open_source(spec.path, spec.name, spec.env) as source:
        if source is None:
            return None
        try:
            return parse(source.read_at, spec.overview)
        except ValueError:
            return None


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


def _read(
    spec: SourceSpec,
    indexes: tuple[int, ...],
    window: tuple[int, int, int, int],
    header_of: Callable[[SourceSpec], Any],
    expect: Any,
) -> tuple[np.ndarray, Any] | None:
    with open_source(spec.path, spec.name, spec.env) as source:
        if source is None:
            return None
        entry = _entry(spec, source, header_of, expect)
        if entry is None:
            return None
        layout, header = entry
        if not _fits(layout, indexes, window):
            return None
        r0, r1, c0, c1 = window
        tiles = _tiles(layout, indexes, window)
        ranges = _ranges(layout, tiles)
        if any(size == 0 for _, size in ranges):
            return None  # a sparse tile: GDAL fills it
        try:
            out = np.empty((len(indexes), r1 - r0, c1 - c0), dtype=layout.dtype)
        except (MemoryError, ValueError):
            return None  # GDAL's path says which file cannot be held, and how to read it instead
        ahead = _ahead(layout, indexes, window) if source.remote else None
        try:
            datas = source.read_many(ranges, ahead)  # a network failure is a FetchError
        except OSError:
            return None  # a local read error: GDAL reads the window and reports it
        for (plane, ty, tx, k), data in zip(tiles, datas, strict=True):
            if len(data) < int(layout.counts[k]):
                return None  # a truncated file: GDAL reads the window and reports it
            into = _whole(out, layout, indexes, plane, ty, tx, window)
            try:
                tile = decode_tile(layout, data, into)
            except Exception:  # imagecodecs raises its own error types
                return None  # a corrupt tile: GDAL reads the window and reports it
            if into is None:
                _place(out, tile, layout, indexes, plane, ty, tx, window)
        return out, header


def _whole(
    out: np.ndarray,
    layout: Layout,
    indexes: tuple[int, ...],
    plane: int,
    ty: int,
    tx: int,
    window: tuple[int, int, int, int],
) -> np.ndarray | None:
    """The part of ``out`` a whole tile fills as one contiguous block (decoded in place), else ``None``.

    That is a tile of the window's full width and inside its rows, of the
    window's only band.
    """
    r0, r1, c0, c1 = window
    y0, x0 = ty * layout.tile_height, tx * layout.tile_width
    single = len(indexes) == 1 and (indexes[0] - 1 == plane if layout.planar else layout.samples == 1)
    if not single or x0 != c0 or x0 + layout.tile_width != c1 or y0 + layout.tile_height > r1:
        return None
    return out[0, y0 - r0 : y0 - r0 + layout.tile_height]


def _ahead(layout: Layout, indexes: tuple[int, ...], window: tuple[int, int, int, int]) -> list[tuple[int, int]]:
    """Tile ranges of the chunks likely read next, nearest first: rings of same-size windows around this one.

    Only for a window on a grid of its own size (a chunk of a lazy read).
    Schedulers walk chunks row by row or block by block (dask's reductions
    go in 2 x 2 blocks), so the nearest chunks not read yet are the likely
    next ones, whatever the order; the fetcher skips ranges already taken.
    Three times :func:`pyr.io.cog.http.read_ahead` candidates at most.
    """
    from pyr.io.cog.http import read_ahead

    r0, r1, c0, c1 = window
    h, w = r1 - r0, c1 - c0
    want = 3 * read_ahead()
    if r0 % h or c0 % w or not want:
        return []
    i0, j0 = r0 // h, c0 // w
    rows, cols = -(-layout.height // h), -(-layout.width // w)
    out: list[tuple[int, int]] = []
    for d in range(1, max(rows, cols)):
        ring = [
            (i, j)
            for i in range(max(0, i0 - d), min(rows, i0 + d + 1))
            for j in range(max(0, j0 - d), min(cols, j0 + d + 1))
            if max(abs(i - i0), abs(j - j0)) == d
        ]
        ring.sort(key=lambda ij: abs(ij[0] - i0) + abs(ij[1] - j0))
        for i, j in ring:
            nxt = (i * h, min((i + 1) * h, layout.height), j * w, min((j + 1) * w, layout.width))
            out += _ranges(layout, _tiles(layout, indexes, nxt))
        if len(out) >= want:
            break
    return [rng for rng in out[:want] if rng[1] > 0]


def _key(spec: SourceSpec, source: Source) -> tuple[Any, ...]:
    """The layout cache's key: the source, its overview and GDAL options, and (local files) its identity."""
    return (*spec.key(), source.stamp())


def _fits(layout: Layout, indexes: tuple[int, ...], window: tuple[int, int, int, int]) -> bool:
    """Whether ``window`` lies inside the image and bands ``indexes`` (1-based) exist."""
    r0, r1, c0, c1 = window
    inside = 0 <= r0 < r1 <= layout.height and 0 <= c0 < c1 <= layout.width
    return inside and all(1 <= i <= layout.samples for i in indexes)


def _ranges(layout: Layout, tiles: list[tuple[int, ...]]) -> list[tuple[int, int]]:
    """The (offset, byte count) of each of ``tiles`` (as :func:`_tiles` gives them) in the file."""
    return [(int(layout.offsets[k]), int(layout.counts[k])) for *_, k in tiles]


def _tiles(layout: Layout, indexes: tuple[int, ...], window: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
    """(plane, tile row, tile col, position in the index) of every tile the window touches."""
    r0, r1, c0, c1 = window
    th, tw = layout.tile_height, layout.tile_width
    planes = sorted({i - 1 for i in indexes}) if layout.planar else [0]
    return [
        (p, ty, tx, layout.tile_index(p, ty, tx))
        for p in planes
        for ty in range(r0 // th, (r1 - 1) // th + 1)
        for tx in range(c0 // tw, (c1 - 1) // tw + 1)
    ]


def _place(
    out: np.ndarray,
    tile: np.ndarray,
    layout: Layout,
    indexes: tuple[int, ...],
    plane: int,
    ty: int,
    tx: int,
    window: tuple[int, int, int, int],
) -> None:
    """Copy the part of ``tile`` inside ``window`` into ``out``."""
    r0, r1, c0, c1 = window
    y0, x0 = ty * layout.tile_height, tx * layout.tile_width
    ya, yb = max(r0, y0), min(r1, y0 + layout.tile_height)
    xa, xb = max(c0, x0), min(c1, x0 + layout.tile_width)
    part = tile[ya - y0 : yb - y0, xa - x0 : xb - x0]
    dst = (slice(ya - r0, yb - r0), slice(xa - c0, xb - c0))
    for j, band in enumerate(indexes):
        if layout.planar:
            if band - 1 == plane:
                out[(j, *dst)] = part[..., 0]
        else:
            out[(j, *dst)] = part[..., band - 1]
