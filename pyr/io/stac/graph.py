"""The task graph of ``read_stac``: one task per (time step, spatial chunk), every band read onto the chunk.

Each band of an item is its own file (a STAC asset). A task reads, for each
band, the assets of its step's items onto its chunk, the first valid pixel
winning in item order, with :func:`pyr.io.warp_read.read_warped` (the window
the chunk's footprint needs, from the coarsest overview still as fine as the
output, warped onto the chunk). An asset whose grid is known from its item
(the projection extension) and whose footprint misses the chunk is skipped
before anything is opened; otherwise the asset's header is read once per
process (:func:`pyr.io.warp_read.cached_header`), and a footprint that
misses the chunk stops there. Once no cell of a band is missing, the
remaining items are not read for it.

With ``scaled``, each asset is warped into float32 (nodata as NaN) and
turned into ``raw * scale + offset`` with its own item's factors before the
mosaic, so items whose factors differ (a processing baseline that changed)
mosaic correctly.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np

from pyr import _gridding
from pyr._nodata import first_valid, missing, same_nodata
from pyr.errors import InvalidArgument, ReadError
from pyr.geobox import GeoBox
from pyr.io.gdal.sources import SourceSpec
from pyr.io.warp_read import WarpTarget, cached_header, read_warped
from pyr.types import parse_nodata

__all__ = ["LOGGER_NAME", "Plan", "Source", "stac_array"]

LOGGER_NAME = "pyr.io.stac"
_log = logging.getLogger(LOGGER_NAME)


@attrs.frozen
class Source:
    """One asset of one item, as a task reads it.

    ``footprint``: its grid from the item (``None``: unknown until its header
    is read); ``nodata``: the item's nodata for it (``None``: the file's);
    ``scale``/``offset``: its factors (applied when the read is scaled).
    """

    spec: SourceSpec
    footprint: GeoBox | None
    nodata: float | int | None
    scale: float = 1.0
    offset: float = 0.0


@attrs.frozen
class Plan:
    """What every task shares: the output grid, how to resample, the output dtype and nodata."""

    geobox: GeoBox
    resampling: str
    dtype: str
    nodata: float | int
    scaled: bool
    skip_failed: bool


#: ``steps[t][b]``: the sources of band ``b`` in time step ``t``, in item order.
Steps = tuple[tuple[tuple[Source, ...], ...], ...]


def _misses(source: Source, chunk: GeoBox, resampling: str) -> bool:
    """Whether the chunk's footprint misses the item's own grid for ``source`` (known without opening it)."""
    if source.footprint is None or source.footprint.crs is None:
        return False
    return _gridding.source_window(chunk, source.footprint, resampling=resampling) is None


def _read_one(source: Source, plan: Plan, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray | None:
    """``source`` read onto rows ``rows``, cols ``cols`` of the plan's grid (``None``: it misses them)."""
    header = cached_header(source.spec)
    own = header.nodata if source.nodata is None else source.nodata
    if plan.scaled:
        target = WarpTarget(plan.geobox, plan.resampling, source.nodata, math.nan, "float32")
    else:
        # Warped with its own nodata, then mapped to the cube's: rasterio's reproject ignores the
        # source nodata when the destination nodata is 0 (rasterio 1.4), so they are kept equal.
        fill = own if own is not None and _fits(own, plan.dtype) else plan.nodata
        target = WarpTarget(plan.geobox, plan.resampling, source.nodata, fill, plan.dtype)
    block = read_warped(source.spec, header, (1,), target, rows, cols, check=False)
    if block is None:
        return None
    if not plan.scaled:
        if not same_nodata(target.dst_nodata, plan.nodata):
            hole = missing(block, target.dst_nodata)
            if hole is not None:
                block[hole] = plan.nodata
        return block
    if source.scale != 1.0:
        np.multiply(block, np.float32(source.scale), out=block)
    if source.offset != 0.0:
        np.add(block, np.float32(source.offset), out=block)
    return block


def _fits(value: float | int, dtype: str) -> bool:
    try:
        parse_nodata(value, np.dtype(dtype))
    except InvalidArgument:
        return False
    return True


def read_band(
    sources: tuple[Source, ...], plan: Plan, rows: tuple[int, int], cols: tuple[int, int]
) -> np.ndarray | None:
    """One band of one time step on one chunk, ``(1, y, x)``: the first valid pixel wins, in item order."""
    chunk = plan.geobox[rows[0] : rows[1], cols[0] : cols[1]]

    def blocks() -> Iterator[np.ndarray | None]:
        for source in sources:
            if _misses(source, chunk, plan.resampling):
                continue
            try:
                yield _read_one(source, plan, rows, cols)
            except ReadError as err:
                if not plan.skip_failed:
                    raise
                _log.warning(
                    "read_stac: asset %r failed, left out of its chunk (on_error='nodata'): %s", source.spec.name, err
                )

    return first_valid(blocks(), plan.nodata)


def _region(plan: Plan, region: tuple[slice, ...], bands: tuple[tuple[Source, ...], ...]) -> np.ndarray:
    """One task: every band of one time step (``bands``) on the chunk ``region[2:]``: ``(1, band, y, x)``."""
    _, _, ys, xs = region
    rows, cols = (ys.start, ys.stop), (xs.start, xs.stop)
    out = np.full((1, len(bands), rows[1] - rows[0], cols[1] - cols[0]), plan.nodata, dtype=np.dtype(plan.dtype))
    for b, sources in enumerate(bands):
        block = read_band(sources, plan, rows, cols)
        if block is not None:
            out[0, b] = block[0]
    return out


def stac_array(steps: Steps, plan: Plan, chunks: tuple[int, int]) -> Any:
    """The dask array ``(time, band, y, x)`` of ``steps`` on the plan's grid, one task per (step, chunk).

    A ``Blockwise`` producer layer (as :func:`pyr.io._producer.producer_array`, so that the steps after
    it fuse with the reads) whose tasks each carry only their own step's sources.
    """
    import dask.array as da
    from dask.base import tokenize
    from dask.blockwise import BlockwiseDepDict, blockwise
    from dask.highlevelgraph import HighLevelGraph
    from dask.layers import ArraySliceDep

    from pyr.io.tiff import split

    height, width = plan.geobox.shape
    nbands = len(steps[0]) if steps else 0
    grid = ((1,) * len(steps), (nbands,), split(height, chunks[0]), split(width, chunks[1]))
    name = "pyr-read-stac-" + tokenize(steps, plan, grid)
    per_step = BlockwiseDepDict({(t,): step for t, step in enumerate(steps)}, numblocks=(len(steps),))
    index = (0, 1, 2, 3)
    layer = blockwise(
        _region, name, index, plan, None, ArraySliceDep(grid), index, per_step, (0,), numblocks={}, _data_producer=True
    )
    graph = HighLevelGraph.from_collections(name, layer, dependencies=())
    return da.Array(graph, name, grid, meta=np.empty((0, 0, 0, 0), dtype=np.dtype(plan.dtype)))
