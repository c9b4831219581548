"""``write_zarr`` and ``read_zarr``: CF-compatible Zarr stores, written chunk-parallel.

Store layout (one group)::

    <name>        (time?, band, y, x)  the pixels, grid_mapping: spatial_ref, _FillValue
    x, y          cell-centre coordinates (float64, CF attributes)
    band          band names (strings)
    time          int64 seconds since 1970-01-01 (cubes only)
    spatial_ref   0-d, CRS WKT + CF grid-mapping parameters + GeoTransform

The root group's ``pyr`` attribute records ``complete``: false while chunks
are being written, true once the last one landed (then the metadata is
consolidated). ``read_zarr`` refuses a pyr store that is not complete.

A write is a task graph: ``init`` (create the arrays) -> one ``write`` task
per dask chunk (each a whole Zarr chunk, so no two tasks touch one chunk and
no lock is needed) -> ``finalize``. Tasks hold a picklable :class:`Target`
(URL + storage options), never an open store, and open the group themselves,
so the same graph runs on threads, processes or a cluster.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from pyr._curry import curried
from pyr._fuse import fuse_writes
from pyr._imports import ensure
from pyr._lazy import is_lazy as is_dask  # the lead switches these calls to is_lazy
from pyr._malloc import tune_once as tune_malloc_once
from pyr.cube import Cube
from pyr.errors import IncompleteStore, InvalidArgument, ReadError, StoreExists, WriteError
from pyr.io import _zarr_direct, cf
from pyr.io.sources import display_name
from pyr.raster import Raster

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["Target", "read_zarr", "write_zarr"]

from pyr.io._zarr_layout import (
    DEFAULT_NAME,
    Layout,
    StoreFiles,
    complete_store,
    create_store,
    layout_of,
    store_files,
)
from pyr.io._zarr_target import Target, cached_array, flatten_keys, read_chunk

# --- tasks ----------------------------------------------------------------------


#: The object a write's ``init`` task puts in a path or URL store, holding the
#: write's own run id; ``finalize`` checks it is still there (see :func:`init_store`).
RUN_MARKER = ".pyr-run"


def init_store(target: Target, layout: Layout, mode: str, files: StoreFiles | None = None) -> str | None:
    """Create the group and arrays, marked incomplete; return this run's id (path and URL stores).

    With ``files`` (made when the graph was built; paths and URLs) the
    objects are written directly, root attributes first, beside a
    :data:`RUN_MARKER` holding a fresh run id that :func:`finalize_store`
    checks: a second write of the same graph started meanwhile (which
    starts the same staging place afresh) is then an error, not a store
    published with chunks missing. ``mode="w-"`` claims a local directory
    atomically, and on S3 creates the first root metadata object with a
    conditional write, so of two such writes one fails with
    ``StoreExists``. Else zarr-python creates the objects (and there is no
    run id).
    """
    if mode == "w-" and target.exists():
        raise StoreExists(f"{display_name(target.url)!r} already exists (mode='w-'); pass mode='w' to replace it.")
    if files is None:
        create_store(target.zarr_store(), layout)
        return None
    if mode == "w":  # what zarr's mode="w" does: a fresh store (the staging place of "w")
        _clear(target)
    elif mode == "w-" and target.is_local:
        os.makedirs(os.path.dirname(target.url), exist_ok=True)
        try:
            os.mkdir(target.url)
        except FileExistsError:
            raise StoreExists(
                f"{display_name(target.url)!r} already exists (mode='w-'); pass mode='w' to replace it."
            ) from None
    run = uuid.uuid4().hex
    claim = mode == "w-" and not target.is_local  # S3: a conditional write of the first root object
    try:
        _put_files(target, (*files.init, (RUN_MARKER, run.encode())), claim=claim)
    except FileExistsError as err:
        if claim:
            raise StoreExists(
                f"{display_name(target.url)!r} already exists (mode='w-'): another write created it first."
            ) from None
        raise _replaced(target, "create", err) from None
    except FileNotFoundError as err:
        raise _replaced(target, "create", err) from None
    return run


def _take_run(target: Target, run: str | None) -> None:
    """Check that ``target`` still holds run ``run``'s marker, and remove the marker."""
    if run is None:
        return
    fs, root = target.fs()  # a local directory too (fsspec's LocalFileSystem)
    marker = f"{root}/{RUN_MARKER}"
    try:
        found = fs.cat_file(marker).decode()
    except FileNotFoundError:
        found = ""
    if found == run:
        fs.rm_file(marker)
        return
    raise WriteError(
        f"{display_name(target.url)!r} was started afresh by another write of the same data while this "
        "one ran (the two share a staging place); nothing was published by this one. "
        "Write a store from one place at a time."
    )


