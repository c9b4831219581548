"""``read_cube``: a lazy time cube over many sources, opening only the first up front.

The first source's :class:`~pyr.io.tiff.Header` stands for all of them. The
cube's graph holds one task per (date, spatial chunk)
``(read_date_chunk, spec, expect, indexes, window, fill)``: picklable specs,
no handle. Each task opens (or reuses, from its process's handle cache) its own file,
checks it against ``expect`` from the handle it opens anyway (raising
:class:`~pyr.errors.GridMismatch` naming the file and what differs), and
reads its window. With ``on_error="nodata"`` an unreadable source gives
nodata chunks instead of an error, logged where the task ran; see
:func:`check_sources` for the same answer as a value.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs
import numpy as np

from pyr._curry import curried
from pyr._imports import ensure
from pyr._values import band_names as band_names_of
from pyr.cube import Cube
from pyr.errors import GridMismatch, InvalidArgument, ReadError
from pyr.geobox import GeoBox
from pyr.io.cog import layouts_ahead, prefetch
from pyr.io.gdal.sources import SourceSpec, display_name
from pyr.io.tiff import Header, auto_chunks, read_header, read_window, source_spec, split
from pyr.ops.reduce import max_cells
from pyr.ops.rescale import rescale
from pyr.types import parse_band_indices, parse_chunks2d, parse_times

__all__ = ["LOGGER_NAME", "check_sources", "read_cube", "read_date_chunk"]

LOGGER_NAME = "pyr.io.cube"
_log = logging.getLogger(LOGGER_NAME)
#: A date's chunk task fetches ahead the network sources of this many dates on either side, and reads
#: the layouts of as many more beyond them (:func:`read_date_chunk`; schedulers run a chunk's dates in
#: either order).
PREFETCH_DATES = 4


@attrs.frozen
class _Fill:
    """What an unreadable source's chunks are filled with (``on_error="nodata"``)."""

    value: float | int
    dtype: str


def read_date_chunk(
    spec: SourceSpec,
    expect: Header,
    indexes: tuple[int, ...],
    window: tuple[int, int, int, int],
    fill: _Fill | None,
    then: tuple[SourceSpec, ...] = (),
    later: tuple[SourceSpec, ...] = (),
) -> np.ndarray:
    """Read one chunk ``(1, band, y, x)`` of one date (a task of :func:`read_cube`).

    ``then`` are the network sources of the dates next to this one: the
    same chunk of theirs is fetched ahead first (:func:`pyr.io.cog.prefetch`,
    which also reads the layout of a file this process has not read yet),
    and the layouts of the ``later`` ones, the dates after those,
    so that a task reducing every date of a chunk does not wait one round
    trip per date in turn. Raises :class:`GridMismatch` if the file does not match
    ``expect``. A :class:`ReadError` is raised, or, when ``fill`` is given,
    logged as a warning on the ``pyr.io.cube`` logger and replaced by a
    nodata block.
    """
    if then or later:
        prefetch(then, indexes, window, later)
    try:
        block = read_window(spec, expect, indexes, window)
    except ReadError as err:
        if fill is None:
            raise
        r0, r1, c0, c1 = window
        _log.warning("read_cube: source %r failed, its chunk is nodata (on_error='nodata'): %s", spec.name, err)
        block = np.full((len(indexes), r1 - r0, c1 - c0), fill.value, dtype=fill.dtype)
    return block[None]


def _cube_chunks(header: Header, nbands: int, dtype: np.dtype[Any], ntimes: int) -> tuple[int, int]:
    """Tile-aligned spatial chunks: one chunk of every date fits a median's task budget."""
    cells = max_cells("median", ntimes, nbands, dtype)
    return auto_chunks(header, nbands, dtype, limit=cells * nbands * dtype.itemsize)


def _specs(sources: Any, env: Mapping[str, Any] | None) -> tuple[list[Any], list[SourceSpec]]:
    if isinstance(sources, str | bytes) or not isinstance(sources, Sequence):
        raise InvalidArgument(
            f"sources={sources!r}: expected a sequence of paths or URLs (a list, even for one source)."
        )
    items = list(sources)
    if not items:
        raise InvalidArgument("sources is empty: read_cube needs at least one source.")
    return items, [source_spec(s, env=env) for s in items]


