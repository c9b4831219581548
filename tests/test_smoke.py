"""End-to-end smoke test of the reference workflow on a real Sentinel-2 band."""

from __future__ import annotations

import numpy as np
import rasterio
from toolz import pipe

import pyr
from pyr.testing import assert_raster_equal


def test_read_rescale_zarr_roundtrip(real_data, tmp_path):
    path = real_data / "s2l2a_cog_29RKH_20200219" / "B04.tif"
    lazy = pyr.read(path, chunks="auto")
    assert lazy.is_lazy
    store = tmp_path / "b04.zarr"
    delayed = pipe(lazy, pyr.rescale(scale=1e-4, clip=(0, 1)), pyr.write_zarr(store=store, compute=False))
    assert not store.exists()
    delayed.compute()
    back = pyr.read_zarr(store)
    with rasterio.open(path) as src:
        expected = src.read().astype("float32") * np.float32(1e-4)
        expected = np.clip(expected, 0, 1)
        expected[src.read() == 0] = np.nan
    np.testing.assert_array_equal(back.data.compute(), expected)
    assert_raster_equal(back, pyr.rescale(pyr.read(path), scale=1e-4, clip=(0, 1)))
