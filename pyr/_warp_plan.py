"""What each output chunk of a warp needs: the plan shared by lazy reprojection and warped reads.

:func:`plan_warps` lists, for every chunk of a target grid, its grid and the
window of the source it needs (``None`` if it misses the source);
:func:`pick_overview` chooses the coarsest overview of a file that still has
the output's resolution, and :func:`overview_geobox` gives that overview's
grid. A lazy reprojection slices the windows from in-memory chunks; a warped
read reads them from the file (or its overview) and warps them the same way,
with :class:`pyr.ops.reproject.Warp`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from affine import Affine

from pyr import _gridding
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox

__all__ = ["ChunkWarp", "edges", "overview_geobox", "pick_overview", "plan_warps"]


class ChunkWarp(NamedTuple):
    """One output chunk: its (row, column) among the chunks, its grid, the source window it needs or ``None``."""

    position: tuple[int, int]
    grid: GeoBox
    window: tuple[int, int, int, int] | None

    def source_grid(self, src: GeoBox) -> GeoBox | None:
        """The grid of the window of ``src`` (its transform is the one to warp the window from)."""
        if self.window is None:
            return None
        r0, r1, c0, c1 = self.window
        return src[r0:r1, c0:c1]


def edges(sizes: Sequence[int]) -> list[int]:
    """``[0, s0, s0 + s1, ...]``: the offsets where chunks of ``sizes`` start, and the total."""
    out = [0]
    for s in sizes:
        out.append(out[-1] + int(s))
    return out


def plan_warps(
    dst: GeoBox, src: GeoBox, ychunks: Sequence[int], xchunks: Sequence[int], *, resampling: str = "nearest"
) -> list[ChunkWarp]:
    """Every chunk of ``dst`` (rows ``ychunks``, columns ``xchunks``) with the window of ``src`` it needs.

    Examples
    --------
    >>> src = GeoBox.from_bounds((0, 0, 100, 100), 10, "EPSG:32631")
    >>> dst = GeoBox.from_bounds((50, 0, 250, 100), 20, "EPSG:32631")
    >>> [(c.position, c.window) for c in plan_warps(dst, src, [5], [5, 5])]
    [((0, 0), (0, 10, 2, 10)), ((0, 1), None)]
    """
    rows, cols = edges(ychunks), edges(xchunks)
    if rows[-1] != dst.height or cols[-1] != dst.width:
        raise InvalidArgument(f"chunks {tuple(ychunks)} x {tuple(xchunks)} do not tile the grid of shape {dst.shape}.")
    windows = _gridding.source_windows(dst, src, rows, cols, resampling=resampling)
    return [
        ChunkWarp((i, j), dst[rows[i] : rows[i + 1], cols[j] : cols[j + 1]], win) for (i, j), win in windows.items()
    ]


def pick_overview(factors: Sequence[int], scale: tuple[float, float]) -> int | None:
    """The index in ``factors`` of the coarsest overview still at least as fine as the output, or ``None``.

    ``factors`` are the overview decimations (2, 4, 8, ...); ``scale`` is
    output cells per input cell on each axis (:func:`pyr._gridding.warp_scale`):
    an overview of factor ``f`` has the output's resolution or finer while
    ``f <= 1 / scale`` on both axes.

    Examples
    --------
    >>> pick_overview([2, 4, 8], (0.3, 0.3)), pick_overview([2, 4, 8], (1.0, 1.0))
    (0, None)
    """
    limit = 1.0 / max(scale)
    best: int | None = None
    for k, f in enumerate(factors):
        if f <= limit * (1 + 1e-9) and (best is None or f > factors[best]):
            best = k
    return best


def overview_geobox(src: GeoBox, shape: tuple[int, int]) -> GeoBox:
    """The grid of an overview of ``src`` with ``shape`` (GDAL scales the transform by the size ratio).

    Examples
    --------
    >>> src = GeoBox.from_bounds((0, 0, 100, 50), 10, "EPSG:32631")
    >>> overview_geobox(src, (3, 5)).transform.a, overview_geobox(src, (3, 5)).transform.e
    (20.0, -16.666666666666668)
    """
    rows, cols = shape
    if rows <= 0 or cols <= 0:
        raise InvalidArgument(f"overview shape {shape!r}: expected positive sizes.")
    return GeoBox(shape, src.transform @ Affine.scale(src.width / cols, src.height / rows), src.crs)