def _times(times: Any, items: list[Any]) -> np.ndarray | None:
    if callable(times):
        values = []
        for s in items:
            try:
                values.append(times(s))
            except Exception as err:
                raise InvalidArgument(f"times({display_name(s)!r}) failed: {err}") from err
        return parse_times(values, len(items))
    return parse_times(times, len(items))


def _band_names(header: Header, idx: tuple[int, ...]) -> tuple[str, ...]:
    names = band_names_of(header.descriptions)
    chosen = tuple(names[i] for i in idx)
    return chosen if len(set(chosen)) == len(chosen) else tuple(str(i + 1) for i in idx)


@curried
def read_cube(
    sources: Sequence[Any],
    *,
    bands: int | Sequence[int] | None = None,
    chunks: Any = "auto",
    times: Sequence[Any] | Callable[[Any], Any] | None = None,
    env: Mapping[str, Any] | None = None,
    on_error: str = "raise",
    geobox: GeoBox | None = None,
    resampling: str = "nearest",
    group_by: str | None = None,
    nodata: float | int | None = None,
    scaled: bool = False,
) -> Cube:
    """A lazy cube ``(time, band, y, x)``, one date per source (or per day), opening only the first source.

    Parameters
    ----------
    sources
        Paths or URLs (anything :func:`pyr.read` takes), one per date. Only
        the first is opened now; the others are assumed to share its grid,
        dtype, band count, nodata and scales/offsets. Each chunk task checks its own file
        when it reads and raises :class:`~pyr.errors.GridMismatch` naming the
        file and what differs.
    bands
        0-based band index or sequence of indices (all bands by default).
    chunks
        ``"auto"``: spatial chunks that are whole multiples of the first
        file's internal tiles, sized so that one spatial chunk of every date
        (plus the float copy a median needs) fits dask's
        ``array.chunk-size``; an int or ``(y, x)`` gives those chunks. Time
        is always one date per chunk, bands whole.
    times
        A sequence of datetimes, or a callable ``source -> datetime`` called
        once per source (e.g. parsing the file name). ``None``: positions.
    env
        GDAL config options applied around every open and read, in whatever
        process runs it.
    on_error
        ``"raise"`` (default): an unreadable source fails the computation
        with :class:`~pyr.errors.ReadError` naming it. ``"nodata"``: its
        chunks become nodata instead (the first source must be readable, and
        must have a nodata value unless it is float, whose missing dates
        become NaN and whose cube nodata is then NaN; integer sources without
        nodata are refused). A source whose grid differs still raises
        ``GridMismatch``, and a process that runs out of file descriptors
        raises ``OSError`` (``EMFILE``): the source is not at fault. With
        ``geobox``, a failed source is left out of its chunks.
    geobox
        Read every source onto this grid (north-up, any CRS): the sources may
        then be on any grids and CRSs (without it they must share the first
        one's grid). Each chunk task reads the window of each of its sources
        that its footprint needs, from the coarsest overview still as fine
        as the output, and warps it (as :func:`pyr.read` with ``geobox``);
        a source whose footprint misses the chunk is not opened for it.
        Only the first source is opened now; the others' headers are read
        by the tasks that need them, once per process. The sources must
        share the first's dtype and have its bands (else ``GridMismatch``).
    resampling
        With ``geobox``: any name of ``rasterio.enums.Resampling``.
    group_by
        With ``geobox`` and ``times``: ``"date"`` makes one time step per UTC
        day, ``"solar_day"`` one per local solar day (UTC plus the longitude
        of the centre of the source's footprint / 15 hours; this reads every
        source's header at call time). The sources of a day are mosaicked,
        the first valid pixel winning in the given order; the step is
        labelled with the earliest of their times, steps in time order.
    nodata
        Override the sources' nodata (with ``geobox``): cells equal to it are
        not used, and cells no source reaches get it. Needed for integer
        sources without a nodata value.
    scaled
        ``False`` (default): the stored values, with the first source's GDAL
        scale and offset per band recorded on the cube
        (``scales``/``offsets``; :func:`pyr.rescale` applies them). ``True``:
        float32 ``raw * scale + offset``, nodata as NaN, as
        ``rescale(read_cube(...))``. The first source's factors stand for all:
        a source with other factors raises
        :class:`~pyr.errors.GridMismatch` when its chunks are read.

    Notes
    -----
    Where a failed source is recorded with ``on_error="nodata"``: every
    chunk task that substitutes nodata logs a WARNING on the
    ``"pyr.io.cube"`` logger naming the source, the window and GDAL's
    reason, in the process that ran the task (with dask's threads: your
    process; ``processes``: the worker's stderr; ``distributed``: the
    worker's log -- ``client.forward_logging("pyr.io.cube")`` brings the
    records to the client, ``client.get_worker_logs()`` shows them). As a
    value, on any scheduler, :func:`check_sources` returns the sources that
    fail, ``{name: reason}``.

    Examples
    --------
    >>> paths = [f"s2/2024-{m:02d}-01/B04.tif" for m in range(1, 11)]  # doctest: +SKIP
    >>> cube = read_cube(paths, times=lambda p: p.split("/")[1])  # doctest: +SKIP
    >>> pyr.reduce_time(cube, "median")  # doctest: +SKIP
    """
    if on_error not in ("raise", "nodata"):
        raise InvalidArgument(f"on_error={on_error!r}: expected 'raise' or 'nodata'.")
    if not isinstance(scaled, bool):
        raise InvalidArgument(f"scaled={scaled!r}: expected True or False.")
    items, specs = _specs(sources, env)
    chunks2d = parse_chunks2d(chunks)
    if chunks2d is None:
        raise InvalidArgument("chunks=None: read_cube is lazy; pass 'auto', an int or (y, x), and compute() it.")
    parsed_times = _times(times, items)
    layouts_ahead(specs[:1])  # its layout is fetched while GDAL opens it (no other source is touched here)
    header = read_header(specs[0])
    idx = parse_band_indices(bands, header.count, source=specs[0].name)
    idx = tuple(range(header.count)) if idx is None else idx
    dtype = np.dtype(header.dtype)
    cube_nodata = header.nodata
    fill: _Fill | None = None
    if on_error == "nodata" and geobox is None:
        if cube_nodata is None and dtype.kind != "f":
            raise InvalidArgument(
                f"on_error='nodata' needs a nodata value to fill unreadable dates with; {specs[0].name!r} "
                f"is {dtype} without one. Use on_error='raise', or give the files a nodata tag."
            )
        if cube_nodata is None:
            cube_nodata = math.nan
        fill = _Fill(cube_nodata, dtype.str)
    scales, offsets = header.factors([i + 1 for i in idx])
    if geobox is not None:
        from pyr.io.cube_warp import warped_cube

        cube = warped_cube(
            specs, header, idx, chunks2d, parsed_times, geobox, resampling=resampling, group_by=group_by,
            nodata=nodata, band_names=_band_names(header, idx), on_error=on_error,
        )  # fmt: skip
        cube = attrs.evolve(cube, scales=scales, offsets=offsets)
        return rescale(cube) if scaled else cube
    if group_by is not None or nodata is not None:
        which = "group_by" if group_by is not None else "nodata"
        raise InvalidArgument(f"{which}= needs geobox= (the grid the sources are read onto).")
    size = _cube_chunks(header, len(idx), dtype, len(specs)) if isinstance(chunks2d, str) else chunks2d
    data = _graph(specs, header, tuple(i + 1 for i in idx), size, dtype, fill)
    cube = Cube(
        data,
        header.geobox,
        nodata=cube_nodata,
        bands=_band_names(header, idx),
        times=parsed_times,
        scales=scales,
        offsets=offsets,
    )
    return rescale(cube) if scaled else cube