def write_chunk(
    target: Target, name: str, region: tuple[slice, ...], block: np.ndarray, _after: Any = None, fingerprint: str = ""
) -> None:
    """Write one block (a whole Zarr chunk) into the data array."""
    tune_malloc_once()
    try:
        if target.is_local and _zarr_direct.write_region(target.url, name, region, block, fingerprint):
            return
        cached_array(target, name, fingerprint)[region] = block
    except (FileNotFoundError, FileExistsError) as err:  # zarr's ArrayNotFoundError too
        raise _replaced(target, "write a chunk of", err) from None


def _replaced(target: Target, what: str, err: OSError) -> WriteError:
    """The error of a write whose store place was removed or replaced under it."""
    return WriteError(
        f"Cannot {what} {display_name(target.url)!r}: the store was removed or replaced while this write "
        f"ran (another write of the same store?): {type(err).__name__}: {err}"
    )


def _clear(target: Target) -> None:
    """Remove whatever is stored at a path or URL target.

    A local directory is first renamed to a name of its own (atomic), so its
    removal never reaches into a directory another write renamed it to.
    """
    if target.is_local:
        trash = f"{target.url}.trash-{uuid.uuid4().hex[:12]}"
        try:
            os.rename(target.url, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash)
        return
    fs, root = target.fs()
    if fs.exists(root):
        fs.rm(root, recursive=True)


def _put_files(target: Target, files: tuple[tuple[str, bytes], ...], *, claim: bool = False) -> None:
    """Write store objects under a path or URL target, in order, each whole or not at all.

    On an object store the objects between two root metadata objects go up
    together (fsspec's ``pipe``, concurrent on s3fs and the like); the root
    metadata objects, which carry the completeness marker, one at a time in
    their place. ``claim``: the first root metadata object is created only
    if there is none (a conditional write on S3; ``FileExistsError`` if
    there is one), which claims the store.
    """
    if target.is_local:
        for key, data in files:
            _zarr_direct.put_file(os.path.join(target.url, *key.split("/")), data)
        return
    fs, root = target.fs()
    batch: dict[str, bytes] = {}
    for key, data in files:
        if key in _ROOT_METADATA:
            if batch:
                fs.pipe(batch)
                batch = {}
            if claim:
                create_object(fs, f"{root}/{key}", data)
                claim = False
            else:
                fs.pipe_file(f"{root}/{key}", data)
        else:
            batch[f"{root}/{key}"] = data
    if batch:
        fs.pipe(batch)


def create_object(fs: Any, path: str, data: bytes) -> None:
    """Write ``path`` only if nothing is there (``FileExistsError`` if something is).

    Atomic on a local disk (``O_EXCL``) and where the filesystem makes a
    conditional write (s3fs: ``If-None-Match: *``); else, or with a
    filesystem whose ``pipe_file`` takes no ``mode``, a check, then the write.
    """
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):  # fsspec's own "create" there is a check, then a write
        os.makedirs(os.path.dirname(path), exist_ok=True)  # as fsspec's pipe_file does
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return
    try:
        fs.pipe_file(path, data, mode="create")
    except TypeError:  # a pipe_file without fsspec's mode= (older or third-party filesystems)
        if fs.exists(path):
            raise FileExistsError(path) from None
        fs.pipe_file(path, data)


