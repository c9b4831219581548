"""``Raster`` and ``Cube``: construction, validation, repr, equality, pickling, tokenize."""

from __future__ import annotations

import math
import pickle

import attrs
import cloudpickle
import dask.array as da
import numpy as np
import pytest
from affine import Affine
from dask.base import tokenize
from hypothesis import given

from pyr import Cube, GeoBox, InvalidArgument, Raster
from pyr._nodata import missing, nodata_key, same_nodata
from pyr._values import Pixels, band_names
from pyr.testing import assert_raster_equal, raise_if_dask_computes
from pyr.testing.strategies import cubes, rasters
from pyr.types import parse_nodata

GB = GeoBox((4, 6), Affine(10, 0, 500000, 0, -10, 4000000), "EPSG:32631")
TIMES = np.array(["2020-01-01", "2020-02-01", "2020-03-01"], dtype="datetime64[ns]")


def eager(count=2, dtype="uint16"):
    return np.arange(count * 24, dtype=dtype).reshape(count, 4, 6)


def test_raster_defaults_and_properties():
    r = Raster(eager(2), GB)
    assert r.shape == (2, 4, 6)
    assert r.dtype == np.dtype("uint16")
    assert r.count == 2
    assert r.bands == ("1", "2")
    assert r.nodata is None
    assert not r.is_lazy
    assert r.chunks is None
    lazy = Raster(da.from_array(eager(2), chunks=(2, 3, 4)), GB, nodata=0, bands=["red", "nir"])
    assert lazy.is_lazy
    assert lazy.chunks == ((2,), (3, 1), (4, 2))
    assert lazy.bands == ("red", "nir")
    assert Raster(eager(1), GB, bands="red").bands == ("red",)


def test_cube_defaults_and_properties():
    c = Cube(np.zeros((3, 2, 4, 6), "float32"), GB, nodata=math.nan, times=TIMES)
    assert (c.shape, c.count, c.ntimes, c.bands) == ((3, 2, 4, 6), 2, 3, ("1", "2"))
    assert c.times.dtype == np.dtype("datetime64[us]")
    with pytest.raises(ValueError, match="read-only"):
        c.times[0] = np.datetime64("2000-01-01")
    assert Cube(np.zeros((3, 2, 4, 6)), GB).times is None
    lazy = Cube(da.zeros((3, 1, 4, 6), chunks=(1, 1, 2, 3)), GB, times=list(TIMES.astype(str)))
    assert lazy.is_lazy
    assert lazy.chunks == ((1, 1, 1), (1,), (2, 2), (3, 3))
    np.testing.assert_array_equal(lazy.times, TIMES)


@pytest.mark.parametrize("cls", [Raster, Cube])
def test_frozen_and_slotted(cls):
    data = eager() if cls is Raster else eager()[None]
    obj = cls(data, GB)
    assert not hasattr(obj, "__dict__")
    for field in attrs.fields(cls):
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            setattr(obj, field.name, None)
    new = attrs.evolve(obj, nodata=3)
    assert new.nodata == 3
    assert obj.nodata is None


