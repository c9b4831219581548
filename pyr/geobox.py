"""``GeoBox``: a raster grid as a small immutable value.

A grid is its shape ``(rows, cols)``, an affine transform from pixel to CRS
coordinates (GDAL convention: pixel corners, ``(col, row)`` order) and a CRS.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import attrs
import numpy as np
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import CRSError

from pyr import _gridding
from pyr.errors import InvalidArgument

__all__ = ["GeoBox"]


def _to_shape(value: Any) -> tuple[int, int]:
    try:
        rows, cols = (int(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"GeoBox shape={value!r}: expected (rows, cols).") from None
    if rows < 0 or cols < 0:
        raise InvalidArgument(f"GeoBox shape={value!r}: sizes must be >= 0.")
    return (rows, cols)


def _to_affine(value: Any) -> Affine:
    if isinstance(value, Affine):
        return value
    try:
        items = [float(v) for v in value]
    except (TypeError, ValueError):
        raise InvalidArgument(f"GeoBox transform={value!r}: expected an affine.Affine.") from None
    if len(items) == 6:
        return Affine(*items)
    if len(items) == 9:
        return Affine(*items[:6])
    raise InvalidArgument(f"GeoBox transform={value!r}: expected 6 coefficients.")


def _to_crs(value: Any) -> CRS | None:
    if value is None:
        return None
    if isinstance(value, CRS):
        return value
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as err:
        raise InvalidArgument(f"GeoBox crs={value!r} is not a CRS: {err}") from err


def _crs_key(crs: CRS | None) -> str | None:
    """What identifies a CRS for equality and hashing: ``"EPSG:<code>"`` or a canonical WKT2.

    GDAL spells one CRS in several WKT forms (WKT1 or WKT2, a datum or a
    datum ensemble), and which one a dataset reports can depend on what its
    thread opened before; comparing the text would call those different.
    The key is the authority code when PROJ identifies the CRS exactly
    (confidence 100), else the CRS's WKT2 (2019), computed once per spelling.
    """
    return None if crs is None else _canonical(crs.to_wkt())


@functools.lru_cache(maxsize=1024)
def _canonical(wkt: str) -> str:
    crs = CRS.from_wkt(wkt)
    try:
        authority = crs.to_authority(confidence_threshold=100)
    except CRSError:
        authority = None
    if authority is not None:
        return f"{authority[0]}:{authority[1]}"
    return str(crs.to_wkt(version="WKT2_2019"))


@attrs.frozen(repr=False)
class GeoBox:
    """A raster grid: ``shape`` ``(rows, cols)``, an affine ``transform`` and a ``crs``.

    Examples
    --------
    >>> gb = GeoBox.from_bounds((0, 0, 100, 50), 10, "EPSG:32631")
    >>> gb.shape, gb.resolution, gb.epsg
    ((5, 10), (10.0, -10.0), 32631)
    >>> gb[1:3, 2:4].bounds
    (20.0, 20.0, 40.0, 40.0)
    """

    shape: tuple[int, int] = attrs.field(converter=_to_shape)
    transform: Affine = attrs.field(converter=_to_affine)
    crs: CRS | None = attrs.field(default=None, converter=_to_crs, eq=_crs_key)

    def __attrs_post_init__(self) -> None:
        t = self.transform
        if not all(math.isfinite(v) for v in t[:6]):
            raise InvalidArgument(f"GeoBox transform {tuple(t)[:6]} has non-finite values.")
        if t.determinant == 0:
            raise InvalidArgument(f"GeoBox transform {tuple(t)[:6]} is degenerate.")

    # -- construction -----------------------------------------------------------
    @classmethod
    def from_bounds(
        cls,
        bounds: Sequence[float],
        resolution: float | tuple[float, float],
        crs: Any = None,
    ) -> GeoBox:
        """A north-up grid covering ``bounds`` (left, bottom, right, top).

        ``resolution`` is a positive cell size or ``(xres, yres)``; the signs
        are taken from their absolute values (x grows east, y grows south).
        Bounds that are not whole multiples of the resolution are expanded.
        """
        left, bottom, right, top = (float(b) for b in bounds)
        if isinstance(resolution, Sequence):
            xres, yres = (abs(float(r)) for r in resolution)
        else:
            xres = yres = abs(float(resolution))
        if xres == 0 or yres == 0:
            raise InvalidArgument(f"resolution={resolution!r} must be non-zero.")
        if right <= left or top <= bottom:
            raise InvalidArgument(f"bounds={tuple(bounds)!r}: expected left < right and bottom < top.")
        cols = math.ceil((right - left) / xres - 1e-9)
        rows = math.ceil((top - bottom) / yres - 1e-9)
        return cls((rows, cols), Affine(xres, 0.0, left, 0.0, -yres, top), crs)

    # -- properties -------------------------------------------------------------
    @property
    def height(self) -> int:
        """Number of rows."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.shape[1]

    @property
    def is_axis_aligned(self) -> bool:
        """Whether the transform has no rotation or shear."""
        return self.transform.b == 0 and self.transform.d == 0

    @property
    def resolution(self) -> tuple[float, float]:
        """Signed ``(xres, yres)``; ``yres`` is negative for north-up grids."""
        self._require_axis_aligned("resolution")
        return (self.transform.a, self.transform.e)

    @property
    def cell_size(self) -> float:
        """The (positive) side of a square, axis-aligned pixel."""
        xres, yres = self.resolution
        if abs(xres) != abs(yres):
            raise InvalidArgument(
                f"cell_size is only defined for square pixels; this grid has {abs(xres)} x {abs(yres)}."
            )
        return abs(xres)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(left, bottom, right, top)`` of the grid's outer edge."""
        rows, cols = self.shape
        corners = [self.transform @ (c, r) for c, r in ((0, 0), (cols, 0), (0, rows), (cols, rows))]
        xs = [p[0] for p in corners]
        ys = [p[1] for p in corners]
        return (min(xs), min(ys), max(xs), max(ys))

    @property
    def epsg(self) -> int | None:
        """The EPSG code of the CRS, or ``None``."""
        if self.crs is None:
            return None
        code = self.crs.to_epsg()
        return None if code is None else int(code)

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """``(y, x)``: 1-D float64 coordinates of cell centres."""
        self._require_axis_aligned("coords()")
        t = self.transform
        y = t.f + t.e * (np.arange(self.height, dtype="float64") + 0.5)
        x = t.c + t.a * (np.arange(self.width, dtype="float64") + 0.5)
        return y, x

    # -- slicing ----------------------------------------------------------------
    def __getitem__(self, index: Any) -> GeoBox:
        """``geobox[rows, cols]`` with step-1 slices: the sub-grid."""
        if not isinstance(index, tuple):
            index = (index, slice(None))
        if len(index) != 2 or not all(isinstance(s, slice) for s in index):
            raise InvalidArgument(f"GeoBox index {index!r}: expected [row_slice, col_slice].")
        (r0, r1, rstep), (c0, c1, cstep) = (s.indices(n) for s, n in zip(index, self.shape, strict=True))
        if rstep != 1 or cstep != 1:
            raise InvalidArgument(f"GeoBox index {index!r}: slices with a step are not supported.")
        rows, cols = max(r1 - r0, 0), max(c1 - c0, 0)
        return GeoBox((rows, cols), self.transform @ Affine.translation(c0, r0), self.crs)

    def _require_axis_aligned(self, what: str) -> None:
        if not self.is_axis_aligned:
            raise InvalidArgument(
                f"{what} needs an axis-aligned grid; this one is rotated or sheared "
                f"(transform {tuple(self.transform)[:6]})."
            )

    # -- other grids (pyr._gridding) ---------------------------------------------
    @classmethod
    def from_bbox(
        cls,
        bbox: Sequence[float],
        *,
        crs: Any,
        resolution: float | tuple[float, float],
        bbox_crs: Any = "EPSG:4326",
        anchor: str = "edge",
    ) -> GeoBox:
        """The north-up grid in ``crs`` at ``resolution`` covering ``bbox`` (given in ``bbox_crs``).

        ``bbox`` is ``(left, bottom, right, top)``; its outline is transformed
        with densified edges. The grid's edges are whole multiples of the
        resolution (``anchor="edge"``), or its cell centres are
        (``anchor="center"``), so grids built for different areas line up.
        A geographic ``bbox`` with ``left > right`` crosses the antimeridian.

        Examples
        --------
        >>> gb = GeoBox.from_bbox((5.0, 45.0, 5.1, 45.1), crs="EPSG:32631", resolution=30)
        >>> gb.shape, gb.transform.c % 30, gb.transform.f % 30
        ((378, 273), 0.0, 0.0)
        """
        shape, transform, dst = _gridding.from_bbox(
            bbox, crs=crs, resolution=resolution, bbox_crs=bbox_crs, anchor=anchor
        )
        return cls(shape, transform, dst)

    def to_crs(self, crs: Any, *, resolution: float | tuple[float, float] | None = None) -> GeoBox:
        """The north-up grid in ``crs`` covering this grid's footprint, edges snapped as :meth:`from_bbox`.

        Without ``resolution``, the cell size GDAL suggests for warping this
        grid into ``crs`` (``rasterio.warp.calculate_default_transform``): about
        the same area per cell.

        Examples
        --------
        >>> utm = GeoBox.from_bounds((600000, 5000000, 603000, 5003000), 30, "EPSG:32631")
        >>> wgs = utm.to_crs("EPSG:4326")
        >>> wgs.epsg, round(wgs.resolution[0] * 111_000)
        (4326, 36)
        >>> utm.to_crs("EPSG:3857", resolution=100).resolution
        (100.0, -100.0)
        """
        shape, transform, dst = _gridding.to_crs(self, crs, resolution=resolution)
        return GeoBox(shape, transform, dst)

    # -- protocols --------------------------------------------------------------
    def __dask_tokenize__(self) -> object:
        return ("pyr.GeoBox", self.shape, tuple(self.transform)[:6], _crs_key(self.crs))

    def __repr__(self) -> str:
        if self.crs is None:
            crs = "None"
        elif self.epsg is not None:
            crs = f"EPSG:{self.epsg}"
        else:
            crs = repr(self.crs.to_string()[:40])
        t = self.transform
        if self.is_axis_aligned:
            grid = f"res=({t.a:.12g}, {t.e:.12g}), origin=({t.c:.12g}, {t.f:.12g})"
        else:
            grid = f"transform={tuple(round(v, 6) for v in tuple(t)[:6])}"
        return f"GeoBox(shape={self.shape}, {grid}, crs={crs})"