def _graph(
    specs: list[SourceSpec],
    header: Header,
    indexes: tuple[int, ...],
    size: tuple[int, int],
    dtype: np.dtype[Any],
    fill: _Fill | None,
) -> Any:
    ensure("dask.array")
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    height, width = header.geobox.shape
    ychunks, xchunks = split(height, size[0]), split(width, size[1])
    name = "pyr-read-cube-" + tokenize(specs, header, indexes, ychunks, xchunks, fill)
    dsk: dict[Any, Any] = {}
    for t, spec in enumerate(specs):
        near = [*specs[t + 1 : t + 1 + PREFETCH_DATES], *specs[max(0, t - PREFETCH_DATES) : t][::-1]]
        far = [*specs[t + 1 + PREFETCH_DATES : t + 1 + 2 * PREFETCH_DATES]]
        far += specs[max(0, t - 2 * PREFETCH_DATES) : max(0, t - PREFETCH_DATES)][::-1]
        then = tuple(s for s in near if s.path.startswith("/vsi") and s != spec)
        later = tuple(s for s in far if s.path.startswith("/vsi") and s != spec and s not in then)
        r0 = 0
        for i, cy in enumerate(ychunks):
            c0 = 0
            for j, cx in enumerate(xchunks):
                window = (r0, r0 + cy, c0, c0 + cx)
                dsk[(name, t, 0, i, j)] = (read_date_chunk, spec, header, indexes, window, fill, then, later)
                c0 += cx
            r0 += cy
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    chunks = ((1,) * len(specs), (len(indexes),), ychunks, xchunks)
    return da.Array(graph, name, chunks, meta=np.empty((0, 0, 0, 0), dtype=dtype))