@pytest.mark.parametrize(
    ("data", "geobox", "kwargs", "match"),
    [
        (np.zeros((4, 6)), GB, {}, "3-D"),
        (np.zeros((1, 1, 4, 6)), GB, {}, "3-D"),
        (np.zeros((1, 4, 5)), GB, {}, "geobox shape"),
        ([[[1]]], GeoBox((1, 1), Affine.identity()), {}, "numpy or dask array"),
        (np.zeros((1, 4, 6)), "EPSG:4326", {}, "geobox must be a GeoBox"),
        (np.zeros((1, 4, 6), "complex64"), GB, {}, "complex64"),
        (np.zeros((1, 4, 6), "U1"), GB, {}, "<U1"),
        (np.zeros((2, 4, 6)), GB, {"bands": ("a",)}, "names 1 band"),
        (np.zeros((2, 4, 6)), GB, {"bands": ("a", "a")}, "duplicate"),
        (np.zeros((2, 4, 6)), GB, {"bands": 5}, "bands"),
        (np.zeros((1, 4, 6), "uint8"), GB, {"nodata": math.nan}, "nodata=nan"),
        (np.zeros((1, 4, 6), "uint8"), GB, {"nodata": 256}, "out of range"),
        (np.zeros((1, 4, 6), "uint8"), GB, {"nodata": -1}, "out of range"),
        (np.zeros((1, 4, 6), "int16"), GB, {"nodata": 1.5}, "not representable"),
        (np.zeros((1, 4, 6), "float32"), GB, {"nodata": 1e39}, "out of range"),
        (np.zeros((1, 4, 6), "float32"), GB, {"nodata": "abc"}, "not a number"),
        (np.zeros((1, 4, 6), "uint8"), GB, {"nodata": True}, "bool"),
    ],
)
def test_raster_validation(data, geobox, kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        Raster(data, geobox, **kwargs)


@pytest.mark.parametrize(
    ("data", "kwargs", "match"),
    [
        (np.zeros((1, 4, 6)), {}, "4-D"),
        (np.zeros((2, 1, 4, 7)), {}, "geobox shape"),
        (np.zeros((2, 1, 4, 6)), {"times": TIMES}, "3 value"),
        (np.zeros((2, 1, 4, 6)), {"times": [["2020-01-01"], ["2020-01-02"]]}, "1-D"),
        (np.zeros((2, 1, 4, 6)), {"times": ["2020-01-01", "NaT"]}, "NaT"),
        (np.zeros((2, 1, 4, 6)), {"times": ["yesterday", "today"]}, "datetimes"),
        (np.zeros((2, 1, 4, 6), "int8"), {"nodata": 200}, "out of range"),
        (np.zeros((2, 2, 4, 6)), {"bands": ("a", "b", "c")}, "names 3"),
    ],
)
def test_cube_validation(data, kwargs, match):
    with pytest.raises(InvalidArgument, match=match):
        Cube(data, GB, **kwargs)


def test_validation_is_metadata_only_for_lazy_data():
    with raise_if_dask_computes():
        lazy = da.from_array(eager(), chunks=2) + 1
        r = Raster(lazy, GB, nodata=0)
        attrs.evolve(r, nodata=7)
        Cube(lazy[None], GB, times=TIMES[:1])
        with pytest.raises(InvalidArgument):
            Raster(lazy, GB, nodata=-1)


def test_evolve_validates_again():
    r = Raster(eager(), GB, nodata=0)
    with pytest.raises(InvalidArgument, match="geobox shape"):
        attrs.evolve(r, geobox=GB[:2])
    with pytest.raises(InvalidArgument, match="nan"):
        attrs.evolve(r, nodata=math.nan)
    f = attrs.evolve(r, data=eager(dtype="float32"), nodata=math.nan)
    assert math.isnan(f.nodata)


@pytest.mark.parametrize(
    ("nodata", "dtype", "expected"),
    [
        (0.0, "uint16", 0),
        (np.int16(-5), "int16", -5),
        (2**64 - 1, "uint64", 2**64 - 1),
        (2**63 - 1, "int64", 2**63 - 1),
        (-(2**63), "int64", -(2**63)),
        (np.uint64(2**64 - 1), "uint64", 2**64 - 1),
        (-9999, "float32", -9999.0),
        (0.1, "float32", float(np.float32(0.1))),
        (math.inf, "float64", math.inf),
        (False, "bool", 0),
    ],
)
def test_nodata_is_normalised_to_a_python_scalar_of_the_dtype(nodata, dtype, expected):
    got = parse_nodata(nodata, np.dtype(dtype))
    assert got == expected
    assert type(got) is type(expected)
    r = Raster(np.zeros((1, 4, 6), dtype), GB, nodata=nodata)
    assert r.nodata == expected


def test_nan_nodata_only_for_floats():
    for dtype in ("float32", "float64", "float16"):
        assert math.isnan(Raster(np.zeros((1, 4, 6), dtype), GB, nodata=np.nan).nodata)
    for dtype in ("uint8", "int16", "int64", "bool"):
        with pytest.raises(InvalidArgument, match="nodata"):
            Raster(np.zeros((1, 4, 6), dtype), GB, nodata=np.nan)


def test_repr_is_short_and_never_shows_or_computes_values():
    values = np.full((3, 4, 6), 12345, "uint16")
    r = Raster(values, GB, nodata=0, bands=("B02", "B03", "B04"))
    text = repr(r)
    assert text.startswith("Raster(<numpy uint16 (3, 4, 6)>, GeoBox(shape=(4, 6)")
    assert "EPSG:32631" in text
    assert "nodata=0" in text
    assert "12345" not in text
    with raise_if_dask_computes():
        lazy = Raster(da.from_array(values, chunks=(3, 2, 4)) * 2, GB, nodata=0)
        text = repr(lazy)
        str(lazy)
    assert "<dask uint16 (3, 4, 6) chunks=(3, 2, 4)>" in text
    many = Raster(np.zeros((40, 4, 6)), GB)
    assert len(repr(many)) < 250
    cube = Cube(np.zeros((3, 1, 4, 6)), GB, times=TIMES)
    assert repr(cube).endswith("times=[2020-01-01..2020-03-01])")
    assert "times=None" in repr(Cube(np.zeros((3, 1, 4, 6)), GB))


def test_equality_is_identity_and_never_computes():
    with raise_if_dask_computes():
        data = da.from_array(eager(), chunks=2)
        a = Raster(data, GB)
        b = Raster(data, GB)
        assert a == a
        assert a != b
        assert len({a, b}) == 2  # hashable by identity
        c = Cube(data[None], GB)
        assert c == c
        assert c != Cube(data[None], GB)
    e = Raster(eager(), GB)
    assert e != Raster(e.data, GB)  # no element-wise comparison, no ambiguous-truth error


@pytest.mark.parametrize("lazy", [False, True])
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps])
def test_pickle_roundtrip(lazy, dumps):
    data = da.from_array(eager(dtype="float32"), chunks=(2, 3, 3)) if lazy else eager(dtype="float32")
    r = Raster(data, GB, nodata=math.nan, bands=("a", "b"))
    back = pickle.loads(dumps(r))
    assert_raster_equal(back, r)
    assert back.is_lazy == lazy
    c = Cube(data[None], GB, nodata=-1.0, times=TIMES[:1])
    cback = pickle.loads(dumps(c))
    assert_raster_equal(cback, c)
    assert not cback.times.flags.writeable