def finalize_store(
    target: Target,
    layout: Layout,
    _after: Any = None,
    publish_to: Target | None = None,
    files: StoreFiles | None = None,
    run: str | None = None,
) -> None:
    """Mark the store complete and consolidate its metadata.

    With ``files`` (paths and URLs), the precomputed final metadata is
    written directly, once the store is checked to still be this run's
    (``run``, from :func:`init_store`). With ``publish_to``, the finished
    store at ``target`` (a staging place) then replaces whatever is at
    ``publish_to``: the old store is removed only after the new one is
    complete. A local staging directory is first renamed to one only this
    run knows, so no other write can touch it between the check and the swap.
    """
    private = None
    if publish_to is not None and publish_to.is_local and run is not None:
        private = f"{target.url}.{run[:12]}"
        with contextlib.suppress(FileNotFoundError):  # else another write of the same graph took it: checked below
            os.rename(target.url, private)
        target = attrs.evolve(target, url=private)
    try:
        _take_run(target, run)
    except WriteError:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        raise
    if files is not None:
        _put_files(target, files.final)
    else:
        complete_store(target.zarr_store(), layout)
    if publish_to is not None and publish_to.is_local:
        _swap_directories(target.url, publish_to.url)
    elif publish_to is not None and publish_to.store is not None:
        _publish_inside(target, publish_to)
    elif publish_to is not None:
        _publish_remote(target, publish_to)


# The group's own metadata objects: copied last, so that a store whose copy was cut short has none.
_ROOT_METADATA = (".zgroup", ".zattrs", ".zmetadata", "zarr.json")


def _publish_remote(staged: Target, final: Target) -> None:
    """Replace the store at ``final`` with the complete one at ``staged`` (fsspec URLs).

    Object stores cannot rename a prefix: the old store is deleted, the new
    one copied into place (server-side where the store can, as S3's
    CopyObject), its root metadata last, and the staging prefix removed. A
    failure during the copy leaves the complete new store under ``staged``.
    """
    fs, src = staged.fs()
    dst = final.fs()[1]
    if fs.exists(dst):
        fs.rm(dst, recursive=True)
    files = [f for f in fs.find(src) if f.startswith(src + "/")]
    root = {f"{src}/{n}" for n in _ROOT_METADATA}
    for batch in ([f for f in files if f not in root], [f for f in files if f in root]):
        if batch:
            fs.copy(batch, [dst + f[len(src) :] for f in batch])
    fs.rm(src, recursive=True)


#: Where ``mode="w"`` stages a new store inside a zarr store object.
STAGING_PREFIX = ".pyr-staging-"


def _can_stage_inside(store: Any) -> bool:
    """Whether a zarr store object can hold a staged store beside the old one and move it."""
    return bool(getattr(store, "supports_listing", False) and getattr(store, "supports_deletes", False))


def _publish_inside(staged: Target, final: Target) -> None:
    """Replace the store at the root of a store object by the complete one staged under ``staged.path``.

    Like :func:`_publish_remote`: the old store's objects are deleted (root
    metadata first, so a cut-short delete leaves no readable group), the new
    ones copied to the root (root metadata last), then the staged ones deleted.
    A failure during the copy leaves the complete new store under the prefix.
    """
    ensure("zarr")
    from zarr.core.buffer import default_buffer_prototype
    from zarr.core.sync import sync

    store, prefix = final.store, staged.path + "/"

    async def move() -> None:
        keys = [k async for k in store.list()]
        old = [k for k in keys if not k.startswith(STAGING_PREFIX)]
        new = [k for k in keys if k.startswith(prefix)]
        for key in sorted(old, key=lambda k: k not in _ROOT_METADATA):
            await store.delete(key)
        proto = default_buffer_prototype()
        for key in sorted(new, key=lambda k: k[len(prefix) :] in _ROOT_METADATA):
            value = await store.get(key, prototype=proto)
            if value is not None:
                await store.set(key[len(prefix) :], value)
        for key in new:
            await store.delete(key)

    sync(move())


