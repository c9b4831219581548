"""``GeoBox``: a grid as a small immutable value."""

from __future__ import annotations

import pickle

import attrs
import cloudpickle
import numpy as np
import pytest
from affine import Affine
from dask.base import tokenize
from hypothesis import given
from hypothesis import strategies as st
from rasterio.crs import CRS

from pyr import GeoBox, InvalidArgument
from pyr.testing.strategies import geoboxes

UTM = "EPSG:32631"
ROTATED = Affine(10.0, 2.0, 1000.0, 1.5, -10.0, 5000.0)


def test_construction_normalises_inputs():
    gb = GeoBox([5, 7], (10, 0, 100, 0, -20, 900), 32631)
    assert gb.shape == (5, 7)
    assert isinstance(gb.shape[0], int)
    assert gb.transform == Affine(10, 0, 100, 0, -20, 900)
    assert isinstance(gb.crs, CRS)
    assert gb.epsg == 32631
    assert (gb.height, gb.width) == (5, 7)
    assert GeoBox((1, 1), Affine.identity(), None).crs is None


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"shape": (1, 2, 3), "transform": Affine.identity()}, "shape"),
        ({"shape": (-1, 2), "transform": Affine.identity()}, "shape"),
        ({"shape": "ab", "transform": Affine.identity()}, "shape"),
        ({"shape": (1, 2), "transform": "nope"}, "transform"),
        ({"shape": (1, 2), "transform": (1, 2, 3)}, "transform"),
        ({"shape": (1, 2), "transform": Affine(0, 0, 0, 0, 0, 0)}, "degenerate"),
        ({"shape": (1, 2), "transform": Affine(float("nan"), 0, 0, 0, -1, 0)}, "non-finite"),
        ({"shape": (1, 2), "transform": Affine.identity(), "crs": "not a crs"}, "crs"),
    ],
)
def test_construction_rejects_bad_input(kwargs, names):
    with pytest.raises(InvalidArgument, match=names):
        GeoBox(**kwargs)


def test_frozen_and_slotted():
    gb = GeoBox((2, 3), Affine(1, 0, 0, 0, -1, 0), UTM)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        gb.shape = (1, 1)  # type: ignore[misc]
    assert not hasattr(gb, "__dict__")
    moved = attrs.evolve(gb, shape=(4, 4))
    assert moved.shape == (4, 4)
    assert gb.shape == (2, 3)
    with pytest.raises(InvalidArgument):
        attrs.evolve(gb, transform=Affine(0, 0, 0, 0, 0, 0))


def test_from_bounds_exact_and_expanded():
    gb = GeoBox.from_bounds((100, 200, 400, 300), 10, UTM)
    assert gb.shape == (10, 30)
    assert gb.bounds == (100.0, 200.0, 400.0, 300.0)
    assert gb.resolution == (10.0, -10.0)
    # Not a whole multiple: expanded to cover the bounds (right and bottom grow).
    gb2 = GeoBox.from_bounds((0, 0, 25, 15), (10, 4), UTM)
    assert gb2.shape == (4, 3)
    left, bottom, right, top = gb2.bounds
    assert (left, top) == (0.0, 15.0)
    assert right >= 25
    assert bottom <= 0
    # Signs of the resolution are ignored: always north-up.
    assert GeoBox.from_bounds((0, 0, 10, 10), (-1, -2)).resolution == (1.0, -2.0)


@pytest.mark.parametrize(
    ("bounds", "res", "match"),
    [((0, 0, 10, 10), 0, "resolution"), ((10, 0, 0, 10), 1, "bounds"), ((0, 10, 10, 0), 1, "bounds")],
)
def test_from_bounds_rejects(bounds, res, match):
    with pytest.raises(InvalidArgument, match=match):
        GeoBox.from_bounds(bounds, res)


def test_bounds_north_up_and_south_up():
    north = GeoBox((3, 4), Affine(2, 0, 10, 0, -5, 100), UTM)
    assert north.bounds == (10.0, 85.0, 18.0, 100.0)
    south = GeoBox((3, 4), Affine(2, 0, 10, 0, 5, 85), UTM)
    assert south.bounds == (10.0, 85.0, 18.0, 100.0)
    assert south.resolution == (2.0, 5.0)
    y, _ = south.coords()
    np.testing.assert_array_equal(y, [87.5, 92.5, 97.5])
    # East-to-west x is represented too.
    west = GeoBox((1, 2), Affine(-3, 0, 10, 0, -1, 0), UTM)
    assert west.bounds == (4.0, -1.0, 10.0, 0.0)


def test_resolution_and_cell_size():
    gb = GeoBox((3, 4), Affine(30, 0, 0, 0, -30, 0), UTM)
    assert gb.resolution == (30.0, -30.0)
    assert gb.cell_size == 30.0
    nonsquare = GeoBox((3, 4), Affine(600.079, 0, 0, 0, -600.855, 0), UTM)
    assert nonsquare.resolution == (600.079, -600.855)
    with pytest.raises(InvalidArgument, match="square"):
        _ = nonsquare.cell_size


