"""Grid geometry across CRSs: snapped grids, footprints, and the input window an output chunk needs.

Everything here is pure and works on :class:`~pyr.geobox.GeoBox` values and
small numpy arrays of points; no pixels. :func:`source_windows` is the heart
of lazy reprojection (and of a warped read, which reads the same windows from
a file): for each output chunk, the rows and columns of the input it needs.

A chunk's footprint on the input is found by transforming a dense set of
points along its edges (and a coarse grid inside it), never only its four
corners: near a pole, across the antimeridian or in a sinusoidal grid the
edges of a chunk are curves in the other CRS. Where a geographic pole falls
inside a chunk, the pole's image in the input (a point, or a whole row of a
geographic input) is added, since no edge point reaches it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine
from rasterio.crs import CRS

from pyr.errors import InvalidArgument

if TYPE_CHECKING:  # geobox.py imports this module; the grids here are only read
    from pyr.geobox import GeoBox

Grid = tuple[tuple[int, int], Affine, CRS]

__all__ = [
    "ANCHORS",
    "footprint_bounds",
    "from_bbox",
    "kernel_radius",
    "resampling_name",
    "snap_bounds",
    "source_window",
    "source_windows",
    "to_crs",
    "transform_points",
    "warp_scale",
]

ANCHORS = ("edge", "center")
#: Points per chunk side transformed to find its footprint (plus the corners).
EDGE_POINTS = 64
#: Interior points per axis (a coarse grid), a guard against folds the edges miss.
INTERIOR_POINTS = 5
# Kernel radius in input cells at the output's resolution (GDAL's warp kernels);
# area methods (average, mode, min, ...) read the cells each output cell covers.
_RADIUS = {"nearest": 1.0, "bilinear": 1.0, "cubic": 2.0, "cubic_spline": 2.0, "lanczos": 3.0, "gauss": 2.0}


def resampling_name(resampling: Any) -> str:
    """``resampling`` as the name of a rasterio ``Resampling`` member, checked."""
    from rasterio.enums import Resampling

    if isinstance(resampling, Resampling):
        return str(resampling.name)
    names = [r.name for r in Resampling]
    if not isinstance(resampling, str) or resampling not in names:
        raise InvalidArgument(f"resampling={resampling!r}: expected one of {', '.join(names)}.")
    return resampling


def kernel_radius(resampling: str, ratio: float) -> int:
    """Input cells to add on each side of a footprint for ``resampling`` at ``ratio`` input cells per output cell.

    GDAL widens its interpolation kernels by the ratio when it downsamples;
    one more cell covers the rounding of edge points.
    """
    radius = _RADIUS.get(resampling, 1.0)
    return math.ceil(radius * max(1.0, ratio)) + 1


# --- points ----------------------------------------------------------------------


def transform_points(src: CRS, dst: CRS, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(xs, ys)`` from ``src`` to ``dst``; points PROJ cannot transform become NaN."""
    from rasterio._err import CPLE_BaseError
    from rasterio.errors import CRSError, TransformError
    from rasterio.warp import transform

    xs = np.asarray(xs, dtype="float64")
    ys = np.asarray(ys, dtype="float64")
    if src == dst or xs.size == 0:
        return xs.copy(), ys.copy()
    try:
        tx, ty = transform(src, dst, xs, ys)
        ox, oy = np.asarray(tx, dtype="float64"), np.asarray(ty, dtype="float64")
    except (CPLE_BaseError, CRSError, TransformError, ValueError):
        # One point outside the projection's domain fails the whole call: split and retry.
        if xs.size == 1:
            return np.array([np.nan]), np.array([np.nan])
        half = xs.size // 2
        ax, ay = transform_points(src, dst, xs[:half], ys[:half])
        bx, by = transform_points(src, dst, xs[half:], ys[half:])
        return np.concatenate([ax, bx]), np.concatenate([ay, by])
    bad = ~(np.isfinite(ox) & np.isfinite(oy)) | (np.abs(ox) > 1e15) | (np.abs(oy) > 1e15)
    ox[bad] = np.nan
    oy[bad] = np.nan
    return ox, oy