def _swap_directories(new: str, final: str) -> None:
    """Put the directory ``new`` at ``final``, then remove what was there.

    Another write may publish at ``final`` between the two renames; its
    store is then moved aside too and the rename tried again, so the last
    write to finish wins and neither fails.
    """
    olds = []
    for attempt in range(100):
        old = f"{new}.old{attempt}"
        if os.path.lexists(final):
            try:
                os.rename(final, old)
                olds.append(old)
            except FileNotFoundError:
                pass  # another write moved it first
        try:
            os.rename(new, final)
            break
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    else:
        raise WriteError(f"Cannot publish {final!r}: other writes kept taking its place; the new store is at {new!r}.")
    for old in olds:
        shutil.rmtree(old, ignore_errors=True)


# --- write_zarr -----------------------------------------------------------------


def write_zarr_impl(
    obj: Raster | Cube,
    store: Any,
    *,
    compute: bool = True,
    mode: str = "w-",
    zarr_format: int = 2,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    compressor: Any = "auto",
) -> Any:
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"write_zarr expects a Raster or Cube, not {type(obj).__name__}.")
    if zarr_format not in (2, 3):
        raise InvalidArgument(f"zarr_format={zarr_format!r}: expected 2 or 3.")
    if mode not in ("w-", "w", "a"):
        raise InvalidArgument(f"mode={mode!r}: expected 'w-', 'w' or 'a'.")
    name = DEFAULT_NAME if name is None else name
    if not isinstance(name, str) or not name or "/" in name or name in ("x", "y", "band", "time", "spatial_ref"):
        raise InvalidArgument(
            f"name={name!r}: expected a plain variable name other than x, y, band, time, spatial_ref."
        )
    target = Target.of(store, storage_options)
    if mode == "a":
        from pyr.io.zarr_append import append_graph

        if not (isinstance(compressor, str) and compressor == "auto"):
            raise InvalidArgument(
                f"compressor={compressor!r} with mode='a': appended chunks use the store's own codec; "
                "leave compressor at 'auto'."
            )

        return append_graph(obj, target, name=name, compute=compute)
    if isinstance(compressor, str) and compressor != "auto":
        raise InvalidArgument(
            f"compressor={compressor!r}: expected 'auto', None or a codec object "
            "(numcodecs for zarr_format=2, e.g. numcodecs.Zstd(level=3); zarr.codecs for 3)."
        )
    layout = layout_of(obj, name, zarr_format, compressor)
    if not compute:
        return _write_graph(obj, target, layout, mode)
    if mode == "w-" and target.exists():
        raise StoreExists(f"{display_name(target.url)!r} already exists (mode='w-'); pass mode='w' to replace it.")
    _write_graph(obj, target, layout, mode).compute()
    return None


