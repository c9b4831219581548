"""The pixels of the synthetic Sentinel-2-like scenes of :mod:`pyr.testing.synth` (numpy only).

A scene is a patchwork of rotated agricultural parcels whose red reflectance
follows a per-field phenology curve, with forest, towns, lakes and a river,
fine texture, per-date clouds with their shadows and a diagonal swath edge of
nodata (0), rendered strip by strip from coarse random grids upsampled
bilinearly. The pixels depend only on ``(size, date_index, seed)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from pyr.errors import InvalidArgument

__all__ = ["CRS", "ORIGIN", "RESOLUTION", "scene_array", "transform_of"]

CRS = "EPSG:32631"
ORIGIN = (600000.0, 5700000.0)  # top-left corner of MGRS tile 31UFT (as a real L2A tile)
RESOLUTION = 10.0
STRIP = 256  # rows rendered at once; fixed so pixels never depend on how a scene is cut


def transform_of(size: int) -> Any:
    """The affine transform of a synthetic tile (top-left at :data:`ORIGIN`, 10 m)."""
    from affine import Affine

    del size
    return Affine(RESOLUTION, 0.0, ORIGIN[0], 0.0, -RESOLUTION, ORIGIN[1])


# ----------------------------------------------------------------------------- noise


def _smooth_grid(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """White noise low-passed by a Gaussian (FFT), standardised to mean 0, std 1."""
    white = rng.standard_normal(shape)
    if sigma > 0:
        fy = np.fft.fftfreq(shape[0])[:, None]
        fx = np.fft.rfftfreq(shape[1])[None, :]
        gain = np.exp(-2 * (np.pi * sigma) ** 2 * (fy**2 + fx**2))
        white = np.fft.irfft2(np.fft.rfft2(white) * gain, s=shape)
    white -= white.mean()
    white /= white.std() or 1.0
    return white.astype(np.float32)


def _bilinear(grid: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``grid`` sampled bilinearly at the outer product of (sorted) coordinates ``y`` and ``x``."""
    n0, n1 = grid.shape
    y = np.clip(y, 0, n0 - 1.000001)
    x = np.clip(x, 0, n1 - 1.000001)
    iy, ix = y.astype(np.intp), x.astype(np.intp)
    fy = (y - iy).astype(np.float32)[:, None]
    fx = (x - ix).astype(np.float32)[None, :]
    a0 = int(iy[0])
    sub = grid[a0 : int(iy[-1]) + 2]  # only the coarse rows these output rows need
    left = sub[:, ix]
    cols = sub[:, ix + 1]
    cols -= left
    cols *= fx
    cols += left
    top = cols[iy - a0]
    out = cols[iy - a0 + 1]
    out -= top
    out *= fy
    out += top
    return out


class _Field:
    """A coarse grid (one value every ``step`` pixels) sampled bilinearly at any pixel."""

    def __init__(self, grid: np.ndarray, step: float) -> None:
        self.grid = grid
        self.step = step

    @classmethod
    def octaves(cls, rng: np.random.Generator, size: int, parts: Sequence[tuple[float, float, float]]) -> _Field:
        """The weighted sum of smoothed noises ``(step, sigma, weight)``, on the finest step's grid."""
        fine = min(step for step, _, _ in parts)
        n = int(size / fine) + 3
        total = np.zeros((n, n), np.float32)
        nodes = np.arange(n, dtype=np.float64)
        for step, sigma, weight in parts:
            m = int(size / step) + 3
            field = cls(_smooth_grid(rng, (m, m), sigma), step)
            coords = nodes * fine / step  # where this grid's nodes fall on the coarser grid
            total += weight * (field.grid if step == fine else _bilinear(field.grid, coords, coords))
        return cls(total, fine)

    def sample(self, r0: int, r1: int, size: int, dy: float = 0.0, dx: float = 0.0) -> np.ndarray:
        """Values at rows ``r0:r1`` and all ``size`` columns (shifted by ``dy, dx`` pixels)."""
        y = (np.arange(r0, r1, dtype=np.float64) + 0.5 + dy) / self.step
        x = (np.arange(size, dtype=np.float64) + 0.5 + dx) / self.step
        return _bilinear(self.grid, y, x)


# ----------------------------------------------------------------------------- the scene


def _scale(size: int) -> float:
    """Shrinks landscape and cloud features on small tiles so that a small demo still shows them."""
    return float(np.clip(size / 2048, 0.25, 1.0))


