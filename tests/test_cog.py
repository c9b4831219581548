"""pyr's native COG tile reader (pyr/io/cog) against its oracle, GDAL: the same array, or a decline.

Every window the native path reads must equal what GDAL (rasterio) reads
from the same file; a file or window it does not handle must decline
(``read_native`` returns ``None``) so that GDAL reads it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.windows import Window

import pyr
from pyr.errors import GridMismatch, ReadError
from pyr.io.cog import read as cog_read
from pyr.io.cog.fetch import merge_ranges
from pyr.io.cog.layout import parse
from pyr.io.tiff import read_header, read_window, source_spec

pytest.importorskip("imagecodecs")

DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")
NATIVE_CODECS = ("deflate", "zstd", None)


def write(path: Path, data: np.ndarray, **options: object) -> Path:
    """A tiled GeoTIFF of ``data`` (band, y, x) written by GDAL with ``options``."""
    profile = {
        "driver": "GTiff",
        "count": data.shape[0],
        "height": data.shape[1],
        "width": data.shape[2],
        "dtype": str(data.dtype),
        "crs": "EPSG:32631",
        "transform": from_origin(500000, 4000000, 10, 10),
        "tiled": True,
        **options,
    }
    overviews = profile.pop("overviews", None)
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data)
    if overviews:
        with rasterio.open(path, "r+") as ds:
            ds.build_overviews(list(overviews), Resampling.nearest)
    return path


def native(path: Path, indexes: tuple[int, ...], window: tuple[int, int, int, int], overview: int | None = None):
    got = cog_read.read_native(source_spec(str(path), overview=overview), indexes, window, read_header)
    return None if got is None else got[0]


def gdal(path: Path, indexes: tuple[int, ...], window: tuple[int, int, int, int], overview: int | None = None):
    r0, r1, c0, c1 = window
    kwargs = {} if overview is None else {"overview_level": overview}
    with rasterio.open(path, **kwargs) as ds:
        return ds.read(list(indexes), window=Window(c0, r0, c1 - c0, r1 - r0))


def pixels(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random pixels over the dtype's whole range (NaN and infinities among floats), some smooth."""
    dt = np.dtype(dtype)
    if dt.kind == "f":
        a = rng.normal(0, 1e3, shape).astype(dt)
        a.flat[rng.integers(0, a.size, 3)] = [np.nan, np.inf, -np.inf]
        return a
    info = np.iinfo(dt)
    return rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, object], tuple[int, int, int], int | None, str]:
    dtype = draw(st.sampled_from(DTYPES))
    kind = np.dtype(dtype).kind
    options: dict[str, object] = {
        "blockxsize": draw(st.sampled_from((16, 32, 48))),
        "blockysize": draw(st.sampled_from((16, 32))),
        "interleave": draw(st.sampled_from(("pixel", "band"))),
    }
    codec = draw(st.sampled_from((*NATIVE_CODECS, "lzw")))
    if codec is not None:
        options["compress"] = codec
        options["predictor"] = draw(st.sampled_from((1, 2, 3) if kind == "f" else (1, 2)))
    if draw(st.booleans()):
        options["nodata"] = 0
    if draw(st.booleans()):
        options["bigtiff"] = "YES"
    if draw(st.booleans()):
        options["overviews"] = (2, 4)
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 90)), draw(st.integers(1, 90)))
    overview = draw(st.sampled_from((None, 0, 1))) if options.get("overviews") else None
    return options, shape, overview, dtype


@settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases(), data=st.data())
def test_native_equals_gdal_or_declines(tmp_path, case, data):
    options, shape, overview, dtype = case
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    path = write(tmp_path / f"p{rng.integers(1 << 60)}.tif", pixels(rng, dtype, shape), **options)
    spec = source_spec(str(path), overview=overview)
    header = read_header(spec)
    h, w = header.geobox.shape
    th, tw = header.block_shape
    chunk = (th, min(h, 3 * th), tw, min(w, 2 * tw)) if h > th and w > tw else (0, h, 0, w)
    for i in range(4):
        r0 = data.draw(st.integers(0, h - 1))
        c0 = data.draw(st.integers(0, w - 1))
        window = (r0, data.draw(st.integers(r0 + 1, h)), c0, data.draw(st.integers(c0 + 1, w)))
        if i == 0:  # a chunk of a lazy read: whole tiles, decoded in place when one band is read
            window = chunk
        indexes = tuple(data.draw(st.lists(st.integers(1, shape[0]), min_size=1, max_size=3)))
        got = native(path, indexes, window, overview)
        if options.get("compress") == "lzw":
            assert got is None
            continue
        assert got is not None, (options, overview)  # DEFLATE, ZSTD, none: the native path reads them
        np.testing.assert_array_equal(got, gdal(path, indexes, window, overview))
        assert got.dtype == np.dtype(dtype)


