"""Warped reads: a source read straight onto a target grid, one output chunk at a time.

A chunk task knows the source's :class:`~pyr.io.tiff.Header` (given, or read
once per process through :func:`cached_header`), finds the window of the
source its footprint needs (:func:`pyr._gridding.source_windows`, as a lazy
reprojection does) and, when there is one, reads that window from the
coarsest overview still as fine as the output
(:func:`pyr._warp_plan.pick_overview`) and warps it onto the chunk's grid with
:class:`pyr.ops.reproject.Warp`. A chunk whose footprint misses the source
is a nodata block: the file is not opened for it. No full-resolution copy of
the file is ever made; the bytes read for a chunk follow its footprint.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import attrs
import numpy as np

from pyr import _gridding
from pyr._nodata import first_valid
from pyr._warp_plan import overview_geobox, pick_overview
from pyr.errors import GridMismatch, InvalidArgument
from pyr.geobox import GeoBox
from pyr.io.gdal.handles import _file_stamp, dataset
from pyr.io.gdal.sources import SourceSpec
from pyr.io.tiff import Header, read_header, read_window
from pyr.ops.reproject import Warp

__all__ = [
    "WarpTarget",
    "cached_header",
    "check_geobox",
    "mosaic_warped",
    "output_chunks",
    "output_nodata",
    "read_onto",
    "read_warped",
    "warped_region",
]

_HEADERS: dict[tuple[Any, ...], Header] = {}
_HEADERS_LOCK = threading.Lock()
_HEADERS_MAX = 4096


def cached_header(spec: SourceSpec) -> Header:
    """``spec``'s header, read at most once per process (a cube's tasks share it).

    A local file rewritten since (another inode, size or modification time)
    is read again.
    """
    key = (*spec.key(), _file_stamp(spec.path))
    with _HEADERS_LOCK:
        hit = _HEADERS.get(key)
    if hit is not None:
        return hit
    header = read_header(spec)
    with _HEADERS_LOCK:
        if len(_HEADERS) >= _HEADERS_MAX:
            _HEADERS.clear()
        _HEADERS[key] = header
    return header


@attrs.frozen
class WarpTarget:
    """What every chunk of a warped read shares: the whole output grid and how to fill it.

    ``nodata`` overrides the sources' own nodata (``None``: each source's,
    NaN for a float source without one); ``dst_nodata`` fills cells no
    source cell reaches.
    """

    geobox: GeoBox
    resampling: str
    nodata: float | int | None
    dst_nodata: float | int
    dtype: str

    def fill(self, nbands: int, shape: tuple[int, int]) -> np.ndarray:
        """A nodata block ``(band, y, x)``."""
        return np.full((nbands, *shape), self.dst_nodata, dtype=np.dtype(self.dtype))


def output_nodata(dtype: np.dtype[Any], nodata: float | int | None, name: str) -> float | int:
    """The nodata of a warped read: ``nodata``, else NaN for floats; integer sources without one are refused."""
    if nodata is not None:
        return nodata
    if dtype.kind == "f":
        return math.nan
    raise InvalidArgument(
        f"nodata=None: {name!r} is {dtype} without a nodata value, and cells of the geobox outside it "
        "need one; pass nodata= (a value of the dtype that marks cells with no data)."
    )


def check_geobox(geobox: Any) -> GeoBox:
    """``geobox`` if it can be read onto (a north-up GeoBox with a CRS), else :class:`InvalidArgument`."""
    if not isinstance(geobox, GeoBox):
        raise InvalidArgument(f"geobox={geobox!r}: expected a GeoBox.")
    if not geobox.is_axis_aligned or geobox.crs is None:
        raise InvalidArgument(f"geobox={geobox!r}: the target grid must be north-up and have a CRS.")
    return geobox


def output_chunks(geobox: GeoBox, chunks: Any, nbands: int, dtype: np.dtype[Any]) -> tuple[int, int]:
    """Spatial chunks of a warped read: ``chunks`` as given, or for ``"auto"`` multiples of 256 near 4 MiB."""
    if not isinstance(chunks, str):
        return (min(int(chunks[0]), max(geobox.height, 1)), min(int(chunks[1]), max(geobox.width, 1)))
    from pyr.io.tiff import auto_chunks

    shape = Header(geobox, nbands, dtype.str, None, (256, 256), (), ())
    return auto_chunks(shape, nbands, dtype)


def read_onto(
    spec: SourceSpec,
    header: Header,
    indexes: tuple[int, ...],
    geobox: Any,
    resampling: Any,
    nodata: Any,
    chunks: Any,
) -> tuple[Any, float | int]:
    """The data of ``read(source, geobox=...)`` and its nodata: lazy when ``chunks`` is given."""
    from pyr.types import parse_nodata

    dst = check_geobox(geobox)
    name = _gridding.resampling_name(resampling)
    dtype = np.dtype(header.dtype)
    given = None if nodata is None else parse_nodata(nodata, dtype)
    dst_nodata = output_nodata(dtype, header.nodata if given is None else given, spec.name)
    target = WarpTarget(dst, name, given, dst_nodata, dtype.str)
    if chunks is None:
        data = read_warped(spec, header, indexes, target, (0, dst.height), (0, dst.width))
        return (target.fill(len(indexes), dst.shape) if data is None else data), dst_nodata
    from dask.base import tokenize

    from pyr.io._producer import producer_array
    from pyr.io.tiff import split

    cy, cx = output_chunks(dst, chunks, len(indexes), dtype)
    grid = ((len(indexes),), split(dst.height, cy), split(dst.width, cx))
    token = "pyr-read-warp-" + tokenize(spec, header, indexes, target, grid)
    return producer_array(token, warped_region, (spec, header, indexes, target), grid, dtype), dst_nodata


def _level(spec: SourceSpec, header: Header, target: WarpTarget) -> tuple[SourceSpec, tuple[float, float]]:
    """The spec to read (an overview when one is still as fine as the output) and the level-0 kernel scale."""
    scale = _scale(target.geobox, header.geobox)
    if spec.overview is not None or not header.overviews:
        return spec, scale
    k = pick_overview(header.overviews, scale)
    return (spec, scale) if k is None else (attrs.evolve(spec, overview=k), scale)


# The sources of a time series mostly share one grid: their chunks need the same windows.
@functools.lru_cache(maxsize=1024)
def _window(
    dst: GeoBox, src: GeoBox, rows: tuple[int, int], cols: tuple[int, int], resampling: str
) -> tuple[int, int, int, int] | None:
    """The window of ``src`` the chunk ``rows`` x ``cols`` of ``dst`` needs (cached per process)."""
    return _gridding.source_windows(dst, src, list(rows), list(cols), resampling=resampling)[(0, 0)]


@functools.lru_cache(maxsize=256)
def _scale(dst: GeoBox, src: GeoBox) -> tuple[float, float]:
    """GDAL's kernel scale for warping ``src`` onto ``dst`` (cached per process)."""
    return _gridding.warp_scale(dst, src)


