"""``write_zarr(cube, store, mode="a")``: append later dates to a pyr cube store.

The call reads the store's published (consolidated) metadata, nothing is
written, to refuse a mismatch early and to plan writes aligned to the stored
chunks. The graph is ``begin`` -> one task per block of the new dates ->
``finish``, and each step that changes storage is announced to
:func:`pyr._faults.step` (``zarr.append:<step>``)::

    lock, times, chunk..., metadata, unlock

* ``lock``: create the lock beside the store (``<store>.pyr-append``, holding
  the append's token and this run's id; created atomically where the storage
  can). The same append (same store, name and dates) takes it over: that is
  how a rerun after a crash finishes the append; a different one is refused.
* ``times``: the new dates go into the ``time`` coordinate's chunks, each
  chunk put whole, beyond the shape readers see (the values before are
  unchanged);
* ``chunk``: each task writes whole chunks of the new dates, also beyond the
  published shape, so readers do not see them yet and no existing chunk is
  rewritten;
* ``metadata``: once the lock still holds this run (else another run of the
  same append took over, and this one publishes nothing), the arrays' new
  shapes are put, then the consolidated metadata, each object whole: readers
  (pyr, xarray, GDAL read the consolidated metadata) see the old dates, then
  all of the new ones;
* ``unlock``: the lock is removed.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import attrs
import numpy as np

from pyr import _faults
from pyr._imports import ensure
from pyr._lazy import as_lazy
from pyr._nodata import same_nodata
from pyr.cube import Cube
from pyr.errors import GridMismatch, IncompleteStore, InvalidArgument, ReadError, WriteError
from pyr.io import cf
from pyr.io.storage import Storage
from pyr.io.zarr.arrays import write_chunk
from pyr.io.zarr.chunks import write_1d
from pyr.io.zarr.graph import chunk_graph
from pyr.io.zarr.layout import DEFAULT_NAME
from pyr.io.zarr.read import nodata_of
from pyr.types import parse_nodata

__all__ = ["APPEND_LOCK", "AppendPlan", "append_graph"]

#: Beside the store (``<store>.pyr-append``): a running or unfinished append's lock.
APPEND_LOCK = ".pyr-append"


@attrs.frozen
class AppendPlan:
    """What the append tasks need (picklable, no store handle)."""

    name: str
    n0: int  # dates published before the append
    times: tuple[int, ...]  # the new dates, CF seconds since the epoch
    shape: tuple[int, ...]  # the data array's shape after the append
    chunks: tuple[int, ...]
    zarr_format: int
    token: str = ""  # the same append (store, name, dates) has the same token

    @property
    def n(self) -> int:
        """Dates stored after the append."""
        return self.n0 + len(self.times)


def _open_group(storage: Storage) -> Any:
    ensure("zarr")
    import zarr

    store = storage.zarr_store(read_only=True)
    try:
        return zarr.open_consolidated(store, mode="r")
    except Exception:
        return zarr.open_group(store, mode="r")


def _token(storage: Storage, name: str, times: np.ndarray) -> str:
    ensure("dask")
    from dask.base import tokenize

    return str(tokenize(storage, name, [int(t) for t in times]))


def _held(storage: Storage) -> tuple[str, str]:
    """The token and run id in the store's append lock (empty when there is none)."""
    data = storage.beside(APPEND_LOCK).get("")
    if data is None:
        return "", ""
    token, _, run = data.decode(errors="replace").partition("\n")
    return token.strip(), run.strip()


