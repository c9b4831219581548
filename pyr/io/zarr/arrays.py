"""Chunk I/O of the data array: one task writes or reads whole Zarr chunks.

Tasks carry a picklable :class:`~pyr.io.storage.Storage`, never an open
store. A local directory's chunks are encoded and decoded in the task's own
thread (:mod:`pyr.io.zarr.chunks`); any other storage, or a layout that
module does not handle, goes through a zarr-python array handle opened once
per process, thread and write.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import numpy as np

from pyr import _faults
from pyr._cache import ThreadCache
from pyr._imports import ensure
from pyr._malloc import tune_once as tune_malloc_once
from pyr.errors import WriteError
from pyr.io.storage import Storage
from pyr.io.zarr import chunks as direct

__all__ = ["abandon", "flatten_keys", "read_chunk", "write_chunk"]

_WRITE_ARRAYS = ThreadCache(maxsize=32)
_READ_ARRAYS = ThreadCache(maxsize=32)

# Chunk writes running in this process, per write (its fingerprint), and the writes that failed: a
# failed write waits for its running chunk writes before it removes what it staged (the
# threads scheduler raises the first error while other chunk tasks still run).
_IN_FLIGHT: Counter[str] = Counter()
_ABANDONED: set[str] = set()
_CHANGED = threading.Condition()


def abandon(fingerprint: str, timeout: float = 60.0) -> None:
    """Stop this process's chunk writes of the write ``fingerprint`` and wait for those running to end."""
    with _CHANGED:
        _ABANDONED.add(fingerprint)
        _CHANGED.wait_for(lambda: _IN_FLIGHT[fingerprint] == 0, timeout)


def _writable_array(storage: Storage, name: str, fingerprint: str, shape: tuple[int, ...] | None) -> Any:
    """The calling thread's handle on the data array (opened once per process, thread and write).

    ``fingerprint`` (the write graph's name) keys the cache, so a handle opened
    for an earlier write is never reused after ``mode="w"`` replaced the array.
    ``shape``: the array as it will be once published (an append writes its
    dates beyond the shape readers see until then).
    """
    ensure("zarr")
    import zarr

    def open_() -> Any:
        arr = zarr.open_array(storage.zarr_store(), path=name, mode="r+")
        if shape is None or tuple(arr.shape) == tuple(shape):
            return arr
        from zarr.core.array import Array, AsyncArray

        resized = arr.metadata.update_shape(tuple(shape))
        return Array(AsyncArray(metadata=resized, store_path=arr.store_path))

    return _WRITE_ARRAYS.get((storage, name, fingerprint), open_)


def write_chunk(
    storage: Storage,
    name: str,
    region: tuple[slice, ...],
    block: np.ndarray,
    _after: Any = None,
    fingerprint: str = "",
    step: str = "zarr.write:chunk",
    shape: tuple[int, ...] | None = None,
) -> None:
    """Write one block (whole Zarr chunks) into the data array (the protocol step ``step``).

    ``fingerprint`` names this write (one call of ``write_zarr``): it keys the
    cached array handles and :func:`abandon`.
    """
    tune_malloc_once()
    _faults.step(step)
    with _CHANGED:
        if fingerprint in _ABANDONED:
            raise WriteError(f"Cannot write a chunk of {storage.url!r}: the write failed.")
        _IN_FLIGHT[fingerprint] += 1
    path = storage.local_path
    try:
        if path is not None and direct.write_region(path, name, region, block, fingerprint):
            return
        _writable_array(storage, name, fingerprint, shape)[region] = block
    except (FileNotFoundError, FileExistsError) as err:  # zarr's ArrayNotFoundError too
        raise WriteError(
            f"Cannot write a chunk of {storage.url!r}: the store was removed or replaced while this write "
            f"ran (another write of the same store?): {type(err).__name__}: {err}"
        ) from None
    finally:
        with _CHANGED:
            _IN_FLIGHT[fingerprint] -= 1
            if not _IN_FLIGHT[fingerprint]:
                del _IN_FLIGHT[fingerprint]
            _CHANGED.notify_all()


def read_chunk(storage: Storage, name: str, region: tuple[slice, ...], fingerprint: str = "") -> np.ndarray:
    """Read one region of the data array (a task of a lazy ``read_zarr``).

    ``fingerprint`` (a token of the array's metadata) keys the handle cache,
    so a handle opened before the array was resized or replaced
    (``mode="a"``/``"w"``) is never reused with stale metadata.
    """
    tune_malloc_once()
    path = storage.local_path
    if path is not None:
        block = direct.read_region(path, name, region, fingerprint)
        if block is not None:
            return block
    ensure("zarr")
    import zarr

    arr = _READ_ARRAYS.get(
        (storage, name, fingerprint),
        lambda: zarr.open_array(storage.zarr_store(read_only=True), path=name, mode="r"),
    )
    return np.asarray(arr[region])


def flatten_keys(keys: Any) -> list[Any]:
    """The keys of a dask collection's nested key lists, flat."""
    if isinstance(keys, list):
        return [k for sub in keys for k in flatten_keys(sub)]
    return [keys]
