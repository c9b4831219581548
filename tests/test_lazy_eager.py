"""The rule: every public operation gives the same answer lazily and eagerly, under every chunking.

Lazy in, lazy out; eager in, eager out; and the lazy result computes to the
eager one bit for bit (these operations are element-wise or, for ``depth``
kernels, fixed-order neighbourhood sums). Each property draws a raster, a
chunking (or two), runs the operation both ways and compares with
``assert_raster_equal``. Expected values of the laws come from numpy or plain
rasterio, never from pyr.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import attrs
import dask.array as da
import numpy as np
import pytest
import rasterio
from _tiffs import write_tif
from hypothesis import given, settings
from hypothesis import strategies as st

import pyr
from pyr import Cube, GeoBox, Raster
from pyr.ops.reduce import HOWS
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import chunkings, cubes, dtypes, geoboxes, nodatas, rasters


def lazy_copy(obj: Raster | Cube, chunks: tuple[int, ...]) -> Raster | Cube:
    """The same value with dask data in ``chunks``."""
    data = obj.data.compute() if obj.is_lazy else obj.data
    return attrs.evolve(obj, data=da.from_array(data, chunks=chunks))


def eager_copy(obj: Raster | Cube) -> Raster | Cube:
    return attrs.evolve(obj, data=obj.data.compute()) if obj.is_lazy else obj


def check_same(op, obj: Raster | Cube, chunks_a: tuple[int, ...], chunks_b: tuple[int, ...]) -> Raster | Cube:
    """``op`` eagerly == lazily under two chunkings; laziness kept; returns the eager result."""
    eager_in = eager_copy(obj)
    expected = op(eager_in)
    assert not expected.is_lazy
    for chunks in (chunks_a, chunks_b):
        with raise_if_dask_computes():
            got = op(lazy_copy(obj, chunks))
        assert got.is_lazy
        assert got.chunks[-2:] == lazy_copy(obj, chunks).chunks[-2:]  # spatial chunks kept
        assert_raster_equal(got, expected)
    return expected


# --- read ----------------------------------------------------------------------


@st.composite
def tiff_cases(draw):
    dtype = draw(dtypes())
    gb = draw(geoboxes(max_side=48, crs="EPSG:32631"))
    count = draw(st.integers(1, 3))
    nodata = draw(nodatas(dtype))
    tiled = draw(st.booleans())
    block = (
        (draw(st.sampled_from([16, 32])), draw(st.sampled_from([16, 32]))) if tiled else (draw(st.integers(1, 9)), 0)
    )
    seed = draw(st.integers(0, 2**32 - 1))
    chunks = draw(st.one_of(st.just("auto"), st.integers(1, 50), st.tuples(st.integers(1, 50), st.integers(1, 50))))
    bands = draw(st.one_of(st.none(), st.lists(st.integers(0, count - 1), min_size=1, max_size=count, unique=True)))
    return dtype, gb, count, nodata, tiled, block, seed, chunks, bands


def _values(dtype, shape, seed, nodata):
    rng = np.random.default_rng(seed)
    if dtype.kind == "f":
        data = rng.normal(0, 1000, shape).astype(dtype)
    else:
        info = np.iinfo(dtype)
        data = rng.integers(max(info.min, -(2**40)), min(info.max, 2**40), shape, dtype=dtype, endpoint=True)
    if nodata is not None:
        data[rng.random(shape) < 0.2] = nodata
    return data


@given(tiff_cases())
def test_read_lazy_equals_eager_equals_rasterio(case):
    dtype, gb, count, nodata, tiled, block, seed, chunks, bands = case
    data = _values(dtype, (count, *gb.shape), seed, nodata)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_tif(Path(tmp) / "case.tif", data, geobox=gb, nodata=nodata, tiled=tiled, block=block)
        with rasterio.open(path) as src:
            plain = src.read()
        idx = list(range(count)) if bands is None else bands
        np.testing.assert_array_equal(plain, data)
        eager = pyr.read(path, bands=bands)
        with raise_if_dask_computes():
            lazy = pyr.read(path, bands=bands, chunks=chunks)
        assert lazy.is_lazy
        assert not eager.is_lazy
        assert eager.geobox == gb
        assert eager.bands == tuple(str(i + 1) for i in idx)
        if nodata is None:
            assert eager.nodata is None
        else:
            assert eager.nodata == nodata or (math.isnan(eager.nodata) and math.isnan(nodata))
        assert_raster_equal(lazy, eager)
        np.testing.assert_array_equal(eager.data, plain[idx])
        if isinstance(chunks, int):
            assert lazy.chunks[1][0] == min(chunks, gb.height)
        # Reading then slicing equals reading the sliced grid (window read with rasterio).
        r0, c0 = gb.height // 3, gb.width // 4
        sub = gb[r0:, c0:]
        with rasterio.open(path) as src:
            win = rasterio.windows.Window(c0, r0, sub.width, sub.height)
            assert src.window_transform(win) == sub.transform
            np.testing.assert_array_equal(lazy.data[:, r0:, c0:].compute(), src.read([i + 1 for i in idx], window=win))


# --- rescale -------------------------------------------------------------------


rescale_options = st.fixed_dictionaries(
    {},
    optional={
        "scale": st.sampled_from([1.0, 1e-4, -2.5, 0.5]),
        "offset": st.sampled_from([0.0, -0.1, 1000.0]),
        "clip": st.sampled_from([None, (0.0, 1.0), (-1e3, 1e3)]),
        "dtype": st.sampled_from(["float32", "float64"]),
    },
)


@given(rasters(lazy=False, max_side=24), rescale_options, st.data())
def test_rescale_lazy_equals_eager(r, options, data):
    op = pyr.rescale(**options)
    expected = check_same(op, r, data.draw(chunkings(r.shape)), data.draw(chunkings(r.shape)))
    assert math.isnan(expected.nodata)
    assert expected.dtype == np.dtype(options.get("dtype", "float32"))


@given(cubes(lazy=False, max_side=12, max_times=4), rescale_options, st.data())
def test_rescale_cube_lazy_equals_eager(c, options, data):
    def chunks():
        return (data.draw(st.integers(1, c.ntimes)), c.count, *data.draw(chunkings(c.shape))[-2:])

    check_same(pyr.rescale(**options), c, chunks(), chunks())


@given(rasters(lazy=False))
def test_rescale_scale_one_keeps_values_as_float(r):
    out = pyr.rescale(r)
    assert out.dtype == np.dtype("float32")
    expected = r.data.astype("float32")
    if r.nodata is not None and not (isinstance(r.nodata, float) and math.isnan(r.nodata)):
        expected[r.data == r.nodata] = np.nan
    np.testing.assert_array_equal(out.data, expected)
    assert out.geobox == r.geobox
    assert out.bands == r.bands
    wide = pyr.rescale(r, dtype="float64")
    expected64 = r.data.astype("float64")
    expected64[np.isnan(expected)] = np.nan
    np.testing.assert_array_equal(wide.data, expected64)


# --- map_blocks ----------------------------------------------------------------


def mean3x3(block: np.ndarray) -> np.ndarray:
    """3x3 mean over the cells that exist (edges average fewer), numpy only."""
    b = block.astype("float64")
    padded = np.pad(b, ((0, 0), (1, 1), (1, 1)))
    ones = np.pad(np.ones_like(b), ((0, 0), (1, 1), (1, 1)))
    total = np.zeros_like(b)
    count = np.zeros_like(b)
    h, w = b.shape[-2:]
    for dy in range(3):
        for dx in range(3):
            total += padded[:, dy : dy + h, dx : dx + w]
            count += ones[:, dy : dy + h, dx : dx + w]
    return total / count


def mean3x3_reference(values: np.ndarray) -> np.ndarray:
    """The same mean, cell by cell (independent of the kernel above)."""
    out = np.empty(values.shape, "float64")
    _, h, w = values.shape
    for i in range(h):
        for j in range(w):
            window = values[:, max(i - 1, 0) : i + 2, max(j - 1, 0) : j + 2].astype("float64")
            out[:, i, j] = window.reshape(values.shape[0], -1).mean(axis=1)
    return out


@given(rasters(lazy=False, max_side=16, dtype="int16"), st.data())
def test_map_blocks_one_input(r, data):
    def kernel(b):
        return (b.astype("int32") * 3 - 7).astype("int32")

    op = pyr.map_blocks(kernel, dtype="int32")
    expected = check_same(op, r, data.draw(chunkings(r.shape)), data.draw(chunkings(r.shape)))
    np.testing.assert_array_equal(expected.data, r.data.astype("int32") * 3 - 7)


@given(rasters(lazy=False, max_side=12, max_bands=2, dtype="float32"), st.data())
def test_map_blocks_depth_mean3x3(r, data):
    op = pyr.map_blocks(mean3x3, dtype="float64", depth=1)
    expected = check_same(op, r, data.draw(chunkings(r.shape)), data.draw(chunkings(r.shape)))
    np.testing.assert_allclose(expected.data, mean3x3_reference(r.data), rtol=1e-12)


@given(rasters(lazy=False, max_side=12, max_bands=1, dtype="uint8"), st.integers(1, 3), st.data())
def test_map_blocks_depth_larger_than_chunks(r, depth, data):
    # Halo wider than the smallest chunk: still the eager answer.
    def box_sum(block):
        h, w = block.shape[-2:]
        padded = np.pad(block.astype("int64"), ((0, 0), (depth, depth), (depth, depth)))
        out = np.zeros(block.shape, "int64")
        for dy in range(2 * depth + 1):
            for dx in range(2 * depth + 1):
                out += padded[:, dy : dy + h, dx : dx + w]
        return out

    small = (r.count, data.draw(st.integers(1, 2)), data.draw(st.integers(1, 2)))
    check_same(pyr.map_blocks(box_sum, dtype="int64", depth=depth), r, small, data.draw(chunkings(r.shape)))


@given(st.data())
def test_map_blocks_several_inputs_any_chunking(data):
    gb = data.draw(geoboxes(max_side=20))
    a = data.draw(rasters(lazy=False, geobox=gb, dtype="uint16"))
    b = data.draw(
        rasters(lazy=False, geobox=gb, dtype="float32", max_bands=a.count).filter(lambda x: x.count == a.count)
    )

    def ndi(x, y):
        x = x.astype("float64")
        y = y.astype("float64")
        return np.stack([(x - y).sum(axis=0), (x * y).max(axis=0)])

    expected = pyr.map_blocks(ndi, a, b, dtype="float64", bands=("diff", "prod"))
    assert not expected.is_lazy
    assert expected.bands == ("diff", "prod")
    # Each input chunked its own way, or eager next to lazy: all align to the first lazy one.
    ca, cb = data.draw(chunkings(a.shape)), data.draw(chunkings(b.shape))
    for left, right in ((lazy_copy(a, ca), lazy_copy(b, cb)), (a, lazy_copy(b, cb)), (lazy_copy(a, ca), b)):
        with raise_if_dask_computes():
            got = pyr.map_blocks(ndi, left, right, dtype="float64", bands=("diff", "prod"))
        assert got.is_lazy
        assert_raster_equal(got, expected)


def test_map_blocks_inputs_with_different_band_counts():
    # Each input keeps its own bands whole when aligned (a 1-band input beside a 3-band one used to fail lazily).
    gb = GeoBox.from_bounds((0, 0, 50, 40), 10, "EPSG:32631")
    a = Raster(np.arange(60, dtype="int32").reshape(3, 4, 5), gb)
    b = Raster(np.arange(20, dtype="int32").reshape(1, 4, 5), gb)
    expected = pyr.map_blocks(lambda x, y: x - y, a, b)
    np.testing.assert_array_equal(expected.data, a.data - b.data)
    for left, right in ((lazy_copy(a, (3, 2, 3)), lazy_copy(b, (1, 3, 2))), (a, lazy_copy(b, (1, 3, 2)))):
        assert_raster_equal(pyr.map_blocks(lambda x, y: x - y, left, right, dtype="int32"), expected)


@given(cubes(lazy=False, max_side=10, dtype="float32"), st.data())
def test_map_blocks_cube_with_depth(c, data):
    def chunks():
        return (data.draw(st.integers(1, c.ntimes)), c.count, *data.draw(chunkings(c.shape))[-2:])

    op = pyr.map_blocks(mean3x3, dtype="float64", depth=1)
    expected = check_same(op, c, chunks(), chunks())
    for t in range(c.ntimes):
        np.testing.assert_allclose(expected.data[t], mean3x3_reference(c.data[t]), rtol=1e-12)


# --- zarr round trip -----------------------------------------------------------


@settings(max_examples=10)
@given(rasters(lazy=False, max_side=20), st.sampled_from([2, 3]), st.data())
def test_write_zarr_lazy_equals_eager(r, zarr_format, data):
    # The round-trip law itself (read_zarr(write_zarr(r)) == r) is in test_zarr.py.
    with tempfile.TemporaryDirectory() as tmp:
        pyr.write_zarr(r, Path(tmp) / "eager.zarr", zarr_format=zarr_format)
        lazy = lazy_copy(r, data.draw(chunkings(r.shape)))
        with raise_if_dask_computes():
            delayed = pyr.write_zarr(lazy, Path(tmp) / "lazy.zarr", zarr_format=zarr_format, compute=False)
        delayed.compute()
        from_lazy = pyr.read_zarr(Path(tmp) / "lazy.zarr", chunks=None)
        assert_raster_equal(from_lazy, pyr.read_zarr(Path(tmp) / "eager.zarr", chunks=None))
        assert_raster_equal(from_lazy, r)


def test_results_do_not_depend_on_chunking_examples():
    # A fixed, readable instance of the rule (the properties above draw many).
    gb = GeoBox.from_bounds((0, 0, 70, 50), 10, "EPSG:32631")
    values = np.arange(35, dtype="uint16").reshape(1, 5, 7)
    r = Raster(values, gb, nodata=0)
    results = [
        pyr.map_blocks(mean3x3, pyr.rescale(lazy_copy(r, (1, cy, cx)), scale=0.5), depth=1, dtype="float64")
        for cy, cx in ((1, 1), (2, 3), (5, 7), (4, 2))
    ]
    expected = pyr.map_blocks(mean3x3, pyr.rescale(r, scale=0.5), depth=1, dtype="float64")
    for got in results:
        assert_raster_equal(got, expected)
    assert np.isnan(expected.data[0, 0, 0])  # nodata made NaN, and NaN spreads to its neighbours
    assert not np.isnan(expected.data[0, 4, 6])


@pytest.mark.parametrize("op", [pyr.rescale(scale=2.0), pyr.map_blocks(np.negative)])
def test_lazy_in_lazy_out_eager_in_eager_out(op):
    gb = GeoBox.from_bounds((0, 0, 40, 40), 10, "EPSG:32631")
    r = Raster(np.ones((1, 4, 4), "float32"), gb)
    assert not op(r).is_lazy
    assert op(lazy_copy(r, (1, 2, 2))).is_lazy


# --- the table: every public operation on Raster and Cube, lazy == eager --------------------


@attrs.frozen
class Case:
    """One public operation: ``op(value, scratch_dir)``, on which kind of value, and what laziness it keeps.

    ``lazy_out``: ``True`` when lazy in must give lazy out, ``False`` when the result is eager
    either way (``compute``, and round trips through a file read back eagerly).
    """

    name: str
    op: Any
    kinds: tuple[str, ...] = ("raster", "cube")
    lazy_out: bool = True


def _zarr_round_trip(obj: Raster | Cube, scratch: Path) -> Raster | Cube:
    pyr.write_zarr(obj, scratch / "store.zarr")
    return pyr.read_zarr(scratch / "store.zarr", chunks=None)


def _tiff_round_trip(obj: Raster, scratch: Path) -> Raster:
    pyr.write_tiff(obj, scratch / "out.tif")
    return pyr.read(scratch / "out.tif")


def _box_sum(block: np.ndarray) -> np.ndarray:
    """Sum over the 5x5 window that exists around each cell (a depth-2 neighbourhood kernel)."""
    b = block.astype("float64")
    padded = np.pad(b, ((0, 0), (2, 2), (2, 2)))
    h, w = b.shape[-2:]
    return sum(padded[:, dy : dy + h, dx : dx + w] for dy in range(5) for dx in range(5))


CASES = [
    Case("rescale", lambda o, _: pyr.rescale(o, scale=0.25, offset=-3.0, clip=(-1e4, 1e4))),
    Case("map_blocks", lambda o, _: pyr.map_blocks(lambda b: b[::-1] * 2, o, dtype=o.dtype)),
    Case("map_blocks depth=2", lambda o, _: pyr.map_blocks(_box_sum, o, dtype="float64", depth=2)),
    Case(
        "map_blocks two inputs",
        lambda o, _: pyr.map_blocks(lambda a, b: a.astype("float64") - b, o, o, dtype="float64"),
    ),
    Case("mask", lambda o, _: _masked(o)),
    Case("stack", lambda o, _: pyr.stack([o, o], times=["2024-06-12", "2024-07-12"]), kinds=("raster",)),
    *(Case(f"reduce_time {how}", lambda o, _, how=how: pyr.reduce_time(o, how), kinds=("cube",)) for how in HOWS),
    Case("reduce_time callable", lambda o, _: pyr.reduce_time(o, _spread), kinds=("cube",)),
    Case("compute", lambda o, _: pyr.compute(o), lazy_out=False),
    Case("to/from xarray", lambda o, _: pyr.from_xarray(pyr.to_xarray(o))),
    Case("write/read_zarr", _zarr_round_trip, lazy_out=False),
    Case("write_tiff/read", _tiff_round_trip, kinds=("raster",), lazy_out=False),
]


def _masked(obj: Raster | Cube) -> Raster | Cube:
    """``mask`` by a one-band qa computed from the value itself (lazy when it is), values and bits, dilated."""
    if obj.dtype.kind != "f" and obj.nodata is None:
        obj = attrs.evolve(obj, nodata=0)  # mask needs a nodata value for integers
    qa = pyr.map_blocks(
        lambda b: (np.nan_to_num(b[:1].astype("float64")) % 16).astype("uint8"), obj, dtype="uint8", bands=["qa"]
    )
    return pyr.mask(obj, qa, values=[3, 7], bits=[3], dilate=1)


def _spread(a: np.ndarray) -> np.ndarray:
    return np.fmax.reduce(a, axis=0) - np.fmin.reduce(a, axis=0)


@st.composite
def values_and_chunkings(draw, kind: str):
    """An eager raster or cube (on a projected grid, so every writer takes it) and two chunkings of it."""
    gb = draw(geoboxes(max_side=18, crs="EPSG:32631"))
    if kind == "raster":
        obj = draw(rasters(lazy=False, geobox=gb, max_bands=2))
        return obj, [draw(chunkings(obj.shape)) for _ in range(2)]
    obj = draw(cubes(lazy=False, max_side=14, max_times=4))
    return obj, [(draw(st.integers(1, obj.ntimes)), *draw(chunkings(obj.shape))[1:]) for _ in range(2)]


@pytest.mark.parametrize(
    ("case", "kind"),
    [(case, kind) for case in CASES for kind in case.kinds],
    ids=lambda v: v.name if isinstance(v, Case) else v,
)
@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_every_public_operation_lazy_equals_eager_under_any_chunking(case, kind, data):
    """The rule, as one table: each operation on an eager value and on two lazy chunkings of it agree."""
    obj, chunk_choices = data.draw(values_and_chunkings(kind))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        (scratch / "eager").mkdir()
        expected = case.op(obj, scratch / "eager")
        assert not expected.is_lazy
        for i, chunks in enumerate(chunk_choices):
            (scratch / f"lazy{i}").mkdir()
            lazy = lazy_copy(obj, chunks)
            if case.lazy_out:
                with raise_if_dask_computes():
                    got = case.op(lazy, scratch / f"lazy{i}")
                assert got.is_lazy
            else:
                got = case.op(lazy, scratch / f"lazy{i}")
            assert_raster_equal(got, expected)


def test_one_module_decides_lazy_or_eager():
    """Only pyr/_lazy.py tells dask arrays from numpy ones; everything else asks it."""
    import re

    root = Path(pyr.__file__).parent
    probe = re.compile(r"^def is_(dask|lazy)\(|__module__\.startswith\(\"dask|isinstance\([^)]*da\.Array", re.MULTILINE)
    deciders = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if probe.search(p.read_text()))
    assert deciders == ["_lazy.py"]
    import pyr.raster as values_module

    assert not hasattr(values_module, "is_dask")