def _write_graph(obj: Raster | Cube, target: Target, layout: Layout, mode: str) -> Any:
    ensure("dask.array")
    import dask.array as da
    from dask._task_spec import List, Task, TaskRef
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    data = obj.data if is_dask(obj.data) else da.from_array(obj.data, chunks=layout.chunks)
    token = tokenize(data, target, layout, layout.compressor_key, mode)
    init_key = f"pyr-zarr-init-{token}"
    write_name = f"pyr-zarr-write-{token}"
    final_key = f"pyr-zarr-final-{token}"
    publish_to = None
    if mode == "w" and target.store is None:
        # Replace a store only once the new one is complete: write it beside
        # the old one, then swap (local) or copy it into place (URL) in finalize_store.
        publish_to = target
        target = attrs.evolve(target, url=f"{target.url.rstrip('/')}.pyr-staging-{token[:16]}")
    elif mode == "w" and _can_stage_inside(target.store):
        # A store object: the new store is written under a prefix inside it, then moved to the root.
        publish_to = target
        target = attrs.evolve(target, path=f"{STAGING_PREFIX}{token[:16]}")
    # The store's metadata is made here, in memory, so the init and final tasks (on the
    # critical path of every write) only write files or objects (paths and URLs). Made for
    # a zarr store object too when a codec object was given: that checks it before anything runs.
    given_codec = layout.compressor is not None and not isinstance(layout.compressor, str)
    files: StoreFiles | None = None
    if target.store is None or given_codec:
        try:
            files = store_files(layout)
        except Exception as err:
            if not given_codec:
                raise
            raise InvalidArgument(
                f"compressor={layout.compressor!r} cannot be used with zarr_format={layout.zarr_format}: {err}"
            ) from None
    if target.store is not None:
        files = None
    dsk: dict[Any, Any] = {init_key: (init_store, target, layout, mode, files)}
    offsets = [np.cumsum((0, *c)) for c in data.chunks]
    write_keys = []
    for key in flatten_keys(data.__dask_keys__()):
        idx = key[1:]
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        wkey = (write_name, *idx)
        dsk[wkey] = (write_chunk, target, layout.name, region, key, init_key, write_name)
        write_keys.append(wkey)
    graph = HighLevelGraph.from_collections(write_name, dsk, dependencies=[data])
    # One task per output chunk reads, computes and writes it: no pixel data
    # moves between processes or workers; on a cluster one task writes several
    # chunks in turn (see pyr._fuse).
    fused, write_keys = fuse_writes(graph, write_keys, data, f"pyr-zarr-write-group-{token}", keep=[init_key])
    fused[final_key] = Task(
        final_key, finalize_store, target, layout, List(*map(TaskRef, write_keys)), publish_to, files, TaskRef(init_key)
    )
    return Delayed(final_key, fused)


# --- read_zarr ------------------------------------------------------------------


def read_zarr_impl(
    store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None
) -> Raster | Cube:
    ensure("zarr")
    import zarr

    chunks = _parse_read_chunks(chunks)
    target = Target.of(store, storage_options)
    shown = display_name(target.url)
    group: Any
    try:
        try:
            group = zarr.open_consolidated(target.zarr_store(read_only=True), mode="r")
        except Exception:
            group = zarr.open_group(target.zarr_store(read_only=True), mode="r")
    except Exception as err:
        raise ReadError(f"Cannot open Zarr store {shown!r}: {err}") from None
    meta = dict(group.attrs).get("pyr")
    if isinstance(meta, dict) and not meta.get("complete", False):
        raise IncompleteStore(f"Zarr store {shown!r} is incomplete: its writer did not finish (or is still running).")
    name = str(meta.get("name")) if isinstance(meta, dict) else _find_data_var(group, shown)
    try:
        arr = group[name]
    except KeyError:
        raise ReadError(f"Zarr store {shown!r} has no variable {name!r}.") from None
    dims = _dims(arr)
    attrs_ = dict(arr.attrs)
    if dims[-2:] != ("y", "x") or len(dims) not in (2, 3, 4):
        raise ReadError(f"{shown!r}: variable {name!r} has dims {dims}; expected (band, y, x) or (time, band, y, x).")
    gm_name = attrs_.get("grid_mapping", "spatial_ref")
    gm = dict(group[gm_name].attrs) if gm_name in group else None
    # the coordinates are only read when there is no GeoTransform to take the grid from (two reads saved)
    coords = gm is None or not gm.get("GeoTransform")
    y = group["y"][:] if coords and "y" in group else None
    x = group["x"][:] if coords and "x" in group else None
    geobox = cf.geobox_from_cf(tuple(arr.shape[-2:]), y, x, gm)
    nodata = _nodata(arr, attrs_)
    has_band = "band" in dims
    nbands = arr.shape[dims.index("band")] if has_band else 1
    bands = tuple(str(b) for b in group["band"][:]) if has_band and "band" in group else None
    if bands is not None and len(set(bands)) != len(bands):
        bands = None
    data = _array(target, name, arr, chunks)
    if not has_band:
        data = data[..., None, :, :] if "time" in dims else data[None]
    if "time" in dims:
        times = None
        if "time" in group:
            tattrs = dict(group["time"].attrs)
            times = cf.decode_times(
                group["time"][:], tattrs.get("units", cf.TIME_UNITS), tattrs.get("calendar", cf.TIME_CALENDAR)
            )
        return Cube(data, geobox, nodata=nodata, bands=bands, times=times)
    del nbands
    return Raster(data, geobox, nodata=nodata, bands=bands)


