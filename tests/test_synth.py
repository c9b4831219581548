"""The synthetic Sentinel-2-like series: valid COGs on the advertised grid, deterministic, realistic."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pyr import InvalidArgument
from pyr.testing.synth import ORIGIN, make_series, scene_array, times_of

SIZE = 384


@pytest.fixture(scope="module")
def series(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return make_series(tmp_path_factory.mktemp("synth"), size=SIZE, dates=4, seed=7, block=128)


def test_files_are_cogs_on_the_grid(series: list[Path]) -> None:
    assert [p.name for p in series] == [f"B04_202401{d:02d}.tif" for d in (5, 10, 15, 20)]
    for path in series:
        with rasterio.open(path) as src:
            assert (src.width, src.height, src.count) == (SIZE, SIZE, 1)
            assert src.dtypes == ("uint16",)
            assert src.nodata == 0
            assert src.crs.to_epsg() == 32631
            assert src.res == (10.0, 10.0)
            assert (src.transform.c, src.transform.f) == ORIGIN
            assert src.profile["tiled"]
            assert src.block_shapes == [(128, 128)]
            overviews = src.overviews(1)
            assert overviews[0] == 2
            assert SIZE // overviews[-1] <= 128  # down to one block
            assert src.compression.name.lower() == "deflate"
            assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            assert src.descriptions == ("B04",)
            np.testing.assert_array_equal(src.read(1), scene_array(SIZE, series.index(path), seed=7))


def test_values_look_like_l2a_red(series: list[Path]) -> None:
    with rasterio.open(series[1]) as src:  # a mostly clear date
        a = src.read(1)
    valid = a[a > 0]
    assert 0.5 < valid.size / a.size < 1
    p5, p50 = np.percentile(valid, [5, 50])
    assert 80 < p5 < 500
    assert 250 < p50 < 1500
    assert valid.std() > 100  # fields, forest, water: not a flat picture
    # spatially correlated: neighbours are much closer than random pairs
    both = (a[:, 1:] > 0) & (a[:, :-1] > 0)
    neighbour = np.abs(a[:, 1:].astype(float) - a[:, :-1])[both].mean()
    shuffled = np.abs(valid - np.random.default_rng(0).permutation(valid).astype(float)).mean()
    assert neighbour < shuffled / 3


def test_nodata_edge_is_a_corner() -> None:
    a = scene_array(512, 0, seed=3)
    assert a[-1, 0] == 0  # lower-left corner outside the swath
    assert a[0, -1] != 0
    assert a[0, 0] != 0
    # the edge is a straight diagonal: along the bottom row, nodata is a prefix
    bottom = a[-1] == 0
    k = int(np.argmin(bottom))
    assert k > 0
    assert not bottom[k:].any()


def test_clouds_vary_between_dates() -> None:
    dates = [scene_array(384, i, seed=7) for i in range(6)]
    cloudy = [float((d > 2800).mean()) for d in dates]
    assert len({round(c, 4) for c in cloudy}) > 2
    assert max(cloudy) > 0.01
    # date 2 is cloud-masked: its clouds are nodata, on top of the swath edge every date has
    edge = dates[1] == 0
    assert (dates[2][edge] == 0).all()
    assert (dates[2] == 0).sum() > edge.sum() + 100
    # the landscape is stable: where two dates are both clear, they are strongly correlated
    a, b = dates[1].astype(float), dates[4].astype(float)
    clear = (a > 0) & (b > 0) & (a < 2800) & (b < 2800)
    assert np.corrcoef(a[clear], b[clear])[0, 1] > 0.5


def test_deterministic_and_seeded() -> None:
    np.testing.assert_array_equal(scene_array(200, 1, seed=2), scene_array(200, 1, seed=2))
    assert not np.array_equal(scene_array(200, 1, seed=2), scene_array(200, 1, seed=3))
    assert not np.array_equal(scene_array(200, 1, seed=2), scene_array(200, 2, seed=2))


def test_cached_unless_overwrite(tmp_path: Path) -> None:
    (first,) = make_series(tmp_path, size=128, dates=1, block=64)
    stamp = first.stat().st_mtime_ns
    os.utime(first, ns=(stamp - 10**9, stamp - 10**9))
    stamp = first.stat().st_mtime_ns
    (again,) = make_series(tmp_path, size=128, dates=1, block=64)
    assert again == first
    assert first.stat().st_mtime_ns == stamp
    make_series(tmp_path, size=128, dates=1, block=64, overwrite=True)
    assert first.stat().st_mtime_ns != stamp
    # a different size is not the cached file: it is rewritten
    make_series(tmp_path, size=160, dates=1, block=64)
    with rasterio.open(first) as src:
        assert src.width == 160
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_times_of() -> None:
    assert times_of([Path("x/B04_20240105.tif"), "B04_20241231.tif"]) == [
        dt.datetime(2024, 1, 5),
        dt.datetime(2024, 12, 31),
    ]
    with pytest.raises(InvalidArgument, match=r"notes\.txt"):
        times_of(["notes.txt"])


@pytest.mark.parametrize(
    ("kwargs", "what"),
    [({"size": 0}, "size"), ({"dates": 0}, "dates"), ({"block": 100}, "block"), ({"start": "soon"}, "start")],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], what: str) -> None:
    with pytest.raises(InvalidArgument, match=what):
        make_series(tmp_path, **kwargs)  # type: ignore[arg-type]