def _affine(t: Affine, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``t`` applied to arrays of points."""
    return t.a * xs + t.b * ys + t.c, t.d * xs + t.e * ys + t.f


@functools.lru_cache(maxsize=64)
def _edge_points(
    height: int, width: int, n: int = EDGE_POINTS, *, interior: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel ``(cols, rows)`` along the outline of a ``height`` x ``width`` box, plus a coarse interior grid.

    Cached (chunks mostly share a shape): the arrays are read-only.
    """
    cs = np.linspace(0.0, width, min(n, max(width, 1)) + 1)
    rs = np.linspace(0.0, height, min(n, max(height, 1)) + 1)
    inner_c = np.linspace(0.0, width, INTERIOR_POINTS + 2)[1:-1]
    inner_r = np.linspace(0.0, height, INTERIOR_POINTS + 2)[1:-1]
    gc, gr = np.meshgrid(inner_c, inner_r) if interior else (np.empty(0), np.empty(0))
    cols = np.concatenate([cs, cs, np.zeros_like(rs), np.full_like(rs, width), gc.ravel()])
    rows = np.concatenate([np.zeros_like(cs), np.full_like(cs, height), rs, rs, gr.ravel()])
    cols.setflags(write=False)
    rows.setflags(write=False)
    return cols, rows


def _require_crs(geobox: GeoBox, name: str) -> CRS:
    if geobox.crs is None:
        raise InvalidArgument(f"{name} has no CRS: {geobox!r}; reprojection needs one.")
    return geobox.crs


def footprint_bounds(geobox: GeoBox, crs: Any) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of ``geobox``'s outline transformed densely into ``crs``."""
    dst = crs if isinstance(crs, CRS) else CRS.from_user_input(crs)
    src = _require_crs(geobox, "geobox")
    if src == dst:
        return geobox.bounds
    cols, rows = _edge_points(*geobox.shape)
    x, y = _affine(geobox.transform, cols, rows)
    tx, ty = transform_points(src, dst, np.asarray(x), np.asarray(y))
    ok = np.isfinite(tx) & np.isfinite(ty)
    if not ok.any():
        raise InvalidArgument(f"{geobox!r} has no footprint in {dst.to_string()!r}: no point of it transforms.")
    return (float(tx[ok].min()), float(ty[ok].min()), float(tx[ok].max()), float(ty[ok].max()))


# --- snapped grids -----------------------------------------------------------------


def _parse_resolution(resolution: Any) -> tuple[float, float]:
    try:
        if isinstance(resolution, Sequence) and not isinstance(resolution, str):
            xres, yres = (abs(float(r)) for r in resolution)
        else:
            xres = yres = abs(float(resolution))
    except (TypeError, ValueError):
        raise InvalidArgument(f"resolution={resolution!r}: expected a positive number or (xres, yres).") from None
    if not (xres > 0 and yres > 0 and math.isfinite(xres) and math.isfinite(yres)):
        raise InvalidArgument(f"resolution={resolution!r}: expected a positive number or (xres, yres).")
    return xres, yres


def snap_bounds(bounds: Sequence[float], resolution: Any, *, anchor: str = "edge") -> tuple[tuple[int, int], Affine]:
    """``(shape, transform)`` of the north-up grid covering ``bounds`` with edges on whole multiples of the resolution.

    ``anchor="edge"`` puts cell edges on multiples of the resolution;
    ``"center"`` puts cell centres there (edges half a cell off).
    """
    if anchor not in ANCHORS:
        raise InvalidArgument(f"anchor={anchor!r}: expected one of {ANCHORS}.")
    xres, yres = _parse_resolution(resolution)
    left, bottom, right, top = (float(b) for b in bounds)
    if not all(math.isfinite(v) for v in (left, bottom, right, top)) or right < left or top < bottom:
        raise InvalidArgument(f"bounds={tuple(bounds)!r}: expected finite left <= right and bottom <= top.")
    shift = 0.5 if anchor == "center" else 0.0
    eps = 1e-9  # bounds a hair past a multiple (float noise) do not add a column
    c0 = math.floor(left / xres - shift + eps)
    c1 = max(math.ceil(right / xres - shift - eps), c0 + 1)
    r0 = math.floor(bottom / yres - shift + eps)
    r1 = max(math.ceil(top / yres - shift - eps), r0 + 1)
    transform = Affine(xres, 0.0, (c0 + shift) * xres, 0.0, -yres, (r1 + shift) * yres)
    return (r1 - r0, c1 - c0), transform


def from_bbox(
    bbox: Sequence[float], *, crs: Any, resolution: Any, bbox_crs: Any = "EPSG:4326", anchor: str = "edge"
) -> Grid:
    """``(shape, transform, crs)`` of the grid covering ``bbox``; see :meth:`GeoBox.from_bbox`."""
    from rasterio.errors import CRSError
    from rasterio.warp import transform_bounds

    if anchor not in ANCHORS:
        raise InvalidArgument(f"anchor={anchor!r}: expected one of {ANCHORS}.")
    try:
        left, bottom, right, top = (float(b) for b in bbox)
    except (TypeError, ValueError):
        raise InvalidArgument(f"bbox={bbox!r}: expected (left, bottom, right, top).") from None
    try:
        dst = CRS.from_user_input(crs)
        src = CRS.from_user_input(bbox_crs)
    except (CRSError, TypeError, ValueError) as err:
        raise InvalidArgument(f"crs={crs!r} or bbox_crs={bbox_crs!r} is not a CRS: {err}") from err
    if top < bottom or (right < left and not src.is_geographic):
        raise InvalidArgument(f"bbox={tuple(bbox)!r}: expected left < right and bottom < top.")
    if src != dst:
        try:
            left, bottom, right, top = transform_bounds(src, dst, left, bottom, right, top, densify_pts=101)
        except (CRSError, ValueError, RuntimeError, OSError) as err:
            raise InvalidArgument(f"bbox={tuple(bbox)!r} cannot be transformed to {dst.to_string()!r}: {err}") from err
    if right < left and dst.is_geographic:
        right += 360.0  # across the antimeridian: longitudes past 180
    shape, transform = snap_bounds((left, bottom, right, top), resolution, anchor=anchor)
    return shape, transform, dst


def to_crs(geobox: GeoBox, crs: Any, *, resolution: Any = None) -> Grid:
    """``(shape, transform, crs)`` of ``geobox``'s footprint as a grid in ``crs``; see :meth:`GeoBox.to_crs`."""
    from rasterio.errors import CRSError
    from rasterio.warp import calculate_default_transform

    src = _require_crs(geobox, "geobox")
    try:
        dst = CRS.from_user_input(crs)
    except (CRSError, TypeError, ValueError) as err:
        raise InvalidArgument(f"crs={crs!r} is not a CRS: {err}") from err
    if resolution is None:
        if src == dst:
            return geobox.shape, geobox.transform, src
        left, bottom, right, top = geobox.bounds
        t, _, _ = calculate_default_transform(
            src, dst, geobox.width, geobox.height, left=left, bottom=bottom, right=right, top=top
        )
        resolution = abs(t.a)
    bounds = footprint_bounds(geobox, dst)
    shape, transform = snap_bounds(bounds, resolution)
    return shape, transform, dst


# --- the input window of an output chunk ---------------------------------------------


def _pole_lines(src: CRS, dst: CRS) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """For each geographic pole: its points in ``dst`` and its image (a point or a line) in ``src``."""
    wgs84 = CRS.from_epsg(4326)
    out = []
    lons = np.linspace(-180.0, 180.0, 361)
    for lat in (90.0, -90.0):
        dx, dy = transform_points(wgs84, dst, np.array([0.0]), np.array([lat]))
        sx, sy = transform_points(wgs84, src, lons, np.full_like(lons, lat))
        out.append((dx, dy, sx, sy))
    return out


def source_windows(
    dst: GeoBox,
    src: GeoBox,
    row_edges: Sequence[int],
    col_edges: Sequence[int],
    *,
    resampling: str = "nearest",
) -> dict[tuple[int, int], tuple[int, int, int, int] | None]:
    """For each chunk ``(i, j)`` of ``dst`` (rows ``row_edges[i]:row_edges[i+1]``, cols likewise): the input window.

    A window is ``(row0, row1, col0, col1)`` of ``src``, clipped to it, wide
    enough for the resampling kernel; ``None`` when the chunk's footprint
    misses ``src``. All chunks' edge points are transformed in one call.
    """
    if not dst.is_axis_aligned:
        raise InvalidArgument(f"the target grid must be north-up (axis-aligned); got {dst!r}.")
    dst_crs = _require_crs(dst, "the target geobox")
    src_crs = _require_crs(src, "the input geobox")
    chunks = [(i, j) for i in range(len(row_edges) - 1) for j in range(len(col_edges) - 1)]
    pieces_c, pieces_r, owner = [], [], []
    for k, (i, j) in enumerate(chunks):
        r0, r1, c0, c1 = row_edges[i], row_edges[i + 1], col_edges[j], col_edges[j + 1]
        cols, rows = _edge_points(r1 - r0, c1 - c0)
        pieces_c.append(cols + c0)
        pieces_r.append(rows + r0)
        owner.append(np.full(cols.size, k))
    if not chunks:
        return {}
    cols = np.concatenate(pieces_c)
    rows = np.concatenate(pieces_r)
    who = np.concatenate(owner)
    x, y = _affine(dst.transform, cols, rows)
    sx, sy = transform_points(dst_crs, src_crs, np.asarray(x), np.asarray(y))
    inv = ~src.transform
    pc, pr = _affine(inv, sx, sy)
    pc, pr = np.asarray(pc, dtype="float64"), np.asarray(pr, dtype="float64")
    extra: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if dst_crs != src_crs:
        for dx, dy, lx, ly in _pole_lines(src_crs, dst_crs):
            if not (np.isfinite(dx[0]) and np.isfinite(dy[0])):
                continue
            pcol, prow = ~dst.transform @ (float(dx[0]), float(dy[0]))
            ok = np.isfinite(lx) & np.isfinite(ly)
            if not ok.any():
                continue
            lc, lr = _affine(inv, lx[ok], ly[ok])
            for k, (i, j) in enumerate(chunks):
                if (
                    row_edges[i] - 1 <= prow <= row_edges[i + 1] + 1
                    and col_edges[j] - 1 <= pcol <= col_edges[j + 1] + 1
                ):
                    extra[k] = (np.asarray(lc), np.asarray(lr))
    height, width = src.shape
    out: dict[tuple[int, int], tuple[int, int, int, int] | None] = {}
    order = np.argsort(who, kind="stable")
    starts = np.searchsorted(who[order], np.arange(len(chunks) + 1))
    for k, (i, j) in enumerate(chunks):
        idx = order[starts[k] : starts[k + 1]]
        c, r = pc[idx], pr[idx]
        if k in extra:
            c, r = np.concatenate([c, extra[k][0]]), np.concatenate([r, extra[k][1]])
        ok = np.isfinite(c) & np.isfinite(r)
        if not ok.any():
            out[(i, j)] = None
            continue
        c, r = c[ok], r[ok]
        cmin, cmax, rmin, rmax = float(c.min()), float(c.max()), float(r.min()), float(r.max())
        nrows, ncols = row_edges[i + 1] - row_edges[i], col_edges[j + 1] - col_edges[j]
        # input cells per output cell on each axis (GDAL scales kernels by axis, as XSCALE and YSCALE)
        pad_r = kernel_radius(resampling, (rmax - rmin) / max(nrows, 1))
        pad_c = kernel_radius(resampling, (cmax - cmin) / max(ncols, 1))
        w = (
            max(math.floor(rmin) - pad_r, 0),
            min(math.ceil(rmax) + pad_r, height),
            max(math.floor(cmin) - pad_c, 0),
            min(math.ceil(cmax) + pad_c, width),
        )
        out[(i, j)] = w if w[0] < w[1] and w[2] < w[3] else None
    return out


def warp_scale(dst: GeoBox, src: GeoBox) -> tuple[float, float]:
    """GDAL's kernel scale (``XSCALE``, ``YSCALE``: output cells per input cell) for warping ``src`` onto ``dst``.

    GDAL computes it for each warp from the source window of the warped
    extent (21 points per edge, clamped to the source), so each chunk of a
    lazy warp would get its own, and interpolating kernels widened by it
    would differ from chunk to chunk. Computed once here, as GDAL does for
    the whole warp, it is passed to every warp, eager or per chunk.
    """
    c, r = _edge_points(dst.height, dst.width, 20, interior=False)
    x, y = _affine(dst.transform, c, r)
    sx, sy = transform_points(_require_crs(dst, "the target geobox"), _require_crs(src, "the input geobox"), x, y)
    pc, pr = _affine(~src.transform, sx, sy)
    ok = np.isfinite(pc) & np.isfinite(pr)
    scales = []
    for coords, n_dst, n_src in ((pc[ok], dst.width, src.width), (pr[ok], dst.height, src.height)):
        if not coords.size:
            scales.append(1.0)
            continue
        lo, hi = float(coords.min()), float(coords.max())
        raw = max(0.0, min(n_src - int(max(0.0, lo)), hi - lo))
        scale = n_dst / raw if raw > 0 else 1.0
        if scale < 1.0:  # GDAL snaps a nearly whole ratio to it
            whole = int(1.0 / scale + 0.5)
            if abs(1.0 / scale - whole) < 0.05:
                scale = 1.0 / whole
        scales.append(scale)
    return scales[0], scales[1]


def source_window(dst: GeoBox, src: GeoBox, *, resampling: str = "nearest") -> tuple[int, int, int, int] | None:
    """The window ``(row0, row1, col0, col1)`` of ``src`` that ``dst`` (one chunk) needs, or ``None``."""
    return source_windows(dst, src, [0, dst.height], [0, dst.width], resampling=resampling)[(0, 0)]
