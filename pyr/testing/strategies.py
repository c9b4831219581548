"""Hypothesis strategies for pyr values: geoboxes, rasters, cubes, chunkings.

Use them to test code built on pyr::

    from hypothesis import given
    from pyr.testing.strategies import rasters

    @given(rasters(lazy=True))
    def test_mine(r): ...
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from affine import Affine
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from pyr._imports import ensure
from pyr.cube import Cube
from pyr.geobox import GeoBox
from pyr.raster import Raster

__all__ = ["chunkings", "cube_splits", "cubes", "dtypes", "gappy_cubes", "geoboxes", "nodatas", "rasters"]

DTYPES = ("int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "float32", "float64")
CRSS = ("EPSG:32631", "EPSG:32629", "EPSG:3857", "EPSG:4326", "EPSG:3035", None)


def dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    """The pixel dtypes pyr supports (int8..float64)."""
    return st.sampled_from(DTYPES).map(np.dtype)


@st.composite
def geoboxes(
    draw: st.DrawFn,
    *,
    max_side: int = 40,
    min_side: int = 1,
    crs: Any = None,
    square: bool | None = None,
) -> GeoBox:
    """North-up geoboxes: odd sizes, projected and geographic CRSs, square or not."""
    rows = draw(st.integers(min_side, max_side))
    cols = draw(st.integers(min_side, max_side))
    crs_ = draw(st.sampled_from(CRSS)) if crs is None else crs
    geographic = crs_ == "EPSG:4326"
    if geographic:
        xres = draw(st.sampled_from([0.25, 0.01, 1 / 3600]))
        left = draw(st.floats(-170, 100).map(lambda v: round(v, 2)))
        top = draw(st.floats(-50, 80).map(lambda v: round(v, 2)))
    else:
        xres = draw(st.sampled_from([10.0, 20.0, 30.0, 60.0, 600.079]))
        left = float(draw(st.integers(-500, 800)) * 1000)
        top = float(draw(st.integers(-10000, 10000)) * 1000)
    is_square = draw(st.booleans()) if square is None else square
    yres = xres if is_square else xres * draw(st.sampled_from([0.5, 1.5, 1.001277]))
    return GeoBox((rows, cols), Affine(xres, 0.0, left, 0.0, -yres, top), crs_)


@st.composite
def nodatas(draw: st.DrawFn, dtype: np.dtype[Any]) -> float | int | None:
    """``None``, a value representable in ``dtype``, or NaN (floats only).

    Integer dtypes get 0 and their extremes, except 64-bit integers, whose
    extremes GDAL cannot keep in a GeoTIFF nodata tag (it stores a double as
    text): they get ``±(2**53 - 1)``, the largest values that survive.
    """
    dtype = np.dtype(dtype)
    options: list[Any] = [None]
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        if dtype.itemsize == 8:
            big = 2**53 - 1
            options += [0, big] + ([-big] if dtype.kind == "i" else [])
        else:
            options += [0, int(info.max), int(info.min)]
    else:
        options += [math.nan, -9999.0, 0.0]
    value: float | int | None = draw(st.sampled_from(options))
    return value


def _elements(dtype: np.dtype[Any]) -> st.SearchStrategy[Any]:
    if dtype.kind == "f":
        return st.floats(-1e6, 1e6, width=32 if dtype.itemsize == 4 else 64, allow_nan=False)
    info = np.iinfo(dtype)
    return st.integers(max(int(info.min), -1_000_000), min(int(info.max), 1_000_000))


@st.composite
def chunkings(draw: st.DrawFn, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A regular chunk shape for the last two axes of ``shape`` (others whole)."""
    ys = draw(st.integers(1, max(shape[-2], 1)))
    xs = draw(st.integers(1, max(shape[-1], 1)))
    return (*shape[:-2], ys, xs)


def _fill_nodata(draw: st.DrawFn, data: np.ndarray, nodata: float | int | None) -> np.ndarray:
    if nodata is None:
        return data
    mask = draw(hnp.arrays(np.bool_, data.shape, elements=st.booleans()))
    data = data.copy()
    data[mask] = nodata
    return data