def read_warped(
    spec: SourceSpec,
    header: Header,
    indexes: tuple[int, ...],
    target: WarpTarget,
    rows: tuple[int, int],
    cols: tuple[int, int],
    *,
    check: bool = True,
) -> np.ndarray | None:
    """Rows ``rows`` and columns ``cols`` of ``target.geobox`` read from ``spec``: ``(band, y, x)``.

    Returns ``None`` (without opening the file) when the chunk's footprint
    misses the source. ``check`` compares the file with ``header`` when it is
    read at full resolution (:class:`~pyr.errors.GridMismatch` if it differs).
    """
    dst = target.geobox
    src = header.geobox
    if src.crs is None:
        raise InvalidArgument(f"{spec.name!r} has no CRS: it cannot be read onto a geobox.")
    name = target.resampling
    win = _window(dst, src, rows, cols, name)
    chunk = dst[rows[0] : rows[1], cols[0] : cols[1]]
    if win is None:
        return None
    level, scale = _level(spec, header, target)
    grid = src
    if level is not spec:
        with dataset(level) as ds:
            grid = overview_geobox(src, (ds.height, ds.width))
        scale = _scale(dst, grid)
        win = _window(dst, grid, rows, cols, name)
        if win is None:
            return None
    block = read_window(level, header if check and level is spec else None, indexes, win)
    r0, r1, c0, c1 = win
    src_nodata = header.nodata if target.nodata is None else target.nodata
    if src_nodata is None and np.dtype(header.dtype).kind == "f":
        src_nodata = math.nan
    assert dst.crs is not None
    assert src.crs is not None
    warp = Warp(
        src_crs=src.crs.to_wkt(),
        dst_crs=dst.crs.to_wkt(),
        resampling=name,
        src_nodata=src_nodata,
        dst_nodata=target.dst_nodata,
        dtype=target.dtype,
        scale=None if name == "nearest" else scale,
    )
    return warp(block, grid[r0:r1, c0:c1].transform, chunk.transform, chunk.shape)


def warped_region(
    spec: SourceSpec, header: Header, indexes: tuple[int, ...], target: WarpTarget, region: tuple[slice, ...]
) -> np.ndarray:
    """One chunk task of a lazy warped read: ``region`` (band, y, x slices) of the target grid."""
    _, ys, xs = region
    out = read_warped(spec, header, indexes, target, (ys.start, ys.stop), (xs.start, xs.stop))
    return target.fill(len(indexes), (ys.stop - ys.start, xs.stop - xs.start)) if out is None else out


def mosaic_warped(
    specs: Sequence[SourceSpec],
    first: tuple[SourceSpec, Header],
    indexes: tuple[int, ...],
    target: WarpTarget,
    rows: tuple[int, int],
    cols: tuple[int, int],
    skip_failed: Any = None,
) -> np.ndarray:
    """The sources ``specs`` read onto one chunk, the first valid pixel winning, in order.

    Headers come from ``first`` (the source the cube was planned with) or
    :func:`cached_header`; a source whose footprint misses the chunk is not
    opened, and once no cell is missing the remaining sources are not read.
    ``skip_failed(spec, err)``, when given, is called for a
    :class:`~pyr.errors.ReadError` and the source is skipped.
    """
    from pyr.errors import ReadError

    def blocks() -> Iterator[np.ndarray | None]:
        for spec in specs:
            try:
                header = first[1] if spec == first[0] else cached_header(spec)
                _check_like(spec, header, first[1], indexes)
                yield read_warped(spec, header, indexes, target, rows, cols)
            except ReadError as err:
                if skip_failed is None:
                    raise
                skip_failed(spec, err)

    out = first_valid(blocks(), target.dst_nodata)
    return target.fill(len(indexes), (rows[1] - rows[0], cols[1] - cols[0])) if out is None else out


def _check_like(spec: SourceSpec, header: Header, first: Header, indexes: tuple[int, ...]) -> None:
    if header.dtype != first.dtype:
        raise GridMismatch(f"{spec.name!r} is {header.dtype}, the cube is {first.dtype} (from its first source).")
    if max(indexes) > header.count:
        raise GridMismatch(f"{spec.name!r} has {header.count} band(s); the cube reads band(s) {list(indexes)}.")
    why = first.factors_mismatch(header, indexes)
    if why is not None:
        raise GridMismatch(f"{spec.name!r} has {why} (the cube's are its first source's).")
