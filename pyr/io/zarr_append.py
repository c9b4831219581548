"""``write_zarr(cube, store, mode="a")``: append later dates to a pyr cube store.

The call reads the store's metadata (nothing is written) to refuse a
mismatch early and to plan writes aligned to the stored chunks. The returned
graph is ``begin`` -> one ``write`` task per chunk of the new dates -> ``finish``:

* ``begin`` checks the store is still as planned, marks it incomplete
  (``pyr.complete = false`` plus ``pyr.appending = {"from": n0, "to": n}``,
  consolidated, so every reader sees it), resizes the data and ``time``
  arrays to ``n`` dates and writes the new times;
* each ``write`` writes whole Zarr chunks of dates ``n0..n``, so chunks of
  the existing dates are never rewritten (only the tiny ``time`` coordinate
  is extended in place);
* ``finish`` drops ``appending``, marks the store complete and consolidates.

A failed append leaves the store marked incomplete, its existing dates
untouched; running the same append again resumes it (the partial new dates
are cut off first).

One append at a time: ``begin`` takes a lock beside the store
(``<store>.pyr-append``, holding the plan's token; created atomically on a
local disk and on S3) and ``finish`` drops it. Another append started meanwhile is
refused with ``WriteError`` instead of writing its dates into the same
slots; after a failure the lock stays, so the same append (same token)
resumes, and a different one is refused until the lock is deleted. A zarr
store object has no lock.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import attrs
import numpy as np

from pyr._fuse import fuse_writes
from pyr._imports import ensure
from pyr._lazy import is_lazy as is_dask  # the lead switches these calls to is_lazy
from pyr.cube import Cube
from pyr.errors import GridMismatch, IncompleteStore, InvalidArgument, ReadError, WriteError
from pyr.io import cf
from pyr.io._zarr_layout import DEFAULT_NAME, consolidate
from pyr.io._zarr_target import Target
from pyr.io._zarr_target import flatten_keys as _flatten
from pyr.io.sources import display_name
from pyr.io.zarrio import _nodata, create_object, write_chunk
from pyr.types import parse_nodata

__all__ = ["AppendPlan", "append_graph"]


@attrs.frozen
class AppendPlan:
    """What the append tasks need (picklable, no store handle)."""

    name: str
    n0: int  # dates stored before the append
    times: tuple[int, ...]  # the new dates, CF seconds since the epoch
    shape: tuple[int, ...]  # the data array's shape after the append
    chunks: tuple[int, ...]

    @property
    def n(self) -> int:
        """Dates stored after the append."""
        return self.n0 + len(self.times)


def _open_group(target: Target, *, write: bool) -> Any:
    ensure("zarr")
    import zarr

    store = target.zarr_store(read_only=not write)
    return zarr.open_group(store, mode="r+" if write else "r", use_consolidated=False)


def _consolidate(target: Target) -> None:
    consolidate(target.zarr_store())


def _state(group: Any, shown: str) -> tuple[dict[str, Any], int]:
    """The store's ``pyr`` attributes and how many dates it holds (resuming a failed append)."""
    meta = dict(group.attrs).get("pyr")
    if not isinstance(meta, dict) or meta.get("kind") != "cube":
        raise InvalidArgument(f"{shown!r} is not a pyr cube store; mode='a' appends only to cube stores pyr wrote.")
    name = str(meta.get("name"))
    stored = int(group[name].shape[0])
    if meta.get("complete", False):
        return meta, stored
    appending = meta.get("appending")
    if isinstance(appending, dict) and "from" in appending:
        return meta, int(appending["from"])  # a failed append: its partial dates are cut off
    raise IncompleteStore(f"Zarr store {shown!r} is incomplete (its writer did not finish): cannot append to it.")