def test_epsg():
    assert GeoBox((1, 1), Affine(1, 0, 0, 0, -1, 0), "EPSG:4326").epsg == 4326
    assert GeoBox((1, 1), Affine(1, 0, 0, 0, -1, 0), None).epsg is None
    custom = "+proj=tmerc +lat_0=0 +lon_0=15.5 +k=0.9991 +x_0=123 +y_0=0 +ellps=GRS80 +units=m +no_defs"
    gb = GeoBox((1, 1), Affine(1, 0, 0, 0, -1, 0), custom)
    assert gb.crs is not None
    assert gb.epsg is None


def test_coords_are_cell_centres():
    gb = GeoBox((2, 3), Affine(10, 0, 100, 0, -20, 500), UTM)
    y, x = gb.coords()
    assert y.dtype == x.dtype == np.float64
    np.testing.assert_array_equal(y, [490.0, 470.0])
    np.testing.assert_array_equal(x, [105.0, 115.0, 125.0])
    empty = GeoBox((0, 0), Affine(1, 0, 0, 0, -1, 0))
    assert [len(c) for c in empty.coords()] == [0, 0]


def test_slicing_shifts_transform():
    gb = GeoBox((10, 20), Affine(10, 0, 100, 0, -10, 500), UTM)
    sub = gb[2:5, 3:7]
    assert sub.shape == (3, 4)
    assert sub.transform == Affine(10, 0, 130, 0, -10, 480)
    assert sub.crs == gb.crs
    assert gb[2:5].shape == (3, 20)
    assert gb[-3:, :-5].shape == (3, 15)
    assert gb[-3:, :-5].transform.f == 500 - 7 * 10
    assert gb[8:2, :].shape == (0, 20)
    assert gb[:, 100:].shape == (10, 0)
    with pytest.raises(InvalidArgument, match="step"):
        gb[::2, :]
    with pytest.raises(InvalidArgument, match="slice"):
        gb[1, 2]


@given(geoboxes(), st.data())
def test_slicing_agrees_with_coords(gb, data):
    r0 = data.draw(st.integers(0, gb.height - 1))
    r1 = data.draw(st.integers(r0 + 1, gb.height))
    c0 = data.draw(st.integers(0, gb.width - 1))
    c1 = data.draw(st.integers(c0 + 1, gb.width))
    y, x = gb.coords()
    sy, sx = gb[r0:r1, c0:c1].coords()
    np.testing.assert_allclose(sy, y[r0:r1], rtol=1e-12)
    np.testing.assert_allclose(sx, x[c0:c1], rtol=1e-12)
    # Slicing composes: two slices equal one.
    assert gb[r0:, c0:][: r1 - r0, : c1 - c0] == gb[r0:r1, c0:c1]


def test_equality_and_hash():
    a = GeoBox((2, 3), Affine(1, 0, 0, 0, -1, 0), "EPSG:32631")
    b = GeoBox((2, 3), Affine(1, 0, 0, 0, -1, 0), CRS.from_epsg(32631))
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    assert a != attrs.evolve(a, shape=(2, 4))
    assert a != attrs.evolve(a, transform=Affine(1, 0, 0.5, 0, -1, 0))
    assert a != attrs.evolve(a, crs="EPSG:32632")
    assert a != attrs.evolve(a, crs=None)
    assert a.__eq__("not a geobox") is NotImplemented


@given(geoboxes())
def test_pickle_roundtrip_and_tokenize(gb):
    for dumps, loads in ((pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)):
        back = loads(dumps(gb))
        assert back == gb
        assert hash(back) == hash(gb)
    assert tokenize(gb) == tokenize(pickle.loads(pickle.dumps(gb)))
    assert tokenize(gb) == tokenize(GeoBox(gb.shape, gb.transform, gb.crs))
    assert tokenize(gb) != tokenize(attrs.evolve(gb, shape=(gb.height + 1, gb.width)))