def _plan(cube: Cube, storage: Storage, name: str) -> AppendPlan | None:
    """The append's plan; ``None`` when this same append already published (only its lock is left)."""
    shown = storage.url
    if not storage.exists():
        raise InvalidArgument(f"mode='a': {shown!r} does not exist; write the cube with mode='w-' first.")
    try:
        group = _open_group(storage)
    except Exception as err:
        raise ReadError(f"Cannot open Zarr store {shown!r}: {err}") from None
    meta = dict(group.attrs).get("pyr")
    if not isinstance(meta, dict) or meta.get("kind") != "cube":
        raise InvalidArgument(f"{shown!r} is not a pyr cube store; mode='a' appends only to cube stores pyr wrote.")
    if not meta.get("complete", False):
        raise IncompleteStore(f"Zarr store {shown!r} is incomplete (its writer did not finish): cannot append to it.")
    stored_name = str(meta.get("name"))
    if name != stored_name and name != DEFAULT_NAME:
        raise InvalidArgument(f"name={name!r}: the cube store {shown!r} holds {stored_name!r}.")
    arr = group[stored_name]
    n0 = int(arr.shape[0])
    where = f"the cube to append to {shown!r}"
    geobox = cf.geobox_from_cf(tuple(arr.shape[-2:]), group["y"][:], group["x"][:], dict(group["spatial_ref"].attrs))
    if cube.geobox != geobox:
        raise GridMismatch(f"{where} is on {cube.geobox!r}; the store is on {geobox!r}.")
    if cube.dtype != np.dtype(arr.dtype):
        raise GridMismatch(f"{where} is {cube.dtype}; the store holds {np.dtype(arr.dtype)}.")
    nodata = nodata_of(arr, dict(arr.attrs))
    nodata = None if nodata is None else parse_nodata(nodata, cube.dtype)
    if not same_nodata(cube.nodata, nodata):
        raise GridMismatch(f"{where} has nodata {cube.nodata!r}; the store has {nodata!r}.")
    bands = tuple(str(b) for b in group["band"][:])
    if cube.bands != bands:
        raise GridMismatch(f"{where} has bands {cube.bands!r}; the store has {bands!r}.")
    factors = cf.factors_from_attrs(dict(arr.attrs), len(bands), where=f"Zarr store {shown!r}")
    if (cube.scales, cube.offsets) != factors:
        raise GridMismatch(
            f"{where} has scales/offsets {cube.scales!r}/{cube.offsets!r}; the store has {factors[0]!r}/{factors[1]!r}."
        )
    if cube.times is None:
        raise InvalidArgument("mode='a' needs a cube with times (a later date for every date appended).")
    new = cf.encode_times(cube.times)
    token = _token(storage, stored_name, new)
    stored_raw = np.asarray(group["time"][:n0], dtype="int64")
    if len(new) and n0 >= len(new) and (stored_raw[n0 - len(new) :] == new).all() and _held(storage)[0] == token:
        return None  # this append published and was stopped before it removed its lock
    tattrs = dict(group["time"].attrs)
    stored = cf.decode_times(stored_raw, tattrs.get("units", cf.TIME_UNITS), tattrs.get("calendar", cf.TIME_CALENDAR))
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
        zarr_format=int(arr.metadata.zarr_format),
        token=token,
    )


# --- the steps ------------------------------------------------------------------


def _refused(storage: Storage, plan: AppendPlan) -> WriteError:
    return WriteError(
        f"{storage.url!r} has another append running, or one that failed (its lock: "
        f"{storage.beside(APPEND_LOCK).url!r}): "
        f"this append of {len(plan.times)} dates was not started. Run that append again to finish it; or, "
        f"if no append is running, delete the lock and this append starts from {plan.n0} dates."
    )


def _meta_key(plan: AppendPlan, array: str) -> str:
    return f"{array}/.zarray" if plan.zarr_format == 2 else f"{array}/zarr.json"


def _json(storage: Storage, key: str) -> dict[str, Any]:
    raw = storage.get(key)
    if raw is None:
        raise WriteError(f"{storage.url!r} has no {key!r}: the store changed under this append.")
    found: dict[str, Any] = json.loads(raw)
    return found


def begin_append(storage: Storage, plan: AppendPlan) -> str:
    """Take the append lock, check the store is as planned, write the new times (unpublished)."""
    run = uuid.uuid4().hex
    lock = storage.beside(APPEND_LOCK)
    _faults.step("zarr.append:lock")
    made = lock.claim("", f"{plan.token}\n{run}".encode())
    if not made:
        if _held(storage)[0] != plan.token:
            raise _refused(storage, plan)
        lock.put("", f"{plan.token}\n{run}".encode())  # the same append: take it over (a rerun finishes it)
    try:
        n0 = int(_open_group(storage)[plan.name].shape[0])
        if n0 != plan.n0:
            raise InvalidArgument(
                f"{storage.url!r} changed since the append was planned: it holds {n0} dates, not {plan.n0}."
            )
    except BaseException:
        if made:  # nothing was changed: leave no lock behind
            lock.remove()
        raise
    _faults.step("zarr.append:times")
    times = np.asarray(plan.times, dtype="int64")
    if not write_1d(storage, "time", _json(storage, _meta_key(plan, "time")), plan.n0, times):
        from pyr.io.zarr.arrays import _writable_array

        _writable_array(storage, "time", run, (plan.n,))[plan.n0 :] = times
    return run