@given(rasters())
def test_raster_tokenize_is_deterministic(r):
    same = Raster(r.data, r.geobox, nodata=r.nodata, bands=r.bands)
    assert tokenize(r) == tokenize(same)
    assert tokenize(r) == tokenize(pickle.loads(pickle.dumps(r)))
    other = attrs.evolve(r, bands=tuple(f"x{b}" for b in r.bands))
    assert tokenize(r) != tokenize(other)


@given(cubes())
def test_cube_tokenize_is_deterministic(c):
    same = Cube(c.data, c.geobox, nodata=c.nodata, bands=c.bands, times=c.times)
    assert tokenize(c) == tokenize(same)
    shifted = attrs.evolve(c, times=c.times + np.timedelta64(1, "D"))
    assert tokenize(c) != tokenize(shifted)


def test_tokenize_distinguishes_nodata():
    data = eager(dtype="float32")
    toks = {tokenize(Raster(data, GB, nodata=v)) for v in (None, 0.0, math.nan, -9999.0)}
    assert len(toks) == 4
    assert tokenize(Raster(data, GB, nodata=math.nan)) == tokenize(Raster(data, GB, nodata=float("nan")))


@given(rasters())
def test_strategy_rasters_are_valid(r):
    # The public strategies produce what they promise (users build tests on them).
    assert r.data.ndim == 3
    assert r.geobox.shape == r.shape[1:]
    assert len(r.bands) == r.count
    if r.nodata is not None and not (isinstance(r.nodata, float) and math.isnan(r.nodata)):
        assert np.asarray(r.dtype.type(r.nodata)) == r.nodata


def test_assert_raster_equal_detects_differences():
    r = Raster(eager(dtype="float32"), GB, nodata=math.nan)
    assert_raster_equal(r, Raster(r.data.copy(), GB, nodata=float("nan")))
    changed = r.data.copy()
    changed[0, 0, 0] += 1
    for other in (
        Raster(changed, GB, nodata=math.nan),
        Raster(r.data, GB, nodata=0.0),
        Raster(r.data, GB[:, :], nodata=math.nan, bands=("x", "y")),
        Raster(r.data.astype("float64"), GB, nodata=math.nan),
        Raster(r.data, GeoBox(GB.shape, GB.transform, "EPSG:32632"), nodata=math.nan),
        Cube(r.data[None], GB, nodata=math.nan),
    ):
        with pytest.raises(AssertionError):
            assert_raster_equal(other, r)


# --- one home for shared concepts ------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (None, None, True),
        (None, 0, False),
        (0, None, False),
        (0, 0, True),
        (0, 0.0, True),
        (0, 1, False),
        (math.nan, math.nan, True),
        (math.nan, 0.0, False),
        (-9999.0, -9999.0, True),
        (2**53 - 1, 2**53 - 1, True),
    ],
)
def test_same_nodata(a, b, same):
    assert same_nodata(a, b) is same
    assert same_nodata(b, a) is same
    assert (nodata_key(a) == nodata_key(b)) is same


def test_missing_cells():
    floats = np.array([0.0, 1.0, np.nan, 5.0])
    assert missing(floats, 0.0).tolist() == [True, False, True, False]
    assert missing(floats, math.nan).tolist() == [False, False, True, False]
    assert missing(floats, None).tolist() == [False, False, True, False]
    assert missing(np.array([0, 3], "uint8"), None) is None
    assert missing(np.array([0, 3], "uint8"), 3).tolist() == [False, True]


def test_band_names_from_descriptions():
    assert band_names(["red", None, "", "nir"]) == ("red", "2", "3", "nir")
    assert band_names([]) == ()


@pytest.mark.parametrize("cls", [Raster, Cube])
def test_raster_and_cube_share_one_base(cls):
    assert issubclass(cls, Pixels)
    for name in ("shape", "dtype", "count", "is_lazy", "chunks", "__repr__"):
        assert name not in vars(cls), f"{cls.__name__} redefines {name}; it belongs to pyr._values.Pixels"
