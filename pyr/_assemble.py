"""Compute a dask array into one preallocated numpy array, block by block.

``dask.compute`` of an array ends in one task that concatenates every block.
The blocks and the result are then in memory together, and on the processes
scheduler the blocks are also pickled to the worker that concatenates and the
result pickled back: the calling process holds several times the result.

:func:`assemble` asks the scheduler for the blocks themselves instead and
copies each into its slot of one ``numpy.empty`` result as it arrives,
dropping the block:

- dask's local schedulers (threads, processes, synchronous, an
  ``Executor``) store every finished task in a ``cache`` mapping they accept
  as an argument; :class:`_Slots` is that mapping, and keeps a view of the
  result in place of each block it copies;
- on a ``distributed`` client the blocks are futures, copied and released in
  the order they complete (``distributed.as_completed``).

Any other scheduler (a user's own ``get`` function), blocks that are not
numpy arrays, or chunks of unknown size take ``dask.compute`` as it is.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Hashable, Iterator, MutableMapping
from itertools import accumulate
from typing import Any

import numpy as np

from pyr._cluster import active_client
from pyr._imports import ensure

__all__ = ["assemble", "run"]

Slot = tuple[slice, ...]


class _Slots(MutableMapping[Hashable, Any]):
    """A scheduler's result cache that moves each block into its slot of ``out``.

    Every other value is kept as given; a block is kept as a view of ``out``
    (its own memory is released), so a task that depends on it still reads it.
    """

    def __init__(self, out: np.ndarray, slots: dict[Hashable, Slot]) -> None:
        self.out = out
        self.slots = slots
        self.filled: set[Hashable] = set()
        self._values: dict[Hashable, Any] = {}

    def __setitem__(self, key: Hashable, value: Any) -> None:
        slot = self.slots.get(key)
        if slot is not None:
            self.out[slot] = value
            self.filled.add(key)
            value = self.out[slot]
        self._values[key] = value

    def __getitem__(self, key: Hashable) -> Any:
        return self._values[key]

    def __delitem__(self, key: Hashable) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _slots(keys: list[Any], chunks: tuple[tuple[int, ...], ...]) -> dict[Hashable, Slot]:
    """Where each block key ``(name, i, j, ...)`` goes in the whole array."""
    starts = [[0, *accumulate(c)] for c in chunks]
    return {key: tuple(slice(s[i], s[i + 1]) for s, i in zip(starts, key[1:], strict=True)) for key in keys}


def _flat(keys: Any) -> list[Any]:
    """The block keys of ``__dask_keys__`` (nested lists) in order."""
    if isinstance(keys, list):
        return [k for sub in keys for k in _flat(sub)]
    return [keys]


def _takes_cache(schedule: Any) -> bool:
    """Whether ``schedule`` is one of dask's local schedulers (all accept ``cache=``)."""
    import dask.local
    import dask.multiprocessing
    import dask.threaded

    if schedule in (dask.threaded.get, dask.multiprocessing.get, dask.local.get_sync):
        return True
    return isinstance(schedule, functools.partial) and schedule.func is dask.local.get_async


def run(target: Any, progress: bool) -> Any:
    """``dask.compute(target)`` (one collection) on the current scheduler, with a progress bar if asked."""
    client = active_client(target)
    if client is not None:
        future = client.compute(target)
        if progress:
            from distributed import progress as show_progress

            show_progress(future, notebook=False)  # blocks until done, drawing a text bar
        return future.result()
    ensure("dask")
    from dask.base import compute as dask_compute

    with _bar(progress):
        (value,) = dask_compute(target)
    return value


def _bar(progress: bool) -> contextlib.AbstractContextManager[Any]:
    """Dask's progress bar on standard output (a context manager), or nothing."""
    if not progress:
        return contextlib.nullcontext()
    from dask.diagnostics.progress import ProgressBar

    bar: contextlib.AbstractContextManager[Any] = ProgressBar(minimum=0, dt=0.2, out=sys.stdout)
    return bar


def assemble(data: Any, progress: bool) -> np.ndarray:
    """Compute the dask array ``data`` into one numpy array, copying each block as it arrives.

    The calling process holds the result and the blocks in flight, never all
    the blocks beside the result.
    """
    ensure("dask")
    from dask.base import get_scheduler, optimize

    known = all(not np.isnan(c) for axis in data.chunks for c in axis)
    if not known or type(data._meta) is not np.ndarray:
        return np.asarray(run(data, progress))
    (optimized,) = optimize(data)
    graph = optimized.__dask_graph__()
    keys = _flat(optimized.__dask_keys__())
    out = np.empty(data.shape, dtype=data.dtype)
    slots = _slots(keys, optimized.chunks)

    client = active_client(data)
    if client is not None:
        from distributed import as_completed
        from distributed import progress as show_progress

        futures = client.get(graph, keys, sync=False)
        if progress:
            show_progress(futures, notebook=False)
        completed = as_completed(futures, with_results=True)
        del futures  # each block is released on the cluster once copied
        for future, block in completed:
            out[slots[future.key]] = block
        return out

    schedule = get_scheduler(collections=[data])
    if not _takes_cache(schedule):
        return np.asarray(run(data, progress))
    cache = _Slots(out, slots)
    with _bar(progress):
        values = schedule(graph, keys, cache=cache)
    for key, value in zip(keys, values, strict=True):
        if key not in cache.filled:  # never stored through the cache: copy what was returned
            out[slots[key]] = value
    return out
