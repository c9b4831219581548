"""The task graph of a Zarr write: ``begin`` -> one task per output chunk -> ``finish``.

Each chunk task writes whole Zarr chunks of its block (so no two tasks touch
one chunk and no lock is needed) and is fused with every task only it needs
(its reads, kernels, reduction: :mod:`pyr._fuse`), so a chunk's pixels are
computed where they are written; on a cluster one task writes several chunks.
The ``begin`` task's value (the run id) is an argument of every chunk task
and of ``finish``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyr._fuse import fuse_writes
from pyr._imports import ensure
from pyr.io.zarr.arrays import flatten_keys

__all__ = ["chunk_graph"]


def chunk_graph(
    data: Any,
    names: tuple[str, str, str, str],
    begin: tuple[Any, ...],
    write: Callable[..., Any],
    write_args: tuple[Any, ...],
    write_kwargs: tuple[Any, ...],
    finish: Callable[..., Any],
    finish_args: tuple[Any, ...],
    *,
    time_offset: int = 0,
) -> Any:
    """A ``Delayed`` writing dask array ``data`` chunk by chunk.

    ``names``: the key of the begin task, the name of the chunk tasks and of
    their groups (on a cluster), the key of the finish task. ``begin``: the begin task (a tuple task). Chunk task:
    ``write(*write_args, region, block, run, *write_kwargs)``; finish task:
    ``finish(*finish_args, <every chunk task>, run)``. ``time_offset``
    shifts the regions along the first axis (an append's first new date).
    """
    ensure("dask.array")
    from dask._task_spec import List, Task, TaskRef
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    begin_key, write_name, group_name, final_key = names
    dsk: dict[Any, Any] = {begin_key: begin}
    offsets = [np.cumsum((0, *c)) for c in data.chunks]
    offsets[0] = offsets[0] + time_offset
    write_keys = []
    for key in flatten_keys(data.__dask_keys__()):
        idx = key[1:]
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        wkey = (write_name, *idx)
        dsk[wkey] = (write, *write_args, region, key, begin_key, *write_kwargs)
        write_keys.append(wkey)
    graph = HighLevelGraph.from_collections(write_name, dsk, dependencies=[data])
    fused, write_keys = fuse_writes(graph, write_keys, data, group_name, keep=[begin_key])
    fused[final_key] = Task(final_key, finish, *finish_args, List(*map(TaskRef, write_keys)), TaskRef(begin_key))
    return Delayed(final_key, fused)
