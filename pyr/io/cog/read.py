"""A window of a tiled GeoTIFF read natively: the tiles it needs, fetched at once, decoded, assembled.

The layout of each file (see :mod:`pyr.io.cog.layout`) is read once per
process and kept, with the header GDAL reads for it (:mod:`pyr.io.cog.cache`,
keyed by the source, its overview, its GDAL options and, for local files,
the file's identity, so a replaced file is read again). A file
whose layout disagrees with what GDAL says of it (size, bands, dtype,
blocks) is declined, and remembered as declined; so is a file the server
says to ask for elsewhere (S3: another region or endpoint, which GDAL
follows; see :class:`pyr.io.cog.fetch.Redirected`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

from pyr.errors import ReadError
from pyr.io.cog import cache
from pyr.io.cog.decode import codecs_available, decode_tile
from pyr.io.cog.fetch import FetchError, Redirected, Source, open_source
from pyr.io.cog.georef import agrees
from pyr.io.cog.layout import HEAD_BYTES, Layout
from pyr.io.gdal.sources import SourceSpec

__all__ = ["clear_cache", "enabled", "read_native"]

_OFF = ("0", "false", "no", "off")
_available: bool | None = None


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
    """Forget every layout of this process (:func:`pyr.io.cog.cache.clear`)."""
    cache.clear()


def _entry(
    spec: SourceSpec, source: Source, header_of: Callable[[SourceSpec], Any], expect: Any = None
) -> tuple[Layout, Any] | None:
    """(layout, header) of ``spec``, read once per file per process; ``None`` when declined.

    The header is GDAL's, or for a URL ``expect`` itself when the file's
    own tags give exactly its grid, bands, dtype and nodata, and neither has
    band scales or offsets (:func:`pyr.io.cog.georef.agrees`): no GDAL open then.
    """
    k = cache.key(spec, source)
    known, entry = cache.lookup(k)
    if known:
        return entry
    early = cache.take_early(k)
    header = None
    if source.remote:  # GDAL's open and the header fetch both wait on the network: overlap them
        if early is None:
            source.warm(0, HEAD_BYTES)
        if expect is None:
            header = header_of(spec)
    layout = _layout(source, spec.overview, early)
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
    cache.store(k, entry)
    return entry


def _layout(source: Source, overview: int | None, early: Future[Layout | None] | None) -> Layout | None:
    """The layout of ``source``: the one read ahead (``early``), else read now; ``None`` when declined."""
    if early is not None:
        try:
            return early.result()
        except Exception:  # a failed fetch ahead: read it now, with this read's retries and errors
            pass
    return cache.read_layout(source, overview)


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
        if not layout.fits(indexes, window):
            return None
        r0, r1, c0, c1 = window
        tiles = layout.window_tiles(indexes, window)
        ranges = layout.tile_ranges(tiles)
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
            out += layout.tile_ranges(layout.window_tiles(indexes, nxt))
        if len(out) >= want:
            break
    return [rng for rng in out[:want] if rng[1] > 0]


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
