"""The pipelines with pyramids-core's lazy (dask) API.

pyramids reads lazily with ``Dataset.read_array(chunks=...)`` (one band) and
``DatasetCollection.from_files(...).data`` (a ``(time, band, y, x)`` cube,
chunked by pyramids itself, one IO lock per file); it has no lazy writer for
a derived dask array (``Dataset.to_zarr`` writes a dataset it reads again, and
``DatasetCollection.mean()`` materialises the result in numpy), so the
arithmetic, nodata masking (pyramids' cube does not mask the sentinel) and
the Zarr write (``dask.array.to_zarr``, pyr's codec) are dask's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from benchmarks.pipelines_common import CHUNK, Job, Steps, codec, dask_checksum, reduce_kernel, rescale_kernel

NAME = "band_data"


def available() -> str | None:
    """``None`` when pyramids imports, else why not."""
    try:
        import pyramids.dataset  # noqa: F401
    except Exception as err:  # any import-time failure means: skip, with the reason
        return f"pyramids-core does not import: {type(err).__name__}: {err}"
    return None


def _write(arr: Any, store: str) -> Any:
    import dask.array as da

    return da.to_zarr(arr, store, component=NAME, compute=False, zarr_format=2, compressors=(codec(),), mode="w")


def _read_back(store: str) -> float:
    import dask.array as da

    return dask_checksum(da.from_zarr(store, component=NAME))


def band1(job: Job) -> Steps:
    from pyramids.dataset import Dataset

    steps = Steps()
    store = os.path.join(job.out, "band1.zarr")
    with steps.step("open"):
        ds = Dataset.read_file(job.paths[0])
        nodata = ds.no_data_value[0]
        nodata = None if nodata is None else int(nodata)
        arr = ds.read_array(band=0, chunks=(CHUNK, CHUNK))
        out = arr.map_blocks(rescale_kernel, nodata, dtype="float32")[None]
        delayed = _write(out, store)
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


def reduction(job: Job) -> Steps:
    from pyramids.dataset import DatasetCollection

    how = job.pipeline
    steps = Steps()
    store = os.path.join(job.out, f"{how}.zarr")
    with steps.step("open"):
        coll = DatasetCollection.from_files(list(job.paths))
        data = coll.data[:, 0]  # (time, y, x), pyramids' own spatial chunks
        nodata = job.nodata
        steps.extra["chunks"] = [int(c[0]) for c in data.chunks[1:]]
        data = data.rechunk({0: -1})
        out = data.map_blocks(reduce_kernel, how, nodata, drop_axis=0, dtype="int32" if how == "count" else "float32")[
            None
        ]
        delayed = _write(out, store)
    return steps.write_and_read_back(delayed, lambda: _read_back(store))


IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1,
    "mean": reduction,
    "median": reduction,
    "count": reduction,
}