def _same_nodata(a: float | int | None, b: float | int | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return bool(a == b)


def _plan(cube: Cube, target: Target, name: str) -> AppendPlan:
    shown = display_name(target.url)
    if not target.exists():
        raise InvalidArgument(f"mode='a': {shown!r} does not exist; write the cube with mode='w-' first.")
    try:
        group = _open_group(target, write=False)
    except Exception as err:
        raise ReadError(f"Cannot open Zarr store {shown!r}: {err}") from None
    meta, n0 = _state(group, shown)
    stored_name = str(meta.get("name"))
    if name != stored_name and name != DEFAULT_NAME:
        raise InvalidArgument(f"name={name!r}: the cube store {shown!r} holds {stored_name!r}.")
    arr = group[stored_name]
    where = f"the cube to append to {shown!r}"
    geobox = cf.geobox_from_cf(tuple(arr.shape[-2:]), group["y"][:], group["x"][:], dict(group["spatial_ref"].attrs))
    if cube.geobox != geobox:
        raise GridMismatch(f"{where} is on {cube.geobox!r}; the store is on {geobox!r}.")
    if cube.dtype != np.dtype(arr.dtype):
        raise GridMismatch(f"{where} is {cube.dtype}; the store holds {np.dtype(arr.dtype)}.")
    nodata = _nodata(arr, dict(arr.attrs))
    nodata = None if nodata is None else parse_nodata(nodata, cube.dtype)
    if not _same_nodata(cube.nodata, nodata):
        raise GridMismatch(f"{where} has nodata {cube.nodata!r}; the store has {nodata!r}.")
    bands = tuple(str(b) for b in group["band"][:])
    if cube.bands != bands:
        raise GridMismatch(f"{where} has bands {cube.bands!r}; the store has {bands!r}.")
    if cube.times is None:
        raise InvalidArgument("mode='a' needs a cube with times (a later date for every date appended).")
    new = cf.encode_times(cube.times)
    tattrs = dict(group["time"].attrs)
    stored = cf.decode_times(
        group["time"][:n0], tattrs.get("units", cf.TIME_UNITS), tattrs.get("calendar", cf.TIME_CALENDAR)
    )
    if len(new) > 1 and not (np.diff(new) > 0).all():
        raise InvalidArgument(f"mode='a': the cube's times must be strictly increasing; got {cube.times}.")
    if len(new) and n0 and cube.times[0] <= stored.max():
        raise InvalidArgument(
            f"mode='a' appends only later dates: the cube starts at {cube.times[0]}, the store {shown!r} "
            f"already ends at {stored.max()}."
        )
    chunks = tuple(int(c) for c in arr.chunks)
    if n0 % chunks[0]:
        raise InvalidArgument(
            f"{shown!r} stores {chunks[0]} dates per chunk and holds {n0}: appending would rewrite its last chunk."
        )
    return AppendPlan(
        name=stored_name,
        n0=n0,
        times=tuple(int(v) for v in new),
        shape=(n0 + len(new), *(int(s) for s in arr.shape[1:])),
        chunks=chunks,
    )


# --- tasks ----------------------------------------------------------------------


#: Beside a path or URL store (``<store>.pyr-append``), a running or failed append's
#: lock: its plan's token. Not inside: zarr-python takes every entry of a v2 group
#: for a member.
APPEND_LOCK = ".pyr-append"


def _lock_path(target: Target) -> str:
    return target.url.rstrip("/") + APPEND_LOCK


def _take_lock(target: Target, token: str, plan: AppendPlan) -> bool:
    """Hold the store's append lock for the append ``token``, or refuse: one append at a time.

    The same append (same dates, same store: same token) takes over its own
    lock, which is how a failed append resumes. The lock is created
    atomically on a local disk (``O_EXCL``) and on S3 (a conditional write);
    other fsspec filesystems check, then write. Returns whether the lock was
    made now (not taken over).
    """
    if target.store is not None:
        return False  # a zarr store object: no place for a lock
    fs, root = target.fs()  # a local directory too (fsspec's LocalFileSystem)
    try:
        create_object(fs, root + APPEND_LOCK, token.encode())
        return True
    except FileExistsError:
        held = ""
        with contextlib.suppress(FileNotFoundError):  # dropped meanwhile: still refused, try again
            held = fs.cat_file(root + APPEND_LOCK).decode().strip()
    if held != token:
        raise WriteError(
            f"{display_name(target.url)!r} has another append running, or one that failed (its lock: "
            f"{display_name(_lock_path(target))!r}): "
            f"this append of {len(plan.times)} dates was not started. Run that append again to finish it; or, "
            f"if no append is running, delete the lock and this append resumes from {plan.n0} dates."
        )
    return False


def _drop_lock(target: Target) -> None:
    if target.store is not None:
        return
    fs, root = target.fs()
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(root + APPEND_LOCK)


def begin_append(target: Target, plan: AppendPlan) -> str:
    """Take the append lock, check the store is as planned, mark it incomplete, resize it, write the new times."""
    ensure("dask")
    from dask.base import tokenize

    shown = display_name(target.url)
    token = str(tokenize(target, plan))
    made = _take_lock(target, token, plan)
    try:
        group = _open_group(target, write=True)
        meta, n0 = _state(group, shown)
        if n0 != plan.n0:
            raise InvalidArgument(
                f"{shown!r} changed since the append was planned: it holds {n0} dates, not {plan.n0}."
            )
    except BaseException:
        if made:  # nothing was changed: leave no lock behind
            _drop_lock(target)
        raise
    meta = {**meta, "complete": False, "appending": {"from": plan.n0, "to": plan.n}}
    group.attrs.update({"pyr": meta})
    _consolidate(target)
    arr = group[plan.name]
    if arr.shape[0] != plan.n0:  # resuming: cut off the partial dates of the failed append
        arr.resize((plan.n0, *plan.shape[1:]))
    arr.resize(plan.shape)
    time = group["time"]
    time.resize((plan.n,))
    time[plan.n0 :] = np.asarray(plan.times, dtype="int64")
    return token


def write_block(target: Target, name: str, region: tuple[slice, ...], block: np.ndarray, token: str) -> None:
    """Write one block (whole Zarr chunks of the new dates) as write_zarr writes a chunk, keyed by ``token``."""
    write_chunk(target, name, region, block, fingerprint=token)


def finish_append(target: Target, plan: AppendPlan, _after: Any = None) -> None:
    """Mark the store complete again and consolidate its metadata."""
    group = _open_group(target, write=True)
    meta = {k: v for k, v in dict(group.attrs)["pyr"].items() if k != "appending"}
    group.attrs.update({"pyr": {**meta, "complete": True}})
    _consolidate(target)
    _drop_lock(target)


# --- the graph ------------------------------------------------------------------


def append_graph(obj: Any, target: Target, *, name: str, compute: bool) -> Any:
    """Append the later dates of cube ``obj`` to the cube store at ``target``.

    Returns ``None`` after writing (``compute=True``) or a ``Delayed`` that
    writes nothing until computed. Raises :class:`GridMismatch` if grid,
    dtype, nodata or bands differ from the store's, and
    :class:`InvalidArgument` unless every new date is after the last stored.
    """
    ensure("dask.array")
    import dask.array as da
    from dask._task_spec import List, Task, TaskRef
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    if not isinstance(obj, Cube):
        raise InvalidArgument(f"mode='a' appends dates of a Cube; got a {type(obj).__name__}.")
    plan = _plan(obj, target, name)
    data = obj.data if is_dask(obj.data) else da.from_array(obj.data, chunks=plan.chunks)
    data = data.rechunk(plan.chunks)
    token = tokenize(data, target, plan)
    begin_key = f"pyr-zarr-append-begin-{token}"
    write_name = f"pyr-zarr-append-write-{token}"
    final_key = f"pyr-zarr-append-final-{token}"
    dsk: dict[Any, Any] = {begin_key: (begin_append, target, plan)}
    offsets = [np.cumsum((0, *c)) for c in data.chunks]
    offsets[0] = offsets[0] + plan.n0
    write_keys = []
    for key in _flatten(data.__dask_keys__()):
        idx = key[1:]
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        wkey = (write_name, *idx)
        dsk[wkey] = (write_block, target, plan.name, region, key, begin_key)
        write_keys.append(wkey)
    graph = HighLevelGraph.from_collections(write_name, dsk, dependencies=[data])
    # as write_zarr: each block is read, computed and written by one task (grouped on a cluster)
    fused, write_keys = fuse_writes(graph, write_keys, data, f"pyr-zarr-append-group-{token}")
    fused[final_key] = Task(final_key, finish_append, target, plan, List(*map(TaskRef, write_keys)))
    delayed = Delayed(final_key, fused)
    if compute:
        delayed.compute()
        return None
    return delayed
