"""``write_tiff``: a Raster to a GeoTIFF (a Cloud Optimized GeoTIFF by default).

Eager rasters are written in one go. A lazy raster is written without ever
holding it whole: every dask chunk is computed and saved by its own task (in
whatever process runs it) to a hidden folder beside the output, then one
final task copies the chunks, one at a time, into a tiled GeoTIFF and lets
GDAL's COG driver lay out the final file with overviews. The output appears
under its name only when it is complete (written under a temporary name in the
same folder, then renamed), so a failure never leaves a partial file at
``path`` and never removes a file that was there before. The chunk files and
the final file must be on a filesystem every worker sees (a local path).

The staging folder (``.<name>.<token>.<owner>.pyr-tmp`` beside the output)
names the process that made the write (:mod:`pyr.io._live`) and is removed
at its end; the folders a dead writer left behind are removed by the next
write to the same path. Every step that changes storage is named for the crash tests
(:func:`pyr._faults.step`, ``"tiff.write:<step>"``).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

import attrs
import numpy as np

from pyr._curry import _Curried
from pyr._faults import step
from pyr._fuse import fuse_writes
from pyr._imports import ensure
from pyr._lazy import is_lazy
from pyr.errors import InvalidArgument, WriteError
from pyr.geobox import GeoBox
from pyr.io import _live
from pyr.io.storage import check_local_path, owner_tag
from pyr.raster import Raster

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["write_tiff"]

#: A local file path (``file://`` URLs too).
PathLike = str | os.PathLike[str]

_COMPRESS = ("none", "deflate", "lzw", "zstd", "lzma", "packbits")
_LEVELS = ("deflate", "zstd", "lzma")
_PREDICTED = ("deflate", "lzw", "zstd", "lzma")
_CACHE = 256 * 2**20  # bytes: rasterio passes GDAL_CACHEMAX to GDALSetCacheMax64
_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


@attrs.frozen
class _Plan:
    """Everything the writing tasks need (picklable, no open handles)."""

    path: str
    geobox: GeoBox
    count: int
    dtype: str
    nodata: float | int | None
    bands: tuple[str, ...]
    cog: bool
    compress: str
    level: int | None = None
    owner: str = attrs.field(factory=owner_tag)  # the process making the write (names its staging folder)
    scales: tuple[float, ...] | None = None
    offsets: tuple[float, ...] | None = None

    def __dask_tokenize__(self) -> object:
        return ("pyr-tiff-plan", self.path, self.geobox, self.count, self.dtype, repr(self.nodata), self.bands,
                self.cog, self.compress, self.level, self.scales, self.offsets)  # fmt: skip


def _staging(plan: _Plan, token: str) -> Path:
    return _live.folder(Path(plan.path), token, plan.owner)


def _profile(plan: _Plan) -> dict[str, Any]:
    h, w = plan.geobox.shape
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": w,
        "height": h,
        "count": plan.count,
        "dtype": plan.dtype,
        "transform": plan.geobox.transform,
        "nodata": plan.nodata,
        "BIGTIFF": "IF_SAFER",
    }
    if plan.geobox.crs is not None:
        profile["crs"] = plan.geobox.crs
    if w >= 16 and h >= 16:
        side = 256 if min(w, h) >= 256 else 16 * (min(w, h) // 16)
        profile.update(tiled=True, blockxsize=side, blockysize=side)
    return profile


def _describe(dst: Any, plan: _Plan) -> None:
    for i, name in enumerate(plan.bands, start=1):
        dst.set_band_description(i, name)
    if plan.scales is not None and plan.offsets is not None:  # GDAL band scale/offset, read back by pyr.read
        dst.scales = plan.scales
        dst.offsets = plan.offsets


def _publish(plan: _Plan, staging: Path, plain: Path) -> None:
    """Lay out ``plain`` (a complete uncompressed GeoTIFF) as the final file and rename it into place.

    ``staging`` is this run's own folder (:func:`pyr.io._live.run_folder`).
    """
    from rasterio.shutil import copy as gdal_copy

    options: dict[str, Any] = {"COMPRESS": plan.compress.upper(), "BIGTIFF": "IF_SAFER", "NUM_THREADS": "ALL_CPUS"}
    if plan.level is not None:
        options["LEVEL"] = plan.level
    if plan.compress in _PREDICTED:
        options["PREDICTOR"] = "YES" if plan.cog else ("3" if plan.dtype.startswith("float") else "2")
    if plan.cog:
        side = 512 if min(plan.geobox.shape) > 1024 else 256
        options.update(driver="COG", BLOCKSIZE=side, OVERVIEWS="AUTO", OVERVIEW_RESAMPLING="AVERAGE")
    else:
        options.update(driver="GTiff", TILED="YES", COPY_SRC_OVERVIEWS="NO")
    part = staging / "out.tif"
    step("tiff.write:layout")
    gdal_copy(str(plain), str(part), **options)
    step("tiff.write:publish")
    os.replace(part, plan.path)


def _write_eager(data: np.ndarray, plan: _Plan, token: str) -> None:
    import rasterio

    try:
        step("tiff.write:stage")
        with _live.hold(_staging(plan, token), remove="tiff.write:drop-staging") as staging:
            _live.reap(Path(plan.path), "tiff.write:reap")  # never this write's folder: its owner is alive
            with _live.run_folder(staging, drop="tiff.write:drop-run") as work:
                plain = work / "plain.tif"
                step("tiff.write:plain")
                with rasterio.Env(GDAL_CACHEMAX=_CACHE), rasterio.open(plain, "w", **_profile(plan)) as dst:
                    _describe(dst, plan)
                    dst.write(data)
                with rasterio.Env(GDAL_CACHEMAX=_CACHE):
                    _publish(plan, work, plain)
    except WriteError:
        raise
    except Exception as err:
        raise WriteError(f"Cannot write {plan.path!r}: {err}") from err


def _chunk_name(index: tuple[int, ...]) -> str:
    return "chunk-" + "-".join(map(str, index)) + ".npy"


def _save_chunk(plan: _Plan, token: str, index: tuple[int, ...], block: np.ndarray) -> None:
    """Save one computed chunk beside the output (in the staging folder)."""
    staging = _staging(plan, token)
    try:
        step("tiff.write:chunk")
        with _live.hold(staging, remove=None):
            name = _chunk_name(index)
            tmp = staging / f"{name}.{uuid.uuid4().hex}"
            with open(tmp, "wb") as f:
                np.save(f, np.ascontiguousarray(block))
            os.replace(tmp, staging / name)  # a retried task never leaves a torn chunk
    except Exception as err:
        raise WriteError(f"Cannot stage a chunk of {plan.path!r} in {str(staging)!r}: {err}") from err


def _assemble(
    plan: _Plan,
    token: str,
    regions: list[tuple[int, int, int, int, int, int]],
    indices: list[tuple[int, ...]],
    _after: Any = None,
) -> None:
    """Copy the staged chunks (at ``indices``, into ``regions``), one at a time, into a tiled GeoTIFF; publish it."""
    import rasterio
    from rasterio.windows import Window

    try:
        with _live.hold(_staging(plan, token), remove="tiff.write:drop-staging") as staging:
            _live.reap(Path(plan.path), "tiff.write:reap")  # never this write's folder: its owner is alive
            step("tiff.write:plain")
            with _live.run_folder(staging, drop="tiff.write:drop-run") as work:
                plain = work / "plain.tif"
                with rasterio.Env(GDAL_CACHEMAX=_CACHE):
                    with rasterio.open(plain, "w", **_profile(plan)) as dst:
                        _describe(dst, plan)
                        for (b0, b1, r0, r1, c0, c1), index in zip(regions, indices, strict=True):
                            block = np.load(staging / _chunk_name(index))
                            window = Window(c0, r0, c1 - c0, r1 - r0)
                            dst.write(block, indexes=list(range(b0 + 1, b1 + 1)), window=window)
                            del block
                    _publish(plan, work, plain)
    except FileNotFoundError as err:
        raise WriteError(
            f"Cannot write {plan.path!r}: its staged chunks were removed while it ran (another write of the "
            f"same raster to the same path at the same time?): {err}"
        ) from err
    except Exception as err:
        raise WriteError(f"Cannot write {plan.path!r}: {err}") from err


def _lazy_graph(data: Any, plan: _Plan, token: str) -> Delayed:
    ensure("dask")
    from dask._task_spec import List, Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    save_name = f"pyr-tiff-chunk-{token}"
    final_key = f"pyr-tiff-write-{token}"
    offsets = [np.cumsum((0, *c)) for c in data.chunks]
    dsk: dict[Any, Any] = {}
    regions = []
    indices = []
    saved: list[Any] = []
    for idx in itertools.product(*(range(len(c)) for c in data.chunks)):
        key = (data.name, *idx)
        b, r, c = (slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        dsk[(save_name, *idx)] = (_save_chunk, plan, token, idx, key)
        regions.append((b.start, b.stop, r.start, r.stop, c.start, c.stop))
        indices.append(idx)
        saved.append((save_name, *idx))
    graph = HighLevelGraph.from_collections(save_name, dsk, dependencies=[data])
    # each chunk is computed and saved by one task (grouped on a cluster; see pyr._fuse); the
    # final task waits for them and finds the staged files by their indices: it never receives pixels
    fused, saved = fuse_writes(graph, saved, data, f"pyr-tiff-chunk-group-{token}")
    fused[final_key] = Task(final_key, _assemble, plan, token, regions, indices, List(*map(TaskRef, saved)))
    return Delayed(final_key, fused)


def _local_path(path: Any) -> Path:
    """``path`` as a local file path; refuses, before anything is touched, what names a folder."""
    if isinstance(path, str) and "://" in path and not path.startswith("file://"):
        raise InvalidArgument(f"path={path!r}: write_tiff writes local files only; write locally, then upload.")
    if not isinstance(path, str | os.PathLike) or not isinstance(os.fspath(path), str):
        raise InvalidArgument(f"path={path!r}: expected a file path (str, pathlib.Path or file:// URL).")
    text = os.fspath(path)
    text = text[len("file://") :] if text.startswith("file://") else text
    local = Path(text)
    if not text.strip() or text.endswith(("/", os.sep)) or local.name in ("", ".", ".."):
        raise InvalidArgument(f"path={path!r}: expected a file path, not a folder.")
    full = Path(check_local_path(text, "path"))  # never a root, the home folder, the current folder or a parent
    if full.is_dir():
        raise InvalidArgument(f"path={path!r}: {str(full)!r} is a folder; expected a file path.")
    return local


def _plan(raster: Any, path: Any, cog: Any, compress: Any, level: Any) -> _Plan:
    if not isinstance(raster, Raster):
        raise InvalidArgument(f"write_tiff expects a Raster, not {type(raster).__name__}.")
    local = _local_path(path)
    if not isinstance(compress, str) or compress.lower() not in _COMPRESS:
        raise InvalidArgument(f"compress={compress!r}: expected one of {', '.join(_COMPRESS)}.")
    if level is not None and (
        isinstance(level, bool) or not isinstance(level, int) or compress.lower() not in _LEVELS or level < 1
    ):
        raise InvalidArgument(f"level={level!r}: expected an int >= 1 with compress=deflate, zstd or lzma.")
    if not isinstance(cog, bool):
        raise InvalidArgument(f"cog={cog!r}: expected True or False.")
    if raster.dtype.name not in _DTYPES:
        raise InvalidArgument(f"A GeoTIFF cannot hold dtype {raster.dtype.name}; expected one of {', '.join(_DTYPES)}.")
    nodata = raster.nodata
    if raster.dtype.kind in "iu" and raster.dtype.itemsize == 8 and nodata is not None and abs(int(nodata)) > 2**53:
        raise InvalidArgument(
            f"nodata={nodata!r}: GeoTIFF stores nodata as a float64, which cannot hold this {raster.dtype.name} "
            "value exactly; use a nodata within +-2**53."
        )
    if not local.parent.is_dir():
        raise WriteError(f"Cannot write {str(local)!r}: the folder {str(local.parent)!r} does not exist.")
    return _Plan(
        path=str(local.absolute()),
        geobox=raster.geobox,
        count=raster.count,
        dtype=raster.dtype.name,
        nodata=raster.nodata,
        bands=raster.bands,
        cog=cog,
        compress=compress.lower(),
        level=level,
        scales=raster.scales,
        offsets=raster.offsets,
    )


class _WriteTiff(Protocol):
    """The static type of :func:`write_tiff`, curried: ``None`` when it writes, a ``Delayed`` with ``compute=False``."""

    # fmt: off
    @overload
    def __call__(self, raster: Raster, path: PathLike, /, *, cog: bool = ..., compress: str = ...,
                 level: int | None = ..., compute: Literal[True] = ...) -> None: ...
    @overload
    def __call__(self, raster: Raster, path: PathLike, /, *, cog: bool = ..., compress: str = ...,
                 level: int | None = ..., compute: Literal[False]) -> Delayed: ...
    @overload
    def __call__(self, raster: Raster, path: PathLike, /, *, cog: bool = ..., compress: str = ...,
                 level: int | None = ..., compute: bool) -> Delayed | None: ...
    @overload
    def __call__(self, *, path: PathLike, cog: bool = ..., compress: str = ..., level: int | None = ...,
                 compute: Literal[True] = ...) -> Callable[[Raster], None]: ...
    @overload
    def __call__(self, *, path: PathLike, cog: bool = ..., compress: str = ..., level: int | None = ...,
                 compute: Literal[False]) -> Callable[[Raster], Delayed]: ...
    # fmt: on


def _curried_write_tiff(func: Callable[..., Delayed | None]) -> _WriteTiff:
    curry: _WriteTiff = _Curried(func)
    return curry


@_curried_write_tiff
def write_tiff(
    raster: Raster,
    path: str | os.PathLike[str],
    *,
    cog: bool = True,
    compress: str = "deflate",
    level: int | None = None,
    compute: bool = True,
) -> Delayed | None:
    """Write a ``Raster`` to a GeoTIFF, a Cloud Optimized GeoTIFF by default.

    The CRS, transform, nodata, band names (as band descriptions) and scales
    and offsets (as GDAL band metadata) are kept, so ``read(path)`` gives
    back the same raster. A lazy raster is written
    chunk by chunk, in parallel, without being materialised whole: one task
    computes a chunk and saves it beside the output (several chunks per
    task on a ``distributed`` cluster, as ``write_zarr``), then one task
    assembles the file.

    Parameters
    ----------
    raster
        What to write (eager or lazy).
    path
        A local path (``str``, ``pathlib.Path`` or ``file://``). An existing
        file is replaced, but only once the new one is complete.
    cog
        ``True`` lays the file out as a COG (tiled, overviews, GDAL's COG
        driver); ``False`` writes a plain tiled GeoTIFF without overviews.
    compress
        ``"deflate"`` (default), ``"lzw"``, ``"zstd"``, ``"lzma"``,
        ``"packbits"`` or ``"none"`` (with the horizontal predictor where it helps).
    level
        Compression level for deflate (1-12), zstd (1-22) or lzma (1-9);
        ``None`` is GDAL's default (6 for deflate). Level 1 is often twice as
        fast as 6 for a few percent more bytes.
    compute
        ``False`` returns a ``dask.delayed.Delayed`` that touches nothing
        until it is computed.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from pyr import GeoBox, Raster, read, write_tiff
    >>> gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    >>> r = Raster(np.arange(8, dtype="uint16").reshape(1, 2, 4), gb, nodata=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "r.tif")
    >>> write_tiff(r, path)
    >>> read(path).data.tolist()
    [[[0, 1, 2, 3], [4, 5, 6, 7]]]
    >>> from toolz import pipe
    >>> pipe(r, write_tiff(path=path, compress="zstd"))
    """
    plan = _plan(raster, path, cog, compress, level)
    ensure("dask")
    from dask.base import tokenize

    token = tokenize(raster.data if is_lazy(raster.data) else np.asarray(raster.data), plan)
    if is_lazy(raster.data):
        delayed = _lazy_graph(raster.data, plan, token)
        if not compute:
            return delayed
        # this process holds the staging folder live while any process runs the chunk tasks
        step("tiff.write:stage")
        with _live.hold(_staging(plan, token), remove="tiff.write:drop-staging"):
            _live.reap(Path(plan.path), "tiff.write:reap")
            delayed.compute()
        return None
    if not compute:
        from dask.delayed import delayed as make_delayed

        later: Delayed = make_delayed(_write_eager, pure=True)(
            raster.data, plan, token, dask_key_name=f"pyr-tiff-write-{token}"
        )
        return later
    _write_eager(np.asarray(raster.data), plan, token)
    return None
