"""Reading rasters with GDAL (``read``) and writing GeoTIFFs (``write_tiff``).

A lazy read opens the source once, in the caller, for its header. Each chunk
is a task ``(read_window, spec, expect, window)`` that opens (or reuses) a
handle in whatever process and thread runs it, checks that the file still
matches the header it was planned against, and reads its window.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import numpy as np
from rasterio.errors import RasterioError
from rasterio.windows import Window

from pyr._curry import curried
from pyr._imports import ensure
from pyr._values import band_names as band_names_of
from pyr.errors import GridMismatch, InvalidArgument, ReadError
from pyr.geobox import GeoBox
from pyr.io.cog import layouts_ahead, read_native
from pyr.io.gdal.env import GdalEnv
from pyr.io.gdal.handles import dataset, out_of_files_error
from pyr.io.gdal.messages import out_of_files, reason
from pyr.io.gdal.sources import SourceSpec, display_name, to_gdal_path
from pyr.ops.rescale import rescale
from pyr.raster import Raster
from pyr.types import parse_band_indices, parse_chunks2d, parse_nodata

__all__ = ["Header", "auto_chunks", "read", "read_header", "read_window", "source_spec"]


@attrs.frozen
class Header:
    """What a source's header says; what every chunk task checks its file against."""

    geobox: GeoBox
    count: int
    dtype: str
    nodata: float | int | None
    block_shape: tuple[int, int]
    descriptions: tuple[str | None, ...]
    overviews: tuple[int, ...]
    #: Each band's GDAL scale and offset (``raw * scale + offset``); empty when not read (1 and 0).
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()

    def mismatch(self, other: Header) -> str | None:
        """How ``other`` differs from this header (``None`` when it matches)."""
        if other is self:
            return None
        if other.geobox != self.geobox:
            return f"grid {other.geobox!r} instead of {self.geobox!r}"
        if other.count != self.count:
            return f"{other.count} band(s) instead of {self.count}"
        if other.dtype != self.dtype:
            return f"dtype {other.dtype} instead of {self.dtype}"
        if repr(other.nodata) != repr(self.nodata):
            return f"nodata {other.nodata!r} instead of {self.nodata!r}"
        return self.factors_mismatch(other, tuple(range(1, self.count + 1)))

    def factors(self, indexes: Sequence[int]) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The scales and offsets of bands ``indexes`` (1-based): 1 and 0 where the file gives none."""
        scales = tuple(self.scales[i - 1] if self.scales else 1.0 for i in indexes)
        offsets = tuple(self.offsets[i - 1] if self.offsets else 0.0 for i in indexes)
        return scales, offsets

    def factors_mismatch(self, other: Header, indexes: Sequence[int]) -> str | None:
        """How ``other``'s scales and offsets of bands ``indexes`` (1-based) differ from these (``None``: alike)."""
        mine, theirs = self.factors(indexes), other.factors(indexes)
        if mine == theirs:
            return None
        return f"scales/offsets {theirs[0]}/{theirs[1]} instead of {mine[0]}/{mine[1]}"


def source_spec(source: Any, *, env: Mapping[str, Any] | None = None, overview: int | None = None) -> SourceSpec:
    """The picklable description of ``source`` that tasks open."""
    if overview is not None and (isinstance(overview, bool) or not isinstance(overview, int) or overview < 0):
        raise InvalidArgument(f"overview={overview!r}: expected a non-negative int.")
    genv = None if env is None else (env if isinstance(env, GdalEnv) else GdalEnv(env))
    path = to_gdal_path(source)
    if not path.startswith("/vsi") and not os.path.isabs(path) and os.path.exists(path):
        # A relative path means the caller's working directory: fix it now, so that the
        # handle caches and worker processes (other cwd) open the same file.
        path = os.path.abspath(path)
    return SourceSpec(path, display_name(source), genv, overview)


