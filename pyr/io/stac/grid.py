"""The default grid of ``read_stac``: one CRS, the finest resolution, the items' union (or a bbox).

:func:`plan_geobox` takes the grids of the chosen assets of every item (from
their projection extension, or a header when an item has none) and picks:

- the CRS most of them share (``crs=`` overrides);
- the finest resolution among them in that CRS, per axis (``resolution=``
  overrides; grids in other CRSs count with their footprint's resolution
  when none is in it);
- the union of their footprints in that CRS, or ``bbox`` (in EPSG:4326);
- their own pixel lattice when they share one: every grid in that CRS,
  north-up, its origin a whole number of cells (of the chosen resolution)
  from the finest grid's origin; else edges on whole multiples of the
  resolution, as :meth:`GeoBox.from_bbox` snaps them.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from affine import Affine
from rasterio.crs import CRS

from pyr import _gridding
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox

__all__ = ["plan_geobox"]

_EPS = 1e-6  # in cells: edges closer than this to a lattice line are on it


def _parse_crs(crs: Any) -> CRS:
    from rasterio.errors import CRSError

    try:
        return crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as err:
        raise InvalidArgument(f"crs={crs!r} is not a CRS: {err}") from None


def _common_crs(grids: Sequence[GeoBox]) -> CRS:
    counts = Counter(g.crs.to_wkt() for g in grids if g.crs is not None)
    if not counts:
        raise InvalidArgument("read_stac: no item has a CRS; pass geobox= (or crs= and bbox=).")
    wkt = counts.most_common(1)[0][0]  # ties: the first met, as Counter keeps insertion order
    return CRS.from_wkt(wkt)


def _on_lattice(grid: GeoBox, ref: Affine, res: tuple[float, float]) -> bool:
    t = grid.transform
    if t.b or t.d or t.e >= 0 or t.a <= 0:
        return False
    steps = ((t.c - ref.c) / res[0], (ref.f - t.f) / res[1])
    return all(abs(s - round(s)) < _EPS for s in steps)


def _snap_to(bounds: Sequence[float], ref: Affine, res: tuple[float, float]) -> tuple[tuple[int, int], Affine]:
    """The grid on ``ref``'s lattice (cells ``res``) covering ``bounds``."""
    left, bottom, right, top = bounds
    c0 = math.floor((left - ref.c) / res[0] + _EPS)
    c1 = max(math.ceil((right - ref.c) / res[0] - _EPS), c0 + 1)
    r0 = math.floor((ref.f - top) / res[1] + _EPS)
    r1 = max(math.ceil((ref.f - bottom) / res[1] - _EPS), r0 + 1)
    return (r1 - r0, c1 - c0), Affine(res[0], 0.0, ref.c + c0 * res[0], 0.0, -res[1], ref.f - r0 * res[1])


def _bbox_bounds(bbox: Any, crs: CRS) -> tuple[float, float, float, float]:
    from rasterio.warp import transform_bounds

    try:
        left, bottom, right, top = (float(b) for b in bbox)
    except (TypeError, ValueError):
        raise InvalidArgument(f"bbox={bbox!r}: expected (west, south, east, north) in EPSG:4326.") from None
    if not (bottom < top and bottom >= -90 and top <= 90):
        raise InvalidArgument(f"bbox={tuple(bbox)!r}: expected (west, south, east, north) in EPSG:4326.")
    out = transform_bounds(CRS.from_epsg(4326), crs, left, bottom, right, top, densify_pts=101)
    return (float(out[0]), float(out[1]), float(out[2]), float(out[3]))


def plan_geobox(grids: Sequence[GeoBox], *, crs: Any = None, resolution: Any = None, bbox: Any = None) -> GeoBox:
    """The grid the items are read onto (see the module docstring)."""
    if not grids:
        raise InvalidArgument("read_stac: no grid to plan from.")
    dst = _common_crs(grids) if crs is None else _parse_crs(crs)
    same = [g for g in grids if g.crs == dst and g.is_axis_aligned]
    if same:
        finest = min(same, key=lambda g: abs(g.transform.a) * abs(g.transform.e))
        native = (min(abs(g.transform.a) for g in same), min(abs(g.transform.e) for g in same))
    else:
        finest = None
        cells = [g.to_crs(dst).transform for g in grids if g.crs is not None]
        native = (min(abs(t.a) for t in cells), min(abs(t.e) for t in cells))
    res = native if resolution is None else _gridding._parse_resolution(resolution)
    bounds = _bbox_bounds(bbox, dst) if bbox is not None else _union(grids, dst)
    ref = None if finest is None else finest.transform
    lattice = ref is not None and len(same) == len(grids) and all(_on_lattice(g, ref, res) for g in grids)
    if lattice and ref is not None:
        shape, transform = _snap_to(bounds, ref, res)
    else:
        shape, transform = _gridding.snap_bounds(bounds, res)
    return GeoBox(shape, transform, dst)


def _union(grids: Sequence[GeoBox], crs: CRS) -> tuple[float, float, float, float]:
    bounds = [g.bounds if g.crs == crs else _gridding.footprint_bounds(g, crs) for g in grids]
    return (
        min(b[0] for b in bounds),
        min(b[1] for b in bounds),
        max(b[2] for b in bounds),
        max(b[3] for b in bounds),
    )