def test_real_files_native_equals_gdal(real_data):
    read_by_native = set()
    for path in sorted(real_data.rglob("*.tif")):
        try:
            header = read_header(source_spec(str(path)))
        except ReadError:
            continue  # refused by pyr (ground control points only)
        indexes = tuple(range(1, header.count + 1))
        for overview in (None, *range(len(header.overviews))):
            h, w = read_header(source_spec(str(path), overview=overview)).geobox.shape
            for window in ((0, h, 0, w), (h // 3, h, w // 5, w // 2 + 1), (h - 1, h, 0, 1)):
                got = native(path, indexes, window, overview)
                if got is not None:
                    np.testing.assert_array_equal(got, gdal(path, indexes, window, overview))
                    read_by_native.add(path.name)
    assert {"B04.tif", "SCL.tif", "B01.tif", "riotiler_cog.tif", "cog_scale.tif"} <= read_by_native
    assert "RGB.byte.tif" not in read_by_native  # strips: GDAL reads them


def test_reads_go_native_and_lazy_equals_eager(tmp_path):
    rng = np.random.default_rng(1)
    data = pixels(rng, "uint16", (2, 70, 50))
    path = write(tmp_path / "a.tif", data, blockxsize=16, blockysize=16, compress="zstd", predictor=2, nodata=0)
    spec = source_spec(str(path))
    assert cog_read.read_native(spec, (1, 2), (0, 70, 0, 50), read_header) is not None
    eager = pyr.read(path)
    lazy = pyr.read(path, chunks=32)
    np.testing.assert_array_equal(eager.data, data)
    np.testing.assert_array_equal(lazy.data.compute(), data)


def test_pyr_native_0_and_no_imagecodecs_read_with_gdal(tmp_path, monkeypatch):
    data = pixels(np.random.default_rng(2), "int16", (1, 40, 40))
    path = write(tmp_path / "a.tif", data, blockxsize=16, blockysize=16, compress="deflate")
    spec = source_spec(str(path))
    monkeypatch.setenv("PYR_NATIVE", "0")
    assert not cog_read.enabled()
    assert cog_read.read_native(spec, (1,), (0, 40, 0, 40), read_header) is None
    np.testing.assert_array_equal(read_window(spec, None, (1,), (0, 40, 0, 40)), data)
    monkeypatch.delenv("PYR_NATIVE")
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # import imagecodecs raises ImportError
    monkeypatch.setattr(cog_read, "_available", None)
    assert not cog_read.enabled()
    np.testing.assert_array_equal(pyr.read(path).data, data)


def test_corrupt_tile_is_a_read_error_naming_file_and_window(tmp_path):
    data = pixels(np.random.default_rng(3), "uint16", (1, 64, 64))
    path = write(tmp_path / "bad.tif", data, blockxsize=32, blockysize=32, compress="deflate")
    fd = os.open(path, os.O_RDONLY)
    layout = parse(lambda offset, size: os.pread(fd, size, offset), None)
    os.close(fd)
    assert layout is not None
    offset, count = int(layout.offsets[3]), int(layout.counts[3])  # tile (1, 1)
    raw = bytearray(path.read_bytes())
    raw[offset : offset + count] = b"\x00garbage" * (count // 8) + b"x" * (count % 8)
    path.write_bytes(bytes(raw))
    spec = source_spec(str(path))
    with pytest.raises(ReadError, match=r"bad\.tif.*rows 0:64, cols 0:64.*TIFFReadEncodedTile"):
        read_window(spec, None, (1,), (0, 64, 0, 64))
    np.testing.assert_array_equal(read_window(spec, None, (1,), (0, 32, 0, 32)), data[:, :32, :32])


def test_truncated_file_is_a_read_error(tmp_path):
    data = pixels(np.random.default_rng(4), "float32", (1, 64, 64))
    path = write(tmp_path / "cut.tif", data, blockxsize=32, blockysize=32, compress="deflate")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 100])  # the last tile loses its end
    with pytest.raises(ReadError, match=r"cut\.tif.*rows 32:64"):
        read_window(source_spec(str(path)), None, (1,), (32, 64, 32, 64))


def test_replaced_file_is_read_again_and_checked_against_its_plan(tmp_path):
    path = tmp_path / "a.tif"
    first = pixels(np.random.default_rng(5), "uint8", (1, 40, 40))
    write(path, first, blockxsize=16, blockysize=16, compress="deflate")
    lazy = pyr.read(path, chunks=16)
    np.testing.assert_array_equal(pyr.read(path).data, first)
    second = pixels(np.random.default_rng(6), "uint8", (1, 40, 40))
    os.unlink(path)
    write(path, second, blockxsize=16, blockysize=16, compress="deflate")
    np.testing.assert_array_equal(lazy.data.compute(), second)
    os.unlink(path)
    write(path, second[:, :32], blockxsize=16, blockysize=16, compress="deflate")
    with pytest.raises(GridMismatch, match=r"a\.tif"):
        lazy.data.compute()


def test_sparse_tiles_decline(tmp_path):
    path = write(
        tmp_path / "sparse.tif",
        np.full((1, 64, 64), 7, "uint16"),
        blockxsize=32,
        blockysize=32,
        compress="deflate",
        nodata=7,
        sparse_ok=True,
    )
    assert native(path, (1,), (0, 64, 0, 64)) is None
    np.testing.assert_array_equal(pyr.read(path).data, gdal(path, (1,), (0, 64, 0, 64)))


def test_merge_ranges_never_makes_one_huge_request():
    ranges = [(i * 300_000, 300_000) for i in range(20)]  # 6 MB of adjacent tiles
    merged = merge_ranges(ranges)
    assert sorted(i for _, _, members in merged for i in members) == list(range(20))
    assert all(size <= 2**20 for _, size, _ in merged)
    assert len(merged) == 7  # three tiles (900 KB) a request
    assert len(merge_ranges([(i * 2_000_000, 2_000_000) for i in range(3)])) == 3  # a big tile is one request
    assert merge_ranges([(0, 10), (10 + 20000, 10)]) == [(0, 10, [0]), (20010, 10, [1])]


def test_own_tags_agree_with_gdals_header_only_when_they_give_it_exactly(real_data):
    import attrs
    from affine import Affine

    from pyr.io.cog.georef import agrees

    agreed = set()
    for path in sorted(real_data.rglob("*.tif")):
        for overview in (None, 0, 1):
            spec = source_spec(str(path), overview=overview)
            try:
                header = read_header(spec)
            except ReadError:
                continue
            fd = os.open(path, os.O_RDONLY)
            try:
                layout = parse(lambda offset, size, fd=fd: os.pread(fd, size, offset), overview)
            finally:
                os.close(fd)
            if layout is None or not agrees(layout, header):
                continue
            agreed.add(path.name)
            gb = header.geobox
            for other in (
                attrs.evolve(header, nodata=None if header.nodata is not None else 0),
                attrs.evolve(header, geobox=attrs.evolve(gb, transform=Affine.translation(1, 0) @ gb.transform)),
                attrs.evolve(header, geobox=attrs.evolve(gb, crs="EPSG:4326")),
                attrs.evolve(header, dtype="float64"),
            ):
                assert not agrees(layout, other), (path.name, overview, other)
    assert {"B04.tif", "SCL.tif", "B11.tif"} <= agreed
    assert "riotiler_cog.tif" not in agreed  # pixel-is-point: GDAL's header is read