@st.composite
def rasters(
    draw: st.DrawFn,
    *,
    lazy: bool | None = None,
    dtype: Any = None,
    max_side: int = 40,
    max_bands: int = 4,
    geobox: GeoBox | None = None,
) -> Raster:
    """Rasters of 1..``max_bands`` bands with random values, nodata and (if lazy) chunks."""
    gb = draw(geoboxes(max_side=max_side)) if geobox is None else geobox
    dt = draw(dtypes()) if dtype is None else np.dtype(dtype)
    count = draw(st.integers(1, max_bands))
    nodata = draw(nodatas(dt))
    data = draw(hnp.arrays(dt, (count, *gb.shape), elements=_elements(dt)))
    data = _fill_nodata(draw, data, nodata)
    is_lazy = draw(st.booleans()) if lazy is None else lazy
    if is_lazy:
        ensure("dask.array")
        import dask.array as da

        data = da.from_array(data, chunks=draw(chunkings(data.shape)))
    names = draw(st.sampled_from([None, tuple(f"B{i:02d}" for i in range(1, count + 1))]))
    return Raster(data, gb, nodata=nodata, bands=names)


@st.composite
def cubes(
    draw: st.DrawFn,
    *,
    lazy: bool | None = None,
    dtype: Any = None,
    max_side: int = 24,
    max_bands: int = 2,
    max_times: int = 6,
    nodata_fraction: float | None = None,
) -> Cube:
    """Cubes with random values, nodata masks, times and (if lazy) chunks one date deep."""
    gb = draw(geoboxes(max_side=max_side))
    dt = draw(dtypes()) if dtype is None else np.dtype(dtype)
    ntimes = draw(st.integers(1, max_times))
    count = draw(st.integers(1, max_bands))
    nodata = draw(nodatas(dt))
    data = draw(hnp.arrays(dt, (ntimes, count, *gb.shape), elements=_elements(dt)))
    data = _fill_nodata(draw, data, nodata)
    start = np.datetime64("2020-01-01T00:00:00", "s")
    offsets = sorted(draw(st.sets(st.integers(0, 3650), min_size=ntimes, max_size=ntimes)))
    times = start + np.array(offsets, dtype="timedelta64[D]")
    is_lazy = draw(st.booleans()) if lazy is None else lazy
    if is_lazy:
        ensure("dask.array")
        import dask.array as da

        spatial = draw(chunkings(gb.shape))
        data = da.from_array(data, chunks=(1, count, *spatial))
    return Cube(data, gb, nodata=nodata, times=times)


# --- cube strategies for time reductions and appends ------------------------------


@st.composite
def gappy_cubes(
    draw: st.DrawFn,
    *,
    lazy: bool | None = None,
    dtype: Any = None,
    max_side: int = 16,
    max_bands: int = 2,
    max_times: int = 6,
) -> Cube:
    """Cubes with many missing cells: random nodata masks, NaN in floats, cells empty at every date.

    Lazy cubes get random spatial chunks and random (regular) time chunks,
    not only one date per chunk.
    """
    cube = draw(cubes(lazy=False, dtype=dtype, max_side=max_side, max_bands=max_bands, max_times=max_times))
    data = np.array(cube.data)
    if data.dtype.kind == "f":
        nan_mask = draw(hnp.arrays(np.bool_, data.shape, elements=st.booleans()))
        data[nan_mask] = np.nan
    missing: Any = cube.nodata
    if missing is None and data.dtype.kind == "f":
        missing = np.nan
    if missing is not None and data.size:
        empty = draw(hnp.arrays(np.bool_, data.shape[-2:], elements=st.booleans()))
        data[..., empty] = missing  # cells with no valid date at all
    is_lazy = draw(st.booleans()) if lazy is None else lazy
    if is_lazy:
        ensure("dask.array")
        import dask.array as da

        tchunk = draw(st.integers(1, max(cube.ntimes, 1)))
        spatial = draw(chunkings(cube.geobox.shape))
        data = da.from_array(data, chunks=(tchunk, draw(st.integers(1, cube.count)), *spatial))
    return Cube(data, cube.geobox, nodata=cube.nodata, bands=cube.bands, times=cube.times)


@st.composite
def cube_splits(draw: st.DrawFn, cube: Cube) -> int:
    """A position splitting ``cube``'s dates into a stored part and an appended part (both non-empty)."""
    return int(draw(st.integers(1, max(cube.ntimes - 1, 1))))