def _header_of(ds: Any, spec: SourceSpec) -> Header:
    dtypes = set(ds.dtypes)
    if len(dtypes) != 1:
        raise ReadError(f"{spec.name!r} has bands of different dtypes {sorted(dtypes)}; read them one by one.")
    if ds.crs is None and ds.transform.is_identity and (ds.gcps[0] or ds.rpcs):
        raise ReadError(
            f"{spec.name!r} is georeferenced by ground control points (or RPCs) only, not by a "
            "transform; warp it to a grid first (e.g. gdalwarp)."
        )
    dtype = next(iter(dtypes))
    nodata = ds.nodata
    try:
        nodata = parse_nodata(nodata, np.dtype(dtype))
    except InvalidArgument:
        nodata = None  # a nodata tag the dtype cannot hold marks nothing
    return Header(
        geobox=GeoBox((ds.height, ds.width), ds.transform, ds.crs),
        count=ds.count,
        dtype=dtype,
        nodata=nodata,
        block_shape=tuple(ds.block_shapes[0]),
        descriptions=tuple(ds.descriptions),
        overviews=tuple(ds.overviews(1)) if ds.count else (),
        scales=_finite(ds.scales, 1.0),
        offsets=_finite(ds.offsets, 0.0),
    )


def _finite(factors: Sequence[float | None], default: float) -> tuple[float, ...]:
    """GDAL's per-band scales or offsets as floats; a missing or non-finite one is ``default``."""
    return tuple(float(f) if f is not None and np.isfinite(f) else default for f in factors)


def read_header(spec: SourceSpec) -> Header:
    """Open ``spec`` (through this thread's handle cache) and read its header."""
    with dataset(spec) as ds:
        return _header_of(ds, spec)


def read_window(
    spec: SourceSpec,
    expect: Header | None,
    indexes: tuple[int, ...],
    window: tuple[int, int, int, int],
) -> np.ndarray:
    """Read ``window`` = (row0, row1, col0, col1) of bands ``indexes`` (1-based).

    The common COG is read by pyr's own tile reader (:mod:`pyr.io.cog`);
    anything it declines, by GDAL. Raises :class:`GridMismatch` if the file
    no longer matches ``expect`` and :class:`ReadError` naming the source if
    the read fails.
    """
    native = read_native(spec, indexes, window, read_header, expect)
    if native is not None:
        _check(spec, expect, native[1])
        return native[0]
    r0, r1, c0, c1 = window
    with dataset(spec) as ds:
        if expect is not None:
            _check(spec, expect, _header_of(ds, spec))
        out = _allocate(spec, (len(indexes), r1 - r0, c1 - c0), ds.dtypes[0])
        try:
            data: np.ndarray = ds.read(list(indexes), window=Window(c0, r0, c1 - c0, r1 - r0), out=out)
            return data
        except (RasterioError, OSError) as err:
            if out_of_files(err):
                raise out_of_files_error(spec) from None
            raise ReadError(
                f"Cannot read {spec.name!r} (rows {r0}:{r1}, cols {c0}:{c1}): {reason(err, spec)}"
            ) from None


def _check(spec: SourceSpec, expect: Header | None, got: Header) -> None:
    """Raise :class:`GridMismatch` when the file's header ``got`` is not the ``expect`` it was planned with."""
    why = None if expect is None else expect.mismatch(got)
    if why is not None:
        raise GridMismatch(f"{spec.name!r} does not match the grid it was read with: it has {why}.")


def _allocate(spec: SourceSpec, shape: tuple[int, int, int], dtype: str) -> np.ndarray:
    """The array a window is read into; a ``MemoryError`` naming the source when it cannot be allocated."""
    try:
        return np.empty(shape, dtype=dtype)
    except (MemoryError, ValueError):  # numpy's _ArrayMemoryError, or "array is too big" past the address space
        size = np.dtype(dtype).itemsize * int(np.prod(shape, dtype=np.float64))
        raise MemoryError(
            f"Cannot hold {spec.name!r} in memory: {shape[0]} band(s) x {shape[1]} x {shape[2]} {dtype} is "
            f"{size / 2**30:.1f} GiB. Read it lazily (chunks='auto'), or a smaller overview (overview=...)."
        ) from None