def _parse_read_chunks(chunks: Any) -> str | tuple[int, ...] | None:
    """``None``, ``"auto"``, an int (y and x) or a tuple of the trailing axes' chunk sizes."""
    if chunks is None or chunks == "auto":
        return chunks  # type: ignore[no-any-return]
    items = (chunks, chunks) if isinstance(chunks, int | np.integer) else chunks
    if (
        isinstance(items, str)
        or not isinstance(items, tuple | list)
        or not 1 <= len(items) <= 4
        or not all(isinstance(c, int | np.integer) and not isinstance(c, bool) and c > 0 for c in items)
    ):
        raise InvalidArgument(f"chunks={chunks!r}: expected None, 'auto', a positive int or a tuple of them.")
    return tuple(int(c) for c in items)


def _dims(arr: Any) -> tuple[str, ...]:
    if arr.metadata.zarr_format == 3:
        names = arr.metadata.dimension_names
        return tuple(names) if names else ()
    return tuple(dict(arr.attrs).get("_ARRAY_DIMENSIONS", ()))


def _find_data_var(group: Any, shown: str) -> str:
    candidates = [k for k, a in group.arrays() if "grid_mapping" in dict(a.attrs)]
    if not candidates:
        candidates = [k for k, a in group.arrays() if _dims(a)[-2:] == ("y", "x") and k not in ("x", "y")]
    if len(candidates) != 1:
        raise ReadError(f"Zarr store {shown!r}: cannot tell which variable is the raster (found {candidates}).")
    return str(candidates[0])


def _nodata(arr: Any, attrs_: dict[str, Any]) -> float | int | None:
    value = attrs_.get("_FillValue")
    if value is None and arr.metadata.zarr_format == 2:
        value = arr.metadata.fill_value
    if value is None:
        return None
    if isinstance(value, str) and value.lower() == "nan":
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    return value  # type: ignore[no-any-return]


def _array(target: Target, name: str, arr: Any, chunks: Any) -> Any:
    if chunks is None:
        return np.asarray(arr[...])
    ensure("dask")
    from dask.base import tokenize

    from pyr.io._producer import producer_array

    if chunks == "auto":
        chunk_shape = tuple(arr.chunks)
    else:
        if len(chunks) > arr.ndim:
            raise InvalidArgument(f"chunks={chunks!r}: the array has only {arr.ndim} dimensions.")
        chunk_shape = tuple(arr.chunks[: arr.ndim - len(chunks)]) + tuple(chunks)
    norm = tuple(
        tuple(min(c, n - o) for o in range(0, n, c)) if n else (0,) for c, n in zip(chunk_shape, arr.shape, strict=True)
    )
    token = tokenize(target, name, norm, str(arr.metadata.to_dict()))
    # the token doubles as the fingerprint of the array's metadata (see read_chunk); not the layer's
    # name itself: dask renames layers when it fuses them, and would rewrite that argument too
    return producer_array("pyr-read-zarr-" + token, _read_zarr_region, (target, name, token), norm, np.dtype(arr.dtype))


def _read_zarr_region(target: Target, name: str, fingerprint: str, region: tuple[slice, ...]) -> np.ndarray:
    """One chunk task of a lazy ``read_zarr`` (``fingerprint``: see :func:`read_chunk`)."""
    return read_chunk(target, name, region, fingerprint)