def test_tokenize_is_deterministic_across_processes():
    import subprocess
    import sys

    code = (
        "from pyr import GeoBox; from affine import Affine; from dask.base import tokenize;"
        "print(tokenize(GeoBox((3, 4), Affine(10, 0, 5, 0, -10, 9), 'EPSG:32631')))"
    )
    here = tokenize(GeoBox((3, 4), Affine(10, 0, 5, 0, -10, 9), "EPSG:32631"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == here


def test_rotated_is_represented_but_refuses_axis_operations():
    gb = GeoBox((4, 5), ROTATED, UTM)
    assert not gb.is_axis_aligned
    assert gb.shape == (4, 5)
    left, _, _, top = gb.bounds  # bounds of the rotated outline
    corners = [ROTATED @ (c, r) for c, r in ((0, 0), (5, 0), (0, 4), (5, 4))]
    assert left == min(p[0] for p in corners)
    assert top == max(p[1] for p in corners)
    assert gb[1:3, 1:3].shape == (2, 2)
    for what in ("resolution", "cell_size"):
        with pytest.raises(InvalidArgument, match="rotated"):
            getattr(gb, what)
    with pytest.raises(InvalidArgument, match="rotated"):
        gb.coords()
    assert "transform=" in repr(gb)
    assert pickle.loads(pickle.dumps(gb)) == gb


def test_repr_is_short():
    gb = GeoBox((10980, 10980), Affine(10, 0, 199980, 0, -10, 2800020), "EPSG:32629")
    text = repr(gb)
    assert text == "GeoBox(shape=(10980, 10980), res=(10, -10), origin=(199980, 2800020), crs=EPSG:32629)"
    assert "crs=None" in repr(GeoBox((1, 1), Affine.identity()))


# --- CRS equality follows the CRS, not its spelling ---------------------------------


@pytest.mark.parametrize(
    ("code", "version"),
    [
        (4326, "WKT2_2019"),
        (4326, "WKT2_2015"),
        (3857, "WKT1_ESRI"),
        (32631, "WKT1_ESRI"),
        (3035, "WKT2_2019"),
        (8858, "WKT2_2015"),
    ],
)
def test_equality_and_hash_follow_the_crs_not_its_wkt_spelling(code, version):
    t = Affine(1, 0, 0, 0, -1, 0)
    by_code = GeoBox((2, 2), t, CRS.from_epsg(code))
    by_wkt = GeoBox((2, 2), t, CRS.from_wkt(CRS.from_epsg(code).to_wkt(version=version)))
    assert by_code.crs.to_wkt() != by_wkt.crs.to_wkt()  # two spellings...
    assert by_code.crs == by_wkt.crs  # that rasterio calls equal...
    assert by_code == by_wkt  # ...of one CRS
    assert hash(by_code) == hash(by_wkt)
    assert tokenize(by_code) == tokenize(by_wkt)
    assert by_code != GeoBox((2, 2), t, CRS.from_epsg(32632))


def test_a_crs_without_an_epsg_code_compares_by_its_definition():
    t = Affine(1, 0, 0, 0, -1, 0)
    proj = "+proj=laea +lat_0=52 +lon_0=10.5 +x_0=4321000 +y_0=3210000 +ellps=GRS80 +units=m +no_defs"
    a = GeoBox((2, 2), t, CRS.from_proj4(proj))
    b = GeoBox((2, 2), t, CRS.from_wkt(CRS.from_proj4(proj).to_wkt(version="WKT2_2019")))
    assert a == b
    assert hash(a) == hash(b)
    assert a != GeoBox((2, 2), t, CRS.from_proj4(proj.replace("+lon_0=10.5", "+lon_0=11")))


def test_lazy_read_of_an_equal_earth_file_on_threads_after_another_read(real_data, tmp_path):
    """GDAL's WKT for EPSG:8858 differs between the main thread and a worker thread (datum vs ensemble).

    A Landsat 7 band (odd/L7_ETMs.tif) warped to EPSG:8858 and read lazily on the threaded scheduler
    after another file was read: before CRSs compared by their meaning, every chunk task raised
    GridMismatch (the grid in the error equal, word for word, to the expected one).
    """
    import subprocess
    import sys

    import rasterio
    from rasterio.warp import Resampling, calculate_default_transform, reproject

    target = CRS.from_epsg(8858)
    path = tmp_path / "l7_8858.tif"
    with rasterio.open(real_data / "odd" / "L7_ETMs.tif") as src:
        transform, width, height = calculate_default_transform(src.crs, target, src.width, src.height, *src.bounds)
        profile = {
            "driver": "GTiff",
            "dtype": src.dtypes[0],
            "count": 1,
            "width": width,
            "height": height,
            "crs": target,
            "transform": transform,
            "nodata": 0,
            "tiled": True,
            "blockxsize": 64,
            "blockysize": 64,
        }
        with rasterio.open(path, "w", **profile) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1), resampling=Resampling.nearest)
        expected = rasterio.open(path).read()
    # In a fresh process (this one has GDAL state from writing the file): one read, then the lazy read.
    code = (
        "import sys, dask, numpy as np, pyr\n"
        "pyr.read(sys.argv[1])\n"
        "lazy = pyr.read(sys.argv[2], chunks=128)\n"
        "with dask.config.set(scheduler='threads', num_workers=4):\n"
        "    got = pyr.compute(lazy)\n"
        "np.save(sys.argv[3], got.data)\n"
        "print(got.geobox.epsg)\n"
    )
    out = tmp_path / "got.npy"
    run = subprocess.run(
        [sys.executable, "-c", code, str(real_data / "odd" / "RGB.byte.tif"), str(path), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["8858"]
    np.testing.assert_array_equal(np.load(out), expected)
