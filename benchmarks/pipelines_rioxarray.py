"""The pipelines with rioxarray + xarray + dask, chunks aligned to the 1024 tiles.

``rioxarray`` keeps ``open_rasterio``'s default lock (reads of one file are
serialised through one cached handle); ``rioxarray-nolock`` passes
``lock=False`` (a new handle per read, fully parallel). Output: the same
codec as pyr, Zarr v2, consolidated.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.pipelines_common import CHUNK, SCALE, Job, Steps, codec, dask_checksum

NAME = "band_data"


def _open(path: str, job: Job, env: Any = None) -> Any:
    import rioxarray

    kwargs: dict[str, Any] = {"chunks": {"band": 1, "y": CHUNK, "x": CHUNK}}
    if job.impl.endswith("nolock"):
        kwargs["lock"] = False
    return rioxarray.open_rasterio(path, **kwargs)


def _write(da_: Any, store: str) -> Any:
    ds = da_.to_dataset(name=NAME)
    for v in list(ds.data_vars) + list(ds.coords):
        ds[v].encoding.pop("compressors", None)  # rioxarray sets none; keep xarray from guessing
    return ds.to_zarr(
        store,
        mode="w",
        zarr_format=2,
        consolidated=True,
        compute=False,
        encoding={NAME: {"compressors": (codec(),)}},
    )


def _read_back(store: str) -> float:
    import xarray as xr

    return dask_checksum(xr.open_zarr(store)[NAME].data)


def band1(job: Job) -> Steps:

    steps = Steps()
    store = os.path.join(job.out, "band1.zarr")
    with steps.step("open"):
        a = _open(job.paths[0], job)
        nodata = a.rio.nodata
        out = (a.astype("float32") * np.float32(SCALE)).clip(0, 1)
        if nodata is not None:
            out = out.where(a != nodata)
        delayed = _write(out, store)
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


def reduction(job: Job) -> Steps:
    import pandas as pd
    import xarray as xr

    how = job.pipeline
    steps = Steps()
    store = os.path.join(job.out, f"{how}.zarr")
    with steps.step("open"):
        arrays = [_open(p, job) for p in job.paths]
        nodata = arrays[0].rio.nodata
        times = pd.date_range("2024-01-01", periods=len(arrays), freq="MS")
        cube = xr.concat(arrays, dim=pd.Index(times, name="time"), join="override", compat="override", coords="minimal")
        if how == "count":
            out = (cube != nodata).sum("time").astype("int32")
        else:
            masked = cube.where(cube != nodata) if nodata is not None else cube.astype("float32")
            if how == "mean":
                out = masked.mean("time", skipna=True)
            else:
                out = masked.chunk(time=-1).median("time", skipna=True)
            out = out.astype("float32")
        out = out.rio.write_crs(arrays[0].rio.crs)
        delayed = _write(out, store)
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


def http_read(job: Job) -> Steps:
    import rasterio

    steps = Steps()
    env = job.extra.get("env") or {}
    with rasterio.Env(**env):
        with steps.step("open"):
            a = _open(job.extra["urls"][0], job)
        with steps.step("read"):
            steps.checksum = dask_checksum(a.data)
    return steps


IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1,
    "mean": reduction,
    "median": reduction,
    "count": reduction,
    "http": http_read,
}
