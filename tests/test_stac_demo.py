"""``pyr demo --stac``: search a loopback STAC API, read_stac, mask clouds, median; the median has no cloud in it.

The oracle is numpy on the generated files (rasterio reads), and the generator's own cloud field
(pyr.testing.synth_scl.cloud_mask): every cell of the median must come from cloud-free dates.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from pyr.cli import main
from pyr.testing.synth_scl import CLOUDY, cloud_mask

SIZE, DATES = 256, 5


def test_demo_stac_median_is_cloud_free(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "--stac", "--size", str(SIZE), "--dates", str(DATES), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for step in ("STAC API on http://127.0.0.1:", "read_stac", "mask SCL", "median", "stac_median.zarr", "PNG"):
        assert step in printed
    assert f"{DATES} items in 2 page(s)" in printed  # 4 items a page
    import pyr

    median = pyr.read_zarr(out / "stac_median.zarr", chunks=None).data[0]
    reds, clouds = [], []
    for i, path in enumerate(sorted((out / "scenes").glob("B04_*.tif"))):
        with rasterio.open(path) as ds:
            red = ds.read(1)
        with rasterio.open(path.with_name(path.name.replace("B04_", "SCL_"))) as ds:
            scl = np.repeat(np.repeat(ds.read(1), 2, axis=0), 2, axis=1)[:SIZE, :SIZE]
        reds.append(np.where((red == 0) | np.isin(scl, CLOUDY), np.nan, red * np.float32(1e-4)))
        clouds.append(cloud_mask(SIZE, i))
    assert sum(c.sum() for c in clouds) > 0.05 * clouds[0].size  # the series is cloudy
    for red, cloud in zip(reds, clouds, strict=True):
        assert not (np.isfinite(red) & cloud).any()  # what the SCL mask keeps is cloud- and shadow-free
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN cells: NaN, as pyr's median
        expected = np.nanmedian(np.stack(reds), axis=0)
    # the median is of those cells only: no cloud in it (the unmasked median differs)
    np.testing.assert_allclose(median, expected, rtol=1e-6, equal_nan=True)
    assert np.isfinite(median).mean() > 0.5
    assert (out / "stac_median.png").stat().st_size > 0


def test_demo_stac_without_pystac_client_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pystac_client", None)  # import raises ImportError, as when not installed
    assert main(["demo", "--stac", "--size", "64", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert "pystac-client" in err
