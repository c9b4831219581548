"""The pipelines written with pyr's public API, as a user would write them.

``pyr`` uses the defaults a user gets (``chunks="auto"``); ``pyr-1024``
passes ``chunks=1024`` (one COG tile per chunk, as the bounds use), ``pyr-2048``
``chunks=2048``. ``pyr+cache64`` etc. apply an experiment from
:mod:`benchmarks.pipelines_pyr_experiments` first; ``pyr+read2048`` reads
the store back with ``read_zarr(store, chunks=2048)``; ``pyr+pertask1``
writes with the dask config ``pyr.chunks-per-task`` set to 1 (one write task
per chunk on a cluster too; pyr's default is ``"auto"``); ``pyr+v3`` writes
Zarr v3 (``zarr_format=3``) instead of pyr's default v2.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from benchmarks.pipelines_common import SCALE, Job, Steps, dask_checksum


class Skip(Exception):
    """This implementation cannot run here (the reason is its message)."""


def _chunks(job: Job) -> Any:
    """``pyr`` -> ``"auto"``; ``pyr-2048`` -> 2048 (experiments after ``+`` are ignored here)."""
    base = job.impl.split("+")[0]
    return int(base.split("-")[1]) if "-" in base else "auto"


def _read_back(job: Job, store: str) -> Any:
    """The read-back's ``read_zarr`` chunks: the store's own, or N with ``+readN`` in the name."""
    import pyr

    chunks: Any = "auto"
    for exp in job.impl.split("+")[1:]:
        if exp.startswith("read") and exp[4:].isdigit():
            chunks = int(exp[4:])
    return lambda: dask_checksum(pyr.read_zarr(store, chunks=chunks).data)


def _set_chunks_per_task(job: Job) -> None:
    """``+pertaskN`` in the name: the dask config ``pyr.chunks-per-task`` is N for this run."""
    import dask

    for exp in job.impl.split("+")[1:]:
        if exp.startswith("pertask") and exp[7:].isdigit():
            dask.config.set({"pyr.chunks-per-task": int(exp[7:])})


def _zarr_format(job: Job) -> int:
    """``+v3`` in the name: write Zarr v3."""
    return 3 if "v3" in job.impl.split("+")[1:] else 2


def band1(job: Job) -> Steps:
    import pyr

    _set_chunks_per_task(job)
    steps = Steps()
    store = os.path.join(job.out, "band1.zarr")
    with steps.step("open"):
        raster = pyr.read(job.paths[0], chunks=_chunks(job))
        out = pyr.rescale(raster, scale=SCALE, clip=(0, 1))
        delayed = pyr.write_zarr(out, store, compute=False, zarr_format=_zarr_format(job))
    steps.extra["chunks"] = [int(c[0]) for c in raster.data.chunks[1:]]
    return steps.write_and_read_back(delayed, _read_back(job, store))


def reduction(job: Job) -> Steps:
    import pyr

    _set_chunks_per_task(job)
    steps = Steps()
    store = os.path.join(job.out, f"{job.pipeline}.zarr")
    with steps.step("open"):
        try:
            cube = pyr.read_cube(list(job.paths), chunks=_chunks(job))
            out = pyr.reduce_time(cube, job.pipeline)
        except NotImplementedError as err:
            raise Skip(f"pyr: {err}") from None
        delayed = pyr.write_zarr(out, store, compute=False, zarr_format=_zarr_format(job))
    steps.extra["chunks"] = [int(c[0]) for c in cube.data.chunks[2:]]
    return steps.write_and_read_back(delayed, _read_back(job, store))


def http_read(job: Job) -> Steps:
    import pyr

    steps = Steps()
    with steps.step("open"):
        raster = pyr.read(job.extra["urls"][0], chunks=_chunks(job), env=job.extra.get("env"))
    with steps.step("read"):
        steps.checksum = dask_checksum(raster.data)
    return steps


IMPLS: dict[str, Callable[[Job], Steps]] = {
    "band1": band1,
    "mean": reduction,
    "median": reduction,
    "count": reduction,
    "http": http_read,
}