@curried
def write_zarr(
    obj: Raster | Cube,
    store: Any,
    *,
    compute: bool = True,
    mode: str = "w-",
    zarr_format: int = 2,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    compressor: Any = "auto",
) -> Delayed | None:
    """Write a ``Raster`` or ``Cube`` to a CF-compatible Zarr store, chunk-parallel.

    Parameters
    ----------
    obj
        What to write; a lazy object is written chunk by chunk (one dask chunk
        is one Zarr chunk) without being materialised. Each chunk is read,
        computed and written by one task; on a ``distributed`` cluster (a
        client active when the graph is built) one task does several chunks
        in turn, fewer tasks for the scheduler (dask config
        ``pyr.chunks-per-task``: ``"auto"`` or a number; docs/design.md).
    store
        A path, an fsspec URL (``s3://``, ``memory://``...) or a zarr store.
    compute
        ``False`` returns a ``dask.delayed.Delayed``; nothing touches the store
        until it is computed.
    mode
        ``"w-"`` refuses an existing store (:class:`~pyr.errors.StoreExists`),
        ``"w"`` replaces it, ``"a"`` appends later dates of a ``Cube`` to an
        existing cube store on the same grid. ``"w"`` writes the new store
        beside the old one (``<store>.pyr-staging-<token>``) and replaces the
        old one only once the new one is complete: a local directory is
        swapped in by renames; on an object store the old store is deleted and
        the new one copied into place (root metadata last), so a failure
        during the write keeps the old store, and a failure during the copy
        keeps the new one under the staging prefix. A zarr store object
        (that can list and delete, as zarr's own stores) stages the new store
        under a ``.pyr-staging-<token>`` prefix inside it and moves it to the
        root the same way; one that cannot is overwritten in place. Two
        writes of one store at once never leave a store with chunks missing:
        one fails with :class:`~pyr.errors.WriteError` or the last one wins
        (docs/design.md). ``"a"`` holds a lock beside the store
        (``<store>.pyr-append``) from its first task to its last: another
        append meanwhile is refused (``WriteError``); a failed append keeps
        the lock, the same append run again resumes it, and a different one
        is refused until the lock is deleted.
    zarr_format
        2 (default: GDAL reads it) or 3.
    name
        The data variable's name (default ``"band_data"``, as rioxarray).
    storage_options
        fsspec options for URL stores (credentials never reach the metadata).
    compressor
        The data variable's codec. ``"auto"``: Blosc LZ4 with byte shuffle,
        chosen for encode and decode speed (docs/design.md, "Why Blosc
        LZ4"); ``None``: uncompressed; or a codec object as zarr-python's
        ``create_array(compressors=...)`` takes it: numcodecs for
        ``zarr_format=2``, ``zarr.codecs`` for 3. For example
        ``numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)``,
        pyr's earlier default, stored Sentinel-2 reflectance 1-3 % smaller
        (uint16 counts 7-12 %) and encoded it several times slower (docs/design.md).
        Checked when the graph is built (:class:`~pyr.errors.InvalidArgument`).
        Not allowed with ``mode="a"``, which keeps the store's codec.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from pyr import GeoBox, Raster, read_zarr, write_zarr
    >>> gb = GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631")
    >>> r = Raster(np.array([[[1, 2, 3]]], "uint16"), gb, nodata=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "r.zarr")
    >>> write_zarr(r, path)
    >>> read_zarr(path, chunks=None).data
    array([[[1, 2, 3]]], dtype=uint16)
    """
    written: Delayed | None = write_zarr_impl(
        obj,
        store,
        compute=compute,
        mode=mode,
        zarr_format=zarr_format,
        name=name,
        storage_options=storage_options,
        compressor=compressor,
    )
    return written


@curried
def read_zarr(store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None) -> Raster | Cube:
    """Read a store written by :func:`write_zarr` (or a CF store from xarray/rioxarray).

    Returns a ``Raster`` for ``(band, y, x)`` data and a ``Cube`` (with
    ``times``) for ``(time, band, y, x)``. ``chunks="auto"`` is lazy with the
    store's own chunks; an int or tuple gives other spatial chunks; ``None``
    reads eagerly. Raises :class:`~pyr.errors.IncompleteStore` for a pyr
    store whose writer did not finish.
    """
    return read_zarr_impl(store, chunks=chunks, storage_options=storage_options)