# --- check_sources ---------------------------------------------------------------


def _probe(spec: SourceSpec, expect: Header, indexes: tuple[int, ...], windows: Any, deep: bool) -> str | None:
    """Why ``spec`` cannot be read as a date of the cube (``None``: it can)."""
    try:
        if not deep:
            why = expect.mismatch(read_header(spec))
            return None if why is None else f"GridMismatch: it has {why}"
        for window in windows:
            read_window(spec, expect, indexes, window)
    except (ReadError, GridMismatch) as err:
        return f"{type(err).__name__}: {err}"
    return None


@curried
def check_sources(
    sources: Sequence[Any],
    *,
    bands: int | Sequence[int] | None = None,
    env: Mapping[str, Any] | None = None,
    deep: bool = False,
) -> dict[str, str]:
    """The sources :func:`read_cube` could not read, ``{name: reason}`` (empty when all are fine).

    Runs one task per source with dask's current scheduler (threads,
    processes or a distributed cluster alike) and returns a plain dict, in
    source order. ``deep=False`` opens each source and compares its header
    with the first's (missing, non-raster or mismatched files); ``deep=True``
    also reads every pixel, chunk by chunk, as the cube would (truncated or
    corrupt tiles), which costs a full read. The first source must be
    readable: it defines the grid.

    Examples
    --------
    >>> check_sources(["a.tif", "missing.tif"])  # doctest: +SKIP
    {'missing.tif': "ReadError: Cannot open 'missing.tif': ..."}
    """
    ensure("dask")
    from dask.base import compute
    from dask.delayed import delayed

    _, specs = _specs(sources, env)
    header = read_header(specs[0])
    idx = parse_band_indices(bands, header.count, source=specs[0].name)
    idx = tuple(range(header.count)) if idx is None else idx
    size = _cube_chunks(header, len(idx), np.dtype(header.dtype), 1)
    height, width = header.geobox.shape
    windows = []
    r0 = 0
    for cy in split(height, size[0]):
        c0 = 0
        for cx in split(width, size[1]):
            windows.append((r0, r0 + cy, c0, c0 + cx))
            c0 += cx
        r0 += cy
    indexes = tuple(i + 1 for i in idx)
    tasks = [delayed(_probe, pure=True)(spec, header, indexes, tuple(windows), deep) for spec in specs]
    results = compute(*tasks)
    return {spec.name: why for spec, why in zip(specs, results, strict=True) if why is not None}
