"""``mosaic``: one raster from several on any grids, the first valid pixel winning."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from affine import Affine

from pyr import _gridding, _lazy
from pyr._curry import curried
from pyr._nodata import first_valid
from pyr.errors import GridMismatch, InvalidArgument
from pyr.geobox import GeoBox
from pyr.ops.reproject import output_nodata, reproject
from pyr.raster import Raster, rasters_of

__all__ = ["default_geobox", "mosaic"]


@attrs.frozen
class _FirstValid:
    """The kernel: the first block's cells, holes (nodata, NaN) filled from the next blocks in turn."""

    nodata: float | int

    def __call__(self, *blocks: np.ndarray) -> np.ndarray:
        out = first_valid(iter((np.array(blocks[0], copy=True), *blocks[1:])), self.nodata)
        assert out is not None  # there is a first block
        return out

    def __dask_tokenize__(self) -> object:
        return ("pyr.mosaic", repr(self.nodata))


def _lattice_offset(first: GeoBox, other: GeoBox) -> tuple[int, int] | None:
    """``other``'s origin in whole cells of ``first``'s lattice, or ``None`` if the lattices differ."""
    a, b = first.transform, other.transform
    if first.crs != other.crs or not np.allclose((a.a, a.b, a.d, a.e), (b.a, b.b, b.d, b.e), rtol=1e-12, atol=0):
        return None
    col, row = ~a @ (b.c, b.f)
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


def default_geobox(rasters: Sequence[Raster]) -> GeoBox:
    """The union of the rasters' footprints at the finest resolution, in the first raster's CRS.

    When every raster shares the first's CRS and cell lattice, the result is
    on that lattice; otherwise its edges are snapped to whole multiples of the
    resolution (as :meth:`GeoBox.from_bbox`).
    """
    first = rasters[0].geobox
    offsets = [_lattice_offset(first, r.geobox) for r in rasters]
    if all(o is not None for o in offsets):
        cols = [(o[0], o[0] + r.geobox.width) for o, r in zip(offsets, rasters, strict=True) if o is not None]
        rows = [(o[1], o[1] + r.geobox.height) for o, r in zip(offsets, rasters, strict=True) if o is not None]
        c0, c1 = min(c for c, _ in cols), max(c for _, c in cols)
        r0, r1 = min(r for r, _ in rows), max(r for _, r in rows)
        return GeoBox((r1 - r0, c1 - c0), first.transform @ Affine.translation(c0, r0), first.crs)
    crs = first.crs
    res = min(_cell_size(r.geobox, crs) for r in rasters)
    bounds = [_gridding.footprint_bounds(r.geobox, crs) for r in rasters]
    union = (
        min(b[0] for b in bounds),
        min(b[1] for b in bounds),
        max(b[2] for b in bounds),
        max(b[3] for b in bounds),
    )
    shape, transform = _gridding.snap_bounds(union, res)
    return GeoBox(shape, transform, crs)


def _cell_size(geobox: GeoBox, crs: Any) -> float:
    if geobox.crs == crs and geobox.is_axis_aligned:
        return float(min(abs(geobox.transform.a), abs(geobox.transform.e)))
    if geobox.crs == crs:  # rotated: the length of a cell's side
        t = geobox.transform
        return float(min(math.hypot(t.a, t.d), math.hypot(t.b, t.e)))
    return abs(geobox.to_crs(crs).transform.a)


@curried
def mosaic(rasters: Sequence[Raster], *, geobox: GeoBox | None = None, resampling: str = "nearest") -> Raster:
    """One raster from several: each reprojected onto ``geobox``, the first valid pixel winning.

    A cell takes the value of the first raster, in the order given, that
    has data there (not nodata, not NaN). The rasters need the same dtype and
    band count (the result has the first's band names and nodata; NaN for
    floats without nodata). Lazy if any raster is lazy, and then equal to
    the eager result up to what :func:`~pyr.reproject` allows (exactly equal
    when the rasters share the output's CRS and cell lattice).

    Parameters
    ----------
    rasters
        A non-empty sequence of :class:`~pyr.Raster`, on any grids and CRSs.
    geobox
        The output grid. Default: the union of the rasters' footprints at the
        finest resolution, in the first raster's CRS, on the first raster's
        cell lattice when all share it (else with edges on multiples of the
        resolution).
    resampling
        As for :func:`~pyr.reproject`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster, mosaic
    >>> west = Raster(np.array([[[1, 0, 1]]], "uint8"), GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631"), nodata=0)
    >>> east = Raster(np.array([[[2, 2, 2]]], "uint8"), GeoBox.from_bounds((10, 0, 40, 10), 10, "EPSG:32631"), nodata=0)
    >>> mosaic([west, east]).data
    array([[[1, 2, 1, 2]]], dtype=uint8)
    >>> from toolz import pipe
    >>> pipe([east, west], mosaic(geobox=west.geobox)).data
    array([[[1, 2, 2]]], dtype=uint8)
    """
    items = rasters_of(rasters, "mosaic")
    first = items[0]
    for i, r in enumerate(items[1:], start=1):
        if (r.scales, r.offsets) != (first.scales, first.offsets):
            raise GridMismatch(
                f"mosaic: raster {i} (0-based position) has scales/offsets {r.scales!r}/{r.offsets!r}; "
                f"raster 0 has {first.scales!r}/{first.offsets!r} (apply them first with pyr.rescale)."
            )
        if r.dtype != first.dtype or r.count != first.count:
            raise GridMismatch(
                f"mosaic: raster {i} (0-based position) has {r.count} band(s) of {r.dtype}; "
                f"raster 0 has {first.count} of {first.dtype}."
            )
    if geobox is not None and not isinstance(geobox, GeoBox):
        raise InvalidArgument(f"geobox={geobox!r}: expected a GeoBox or None.")
    name = _gridding.resampling_name(resampling)
    try:
        nodata = output_nodata(first, None)
    except InvalidArgument:
        raise InvalidArgument(
            f"mosaic: raster 0 ({first.dtype}) has no nodata value, and cells no raster covers need one; "
            "give it one first, e.g. attrs.evolve(raster, nodata=0)."
        ) from None
    target = default_geobox(items) if geobox is None else geobox
    aligned = [
        r.data
        if r.geobox == target and _same(r.nodata, nodata)
        else reproject(r, target, resampling=name, nodata=nodata).data
        for r in items
    ]
    data = _lazy.apply(_FirstValid(nodata), aligned, dtype=first.dtype, out_bands=first.count, name="pyr-mosaic")
    return Raster(data, target, nodata=nodata, bands=first.bands, scales=first.scales, offsets=first.offsets)


def _same(a: float | int | None, b: float | int) -> bool:
    if a is None:
        return False
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b
