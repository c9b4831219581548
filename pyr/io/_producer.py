"""Dask arrays whose chunks are read by a task each, built as one ``Blockwise`` layer.

A ``Blockwise`` layer (what ``dask.array.from_array`` builds) rather than a
dict of tasks lets dask's graph optimisation fuse each read with the
element-wise steps after it: ``read -> rescale`` or ``read_zarr -> nansum``
become one task per chunk, so no scheduler hands a decoded chunk from one
task (or worker process) to the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from pyr._imports import ensure

__all__ = ["producer_array"]


def producer_array(
    name: str,
    read: Callable[..., np.ndarray],
    args: tuple[Any, ...],
    chunks: tuple[tuple[int, ...], ...],
    dtype: np.dtype[Any],
) -> Any:
    """A dask array named ``name`` whose chunk at ``region`` is ``read(*args, region)``.

    ``region`` is a tuple of one ``slice`` per dimension. ``args`` are stored
    once in the layer, so they should be small (paths, headers, targets), and
    none may be a string equal to a layer's name: dask renames layers when it
    fuses them and rewrites such arguments too (read_zarr once passed its
    graph name and got a KeyError).
    """
    ensure("dask.array")
    import dask.array as da
    from dask.blockwise import blockwise
    from dask.highlevelgraph import HighLevelGraph
    from dask.layers import ArraySliceDep

    index = tuple(range(len(chunks)))
    pairs: list[Any] = []
    for arg in args:
        pairs += [arg, None]
    layer = blockwise(
        read,
        name,
        index,
        *pairs,
        ArraySliceDep(chunks),
        index,
        numblocks={},
        _data_producer=True,
    )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, chunks, meta=np.empty((0,) * len(chunks), dtype=dtype))
