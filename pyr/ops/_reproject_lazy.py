"""The lazy branch of :func:`pyr.ops.reproject.reproject`: one task per output chunk.

Each task depends only on the input chunks that hold the window
:func:`pyr._warp_plan.plan_warps` found for it; a chunk with no window is
a nodata block with no dependency.
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

import numpy as np

from pyr._imports import ensure
from pyr._warp_plan import edges, plan_warps
from pyr.geobox import GeoBox

if TYPE_CHECKING:
    from pyr.ops.reproject import Warp

__all__ = ["lazy_reproject", "output_chunks"]


def output_chunks(data: Any, geobox: GeoBox) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Spatial chunks of the output: the input's largest chunk shape, tiled over ``geobox``."""
    cy = max(max(data.chunks[-2], default=1), 1)
    cx = max(max(data.chunks[-1], default=1), 1)

    def tile(n: int, c: int) -> tuple[int, ...]:
        return tuple(min(c, n - s) for s in range(0, n, c)) or (0,)

    return tile(geobox.height, cy), tile(geobox.width, cx)


def lazy_reproject(data: Any, src: GeoBox, dst: GeoBox, warp: Warp) -> Any:
    """``data`` (dask, ``(..., band, y, x)`` on ``src``) warped onto ``dst`` by ``warp``, one task per chunk."""
    ensure("dask.array")
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    band_axis = data.ndim - 3
    if len(data.chunks[band_axis]) > 1:
        data = data.rechunk({band_axis: -1})
    ychunks, xchunks = output_chunks(data, dst)
    lead_chunks = tuple(data.chunks[:band_axis])
    chunks = (*lead_chunks, (data.shape[band_axis],), ychunks, xchunks)
    name = "pyr-reproject-" + tokenize(data.name, src, dst, warp, chunks)
    plan = plan_warps(dst, src, ychunks, xchunks, resampling=warp.resampling)
    in_rows, in_cols = edges(data.chunks[-2]), edges(data.chunks[-1])
    lead_index = [()] if band_axis == 0 else [(t,) for t in range(len(lead_chunks[0]))]
    dsk: dict[Any, Any] = {}
    for chunk in plan:
        i, j = chunk.position
        shape = chunk.grid.shape
        window = chunk.source_grid(src)
        for lead in lead_index:
            lead_shape = (*tuple(lead_chunks[k][t] for k, t in enumerate(lead)), data.shape[band_axis])
            key = (name, *lead, 0, i, j)
            if chunk.window is None or window is None:
                dsk[key] = (warp.fill, lead_shape, shape)
                continue
            r0, r1, c0, c1 = chunk.window
            bi0, bi1 = bisect.bisect_right(in_rows, r0) - 1, bisect.bisect_left(in_rows, r1)
            bj0, bj1 = bisect.bisect_right(in_cols, c0) - 1, bisect.bisect_left(in_cols, c1)
            blocks = [[(data.name, *lead, 0, bi, bj) for bj in range(bj0, bj1)] for bi in range(bi0, bi1)]
            crop = (r0 - in_rows[bi0], r1 - in_rows[bi0], c0 - in_cols[bj0], c1 - in_cols[bj0])
            dsk[key] = (warp.window, blocks, crop, window.transform, chunk.grid.transform, shape)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[data])
    meta = np.empty((0,) * data.ndim, dtype=np.dtype(warp.dtype))
    return da.Array(graph, name, chunks, meta=meta)