def write_block(
    storage: Storage, name: str, shape: tuple[int, ...], region: tuple[slice, ...], block: np.ndarray, run: str
) -> None:
    """Write one block (whole chunks of the new dates) beyond the published shape."""
    write_chunk(storage, name, region, block, None, run, "zarr.append:chunk", shape)


def finish_append(storage: Storage, plan: AppendPlan, _after: Any = None, run: str = "") -> None:
    """Publish the new shape (arrays, then the consolidated metadata) and drop the lock."""
    if _held(storage) != (plan.token, run):
        raise WriteError(
            f"{storage.url!r}: another run of the same append took its lock over while this one ran; "
            "this one published nothing (the other one, or a rerun, finishes the append)."
        )
    _faults.step("zarr.append:metadata")
    publish_shapes(storage, plan)
    _faults.step("zarr.append:unlock")
    storage.beside(APPEND_LOCK).remove()


def publish_shapes(storage: Storage, plan: AppendPlan) -> None:
    """Put the data and time arrays' new shapes, then the consolidated metadata, each object whole."""
    shapes = {plan.name: list(plan.shape), "time": [plan.n]}
    for array, shape in shapes.items():
        meta = _json(storage, _meta_key(plan, array))
        meta["shape"] = shape
        storage.put(_meta_key(plan, array), _dump(meta))
    root_key = ".zmetadata" if plan.zarr_format == 2 else "zarr.json"
    root = storage.get(root_key)
    if root is None:
        return
    meta = json.loads(root)
    if plan.zarr_format == 2:
        for array, shape in shapes.items():
            meta["metadata"][f"{array}/.zarray"]["shape"] = shape
    elif meta.get("consolidated_metadata"):
        for array, shape in shapes.items():
            meta["consolidated_metadata"]["metadata"][array]["shape"] = shape
    storage.put(root_key, _dump(meta))


def _dump(meta: dict[str, Any]) -> bytes:
    return json.dumps(meta, indent=4, sort_keys=False, allow_nan=False).encode()


# --- the graph ------------------------------------------------------------------


def append_graph(obj: Any, storage: Storage, *, name: str, compute: bool) -> Any:
    """Append the later dates of cube ``obj`` to the cube store at ``storage``.

    Returns ``None`` after writing (``compute=True``) or a ``Delayed`` that
    writes nothing until computed. Raises :class:`GridMismatch` if grid,
    dtype, nodata or bands differ from the store's, and
    :class:`InvalidArgument` unless every new date is after the last stored.
    """
    ensure("dask.array")
    from dask.base import tokenize

    if not isinstance(obj, Cube):
        raise InvalidArgument(f"mode='a' appends dates of a Cube; got a {type(obj).__name__}.")
    plan = _plan(obj, storage, name)
    if plan is None:  # published by an earlier run that was stopped before it removed its lock
        return _finished(storage, compute)
    data = as_lazy(obj.data, plan.chunks)
    data = data.rechunk(plan.chunks)
    token = tokenize(data, storage, plan)
    names = (
        f"pyr-zarr-append-begin-{token}",
        f"pyr-zarr-append-write-{token}",
        f"pyr-zarr-append-group-{token}",
        f"pyr-zarr-append-final-{token}",
    )
    delayed = chunk_graph(
        data,
        names,
        (begin_append, storage, plan),
        write_block,
        (storage, plan.name, plan.shape),
        (),
        finish_append,
        (storage, plan),
        time_offset=plan.n0,
    )
    if compute:
        delayed.compute()
        return None
    return delayed


def _finished(storage: Storage, compute: bool) -> Any:
    """Drop the lock of an append that published (now, or as a ``Delayed``)."""

    def unlock() -> None:
        _faults.step("zarr.append:unlock")
        storage.beside(APPEND_LOCK).remove()

    if compute:
        unlock()
        return None
    from dask.delayed import delayed

    return delayed(unlock, pure=False)()