#: Target size of ``chunks="auto"`` in the source dtype: 1024 x 1024 for uint16
#: or float32 Sentinel-2 tiles. dask's 128 MiB default gives 8192 x 8192
#: chunks: too few tasks to overlap decode, compute and encode, and more
#: memory (docs/benchmarks.md has the figures).
AUTO_CHUNK_BYTES = "4MiB"


def auto_chunks(header: Header, nbands: int, dtype: np.dtype[Any], *, limit: int | None = None) -> tuple[int, int]:
    """Spatial chunks that are whole multiples of the block shape, near ``limit`` bytes.

    ``limit`` defaults to :data:`AUTO_CHUNK_BYTES` (or dask config
    ``pyr.chunk-size``), capped by dask's ``array.chunk-size``.
    """
    ensure("dask.array")
    import dask
    from dask.array.core import normalize_chunks
    from dask.utils import parse_bytes

    by, bx = header.block_shape
    h, w = header.geobox.shape
    if limit is None:
        limit = min(
            parse_bytes(dask.config.get("array.chunk-size")),
            parse_bytes(dask.config.get("pyr.chunk-size", AUTO_CHUNK_BYTES)),
        )
    chunks = normalize_chunks(
        (nbands, "auto", "auto"),
        shape=(nbands, h, w),
        limit=limit,
        dtype=dtype,
        previous_chunks=(nbands, min(by, h), min(bx, w)),
    )
    cy, cx = chunks[1][0], chunks[2][0]
    # normalize_chunks may round to non-multiples at the edges; enforce alignment.
    cy = max(by, (cy // by) * by) if cy < h else h
    cx = max(bx, (cx // bx) * bx) if cx < w else w
    return (cy, cx)


def split(n: int, size: int) -> tuple[int, ...]:
    """Chunk sizes covering ``n`` cells in steps of ``size`` (ragged last chunk)."""
    if n == 0:
        return (0,)
    return (size,) * (n // size) + ((n % size,) if n % size else ())


def lazy_array(
    spec: SourceSpec,
    expect: Header | None,
    indexes: tuple[int, ...],
    shape: tuple[int, int],
    chunks: tuple[int, int],
    dtype: np.dtype[Any],
    *,
    reader: Any = None,
    token_extra: Any = None,
) -> Any:
    """A dask array ``(band, y, x)`` whose chunk tasks call ``reader`` (default :func:`read_window`)."""
    ensure("dask")
    from dask.base import tokenize

    from pyr.io._producer import producer_array

    reader = read_window if reader is None else reader
    ychunks, xchunks = split(shape[0], chunks[0]), split(shape[1], chunks[1])
    name = "pyr-read-" + tokenize(spec, expect, indexes, ychunks, xchunks, token_extra)
    return producer_array(
        name, _read_region, (reader, spec, expect, indexes), ((len(indexes),), ychunks, xchunks), np.dtype(dtype)
    )


def _read_region(reader: Any, spec: Any, expect: Any, indexes: Any, region: tuple[slice, ...]) -> np.ndarray:
    """One chunk task: ``reader`` over the window of ``region`` (band, y, x slices)."""
    _, ys, xs = region
    return reader(spec, expect, indexes, (ys.start, ys.stop, xs.start, xs.stop))  # type: ignore[no-any-return]


@curried
def read(
    source: Any,
    *,
    bands: int | Sequence[int] | None = None,
    chunks: Any = None,
    overview: int | None = None,
    nodata: float | int | None = None,
    env: Mapping[str, Any] | None = None,
    geobox: GeoBox | None = None,
    resampling: str = "nearest",
    scaled: bool = False,
) -> Raster:
    """Read a raster from a path or URL, eagerly or lazily, on its own grid or onto ``geobox``.

    Parameters
    ----------
    source
        Path, ``pathlib.Path``, ``file://``, ``http(s)://``, ``s3://``,
        ``gs://``, ``az://`` URL or GDAL ``/vsi...`` path.
    bands
        0-based band index or sequence of indices (all bands by default).
    chunks
        ``None`` reads eagerly into numpy. ``"auto"`` gives dask chunks that
        are whole multiples of the file's internal block shape near 4 MiB
        (dask config ``pyr.chunk-size``; never above dask's
        ``array.chunk-size``); an int or ``(y, x)`` gives those chunks.
    overview
        Read the k-th overview (0 is the finest), with its coarser geobox.
    nodata
        Override the file's nodata value.
    env
        GDAL config options applied around every open and read, in whatever
        process runs the read (e.g. :func:`pyr.cloud_env`).
    geobox
        Read onto this grid (any CRS, resolution and extent; north-up): each
        output chunk is read from the window of the source its footprint
        needs, from the coarsest overview still as fine as the output, and
        warped onto the chunk (:mod:`pyr.io.warp_read`); a chunk outside the
        source is nodata and reads nothing. With ``chunks=None`` the whole
        grid is one such warp. The result equals
        ``reproject(read(source, overview=k), geobox, resampling=...)`` where
        ``k`` is that overview (``read(source)`` when none is used). Integer
        sources without nodata need ``nodata=``; ``overview=`` is refused
        with it (the overview follows from the geobox).
    resampling
        With ``geobox``: any name of ``rasterio.enums.Resampling``.
    scaled
        ``False`` (default): the stored values, with each band's GDAL scale
        and offset recorded on the result (``scales``/``offsets``), so that
        :func:`pyr.rescale` with no factors applies them later. ``True``:
        float32 ``raw * scale + offset``, nodata as NaN: the same as
        ``rescale(read(...))`` (one fused task per chunk when lazy; with
        ``geobox``, resampled in the file's dtype, then scaled).

    Examples
    --------
    >>> r = read("tests/data/tiny.tif", chunks="auto")  # doctest: +SKIP
    >>> r.is_lazy  # doctest: +SKIP
    True
    """
    if geobox is not None and overview is not None:
        raise InvalidArgument(f"overview={overview!r} with geobox=: the overview read follows from the geobox.")
    if not isinstance(scaled, bool):
        raise InvalidArgument(f"scaled={scaled!r}: expected True or False.")
    spec = source_spec(source, env=env, overview=overview)
    chunks2d = parse_chunks2d(chunks)
    layouts_ahead([spec])  # a URL's layout is fetched while GDAL opens it for the header
    header = read_header(spec)
    indexes = parse_band_indices(bands, header.count, source=spec.name)
    idx = tuple(range(header.count)) if indexes is None else indexes
    dtype = np.dtype(header.dtype)
    descriptions = header.descriptions
    base = header
    if spec.overview is not None:  # GDAL's overview datasets drop band descriptions, scales and offsets
        base = read_header(attrs.evolve(spec, overview=None))
        descriptions = base.descriptions
    names = band_names_of(descriptions)
    band_names = tuple(names[i] for i in idx)
    if len(set(band_names)) != len(band_names):
        band_names = tuple(str(i + 1) for i in idx)
    out_nodata = header.nodata if nodata is None else parse_nodata(nodata, dtype)
    gdal_indexes = tuple(i + 1 for i in idx)
    scales, offsets = base.factors(gdal_indexes)
    if geobox is not None:
        from pyr.io.warp_read import read_onto

        data, out_nodata = read_onto(spec, header, gdal_indexes, geobox, resampling, nodata, chunks2d)
        grid = geobox
    else:
        grid = header.geobox
        if chunks2d is None:
            data = read_window(spec, None, gdal_indexes, (0, header.geobox.height, 0, header.geobox.width))
        else:
            size = auto_chunks(header, len(idx), dtype) if isinstance(chunks2d, str) else chunks2d
            data = lazy_array(spec, header, gdal_indexes, header.geobox.shape, size, dtype)
    raster = Raster(data, grid, nodata=out_nodata, bands=band_names, scales=scales, offsets=offsets)
    return rescale(raster) if scaled else raster