class _Landscape:
    """Everything that does not change between dates."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        rng = np.random.default_rng([seed, 1])
        k = _scale(size)
        self.cover = _Field.octaves(rng, size, [(384 * k, 1.5, 1.0), (96 * k, 1.0, 0.45)])  # forest where high
        self.lakes = _Field.octaves(rng, size, [(160 * k, 1.5, 1.0), (40 * k, 1.0, 0.25)])  # water where low
        self.town = _Field.octaves(rng, size, [(256 * k, 1.0, 1.0), (32 * k, 1.0, 0.3)])  # built-up where high
        self.texture = _Field.octaves(rng, size, [(6, 0.6, 0.06), (24, 0.8, 0.05)])  # relative, std ~0.08
        self.region = _Field.octaves(rng, size, [(1536 * k, 1.0, 0.2), (512 * k, 1.0, 0.1)])  # soils, practices
        self.noise = rng.integers(-14, 15, size=(509, 1031), dtype=np.int16).astype(np.float32)
        # parcels: a rotated grid of variable-width columns, each cut in variable-height fields
        self.angle = rng.uniform(-0.5, 0.5)
        self.umin = -size  # u = x cos + y sin lies within [-size, 2 size)
        cuts = np.cumsum(rng.integers(18, 70, size=3 * size // 18 + 2)) - size
        self.ucol = np.searchsorted(cuts, np.arange(-size, 2 * size), side="right").astype(np.int32)
        dist = np.minimum(
            np.arange(-size, 2 * size) - np.concatenate([[-(10**9)], cuts])[self.ucol],
            np.concatenate([cuts, [10**9]])[self.ucol] - np.arange(-size, 2 * size),
        )
        self.udist = np.minimum(dist, 100).astype(np.float32)  # pixels to the nearest column cut
        ncol = len(cuts) + 1
        self.vheight = rng.uniform(14, 60, size=ncol).astype(np.float32)
        self.voff = (rng.uniform(0, 60, size=ncol) + 2 * size).astype(np.float32)
        self.nrow = nrow = int(4 * size / 14) + 4
        # per field: base red reflectance, seasonal amplitude and phase, by kind (crop, grass, bare)
        shape = (ncol, nrow)
        kind = rng.choice(3, size=shape, p=[0.62, 0.28, 0.1])
        lo_hi = {"base": [(450, 900), (350, 650), (1000, 1900)], "amp": [(150, 450), (40, 150), (0, 120)]}
        base = np.choose(kind, [rng.uniform(lo, hi, shape) for lo, hi in lo_hi["base"]])
        amp = np.choose(kind, [rng.uniform(lo, hi, shape) for lo, hi in lo_hi["amp"]])
        self.fbase = base.astype(np.float32).ravel()
        self.famp = amp.astype(np.float32).ravel()
        self.fphase = rng.uniform(0, 2 * np.pi, ncol * nrow).astype(np.float32)
        # a river: its row as a smooth function of the column, meandering a few times across the tile
        coarse = _smooth_grid(rng, (1, 64), 2.0)[0]
        cols = np.arange(size, dtype=np.float64)
        river = size * rng.uniform(0.3, 0.7) + size * 0.06 * np.interp(cols * 48 / size, np.arange(64), coarse)
        slope = np.gradient(river)
        self.river_y = river.astype(np.float32)[None, :]
        self.river_w = (rng.uniform(3, 6) * np.sqrt(1 + slope**2)).astype(np.float32)[None, :]  # half-width
        # swath edge: the lower-left corner below row = a * col + size + b is outside the orbit
        self.edge = (rng.uniform(1.4, 2.2), -size * rng.uniform(0.15, 0.3))

    def fields(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
        """Field index and a field-boundary weight (1 on hedges and tracks) for rows ``r0:r1``."""
        c, s = np.float32(np.cos(self.angle)), np.float32(np.sin(self.angle))
        y = np.arange(r0, r1, dtype=np.float32)[:, None]
        x = np.arange(self.size, dtype=np.float32)[None, :]
        iu = (x * c + y * s).astype(np.intp)
        iu -= self.umin
        col = self.ucol[iu]
        vv = y * c - x * s
        vv += self.voff[col]
        vv /= self.vheight[col]
        row = vv.astype(np.intp)
        vv -= row  # fraction of the field's height
        edge = np.minimum(vv, 1 - vv)
        edge *= self.vheight[col]
        np.minimum(edge, self.udist[iu], out=edge)
        hedge = np.clip(1.5 - edge, 0, 1, out=edge)
        row %= self.nrow
        row += col * self.nrow
        return row, hedge

    def reflectance(self, r0: int, r1: int, season: float) -> np.ndarray:
        """Cloud-free red reflectance * 10000 for rows ``r0:r1`` at ``season`` (radians)."""
        size = self.size
        idx, hedge = self.fields(r0, r1)
        values = self.fbase + self.famp * np.sin(self.fphase + np.float32(season))
        red: np.ndarray = values[idx]
        region = self.region.sample(r0, r1, size)
        region += 1
        red *= region
        tex = self.texture.sample(r0, r1, size)
        red += hedge * (0.45 * (260 - red))  # hedges and tracks between fields
        forest = np.clip((self.cover.sample(r0, r1, size) - 0.55) * 3, 0, 1)
        red += forest * (230 - red)
        town = np.clip((self.town.sample(r0, r1, size) - 1.8) * 2.5, 0, 1)
        red += town * (1100 * (1 + 4 * tex) - red)
        water = np.clip((-self.lakes.sample(r0, r1, size) - 1.75) * 6, 0, 1)
        rows = np.arange(r0, r1, dtype=np.float32)[:, None]
        river = np.clip(self.river_w - np.abs(rows - self.river_y), 0, 1)
        np.maximum(water, river, out=water)
        red += water * (130 - red)
        tex += 1
        red *= tex
        return red


class _Date:
    """One acquisition: season, clouds, shadows, cloud masking."""

    def __init__(self, land: _Landscape, date_index: int) -> None:
        self.land = land
        self.index = date_index
        rng = np.random.default_rng([land.seed, 2, date_index])
        self.season = 2 * np.pi * date_index * 5 / 120  # 5 days apart on a ~120-day cycle
        k = _scale(land.size)
        self.cloud = _Field.octaves(rng, land.size, [(512 * k, 1.2, 1.0), (128 * k, 1.0, 0.55), (24, 0.8, 0.25)])
        self.threshold = rng.uniform(0.7, 2.2) if date_index % 3 != 1 else rng.uniform(2.4, 3.2)
        self.shadow = (rng.uniform(20, 60), rng.uniform(-60, 60))
        self.masked = date_index % 4 == 2  # this date had its clouds masked to nodata
        self.brightness = np.float32(rng.uniform(0.96, 1.04))
        self.offset = (int(rng.integers(509)), int(rng.integers(1031)))

    def _cloud(self, r0: int, r1: int, dy: float = 0.0, dx: float = 0.0) -> np.ndarray:
        c = self.cloud.sample(r0, r1, self.land.size, dy, dx)
        c -= self.threshold
        c *= 1.6
        return np.clip(c, 0, 1, out=c)

    def strip(self, r0: int, r1: int) -> np.ndarray:
        """The uint16 pixels of rows ``r0:r1``."""
        land, size = self.land, self.land.size
        red = land.reflectance(r0, r1, self.season)
        red *= self.brightness
        oy, ox = self.offset
        noise = land.noise[(np.arange(r0, r1) + oy) % 509][:, (np.arange(size) + ox) % 1031]
        red += noise
        dy, dx = self.shadow
        shade = self._cloud(r0, r1, -dy, -dx)
        shade *= -0.8
        shade += 1
        np.maximum(shade, 0.45, out=shade)
        red *= shade
        alpha = self._cloud(r0, r1)
        opac = np.minimum(alpha * 2.2, 1)
        red += opac * (2800 + 6200 * alpha - red)
        out = np.clip(red, 1, 65535, out=red).astype(np.uint16)
        if self.masked:
            out[opac > 0.35] = 0
        a, b = land.edge
        rows = np.arange(r0, r1)[:, None]
        cols = np.arange(size)[None, :]
        out[rows > a * cols + size + b] = 0  # lower-left corner outside the swath
        return out


def _check(size: int, date_index: int, seed: int) -> None:
    for name, v, lo in (("size", size, 16), ("date_index", date_index, 0), ("seed", seed, 0)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < lo:
            raise InvalidArgument(f"{name}={v!r}: expected an int >= {lo}.")


def _strips(size: int) -> list[tuple[int, int]]:
    return [(r, min(r + STRIP, size)) for r in range(0, size, STRIP)]


def scene_array(size: int, date_index: int, seed: int = 0) -> np.ndarray:
    """The ``(size, size)`` uint16 pixels of date ``date_index`` (0 is nodata).

    Parameters
    ----------
    size
        Rows and columns of the tile (10980 for a real 10 m Sentinel-2 tile).
    date_index
        Which acquisition of the series (0, 1, ...): season and clouds follow.
    seed
        The landscape; the same ``(size, date_index, seed)`` gives the same pixels.

    Examples
    --------
    >>> import numpy as np
    >>> a, b = scene_array(128, 0, seed=3), scene_array(128, 0, seed=3)
    >>> bool(np.array_equal(a, b)), a.shape
    (True, (128, 128))
    """
    _check(size, date_index, seed)
    date = _Date(_Landscape(size, seed), date_index)
    out = np.empty((size, size), np.uint16)
    for r0, r1 in _strips(size):
        out[r0:r1] = date.strip(r0, r1)
    return out
