"""Experiments: pyr's pipelines with one setting changed, to measure a proposed change.

Nothing in ``pyr/`` is edited: an experiment sets an option of the
benchmark process (``cache64``) or an argument that
:mod:`benchmarks.pipelines_pyr` passes to pyr (the others). An
implementation name ``pyr+read2048`` runs ``pyr`` with the ``read2048``
experiment applied; several are joined with ``+``. (The ``direct``
experiment that the earlier tables in docs/benchmarks.md cite became pyr's
own whole-chunk path, ``pyr/io/_zarr_direct.py``, and was removed from here;
git history has it.)

* ``cache64``: ``GDAL_CACHEMAX=64`` (MB) in the worker: chunks are read once,
  so GDAL's block cache (5 % of RAM by default) only holds memory.
* ``readN`` (e.g. ``pyr+read2048``): the read-back uses
  ``read_zarr(store, chunks=N)`` instead of the store's own chunks (coarser
  read tasks, docs/cluster-and-cloud.md).
* ``pertaskN`` (e.g. ``pyr+pertask1``): the write graph is built with the
  dask config ``pyr.chunks-per-task`` set to N (1: a task per chunk on a
  cluster too, as before pyr grouped chunk writes there).
* ``v3``: the store is written as Zarr v3 (``zarr_format=3``).
* ``gdal``: ``PYR_NATIVE=0`` in the worker: GDAL reads every chunk (pyr's
  native COG tile path, :mod:`pyr.io.cog`, off).
"""

from __future__ import annotations

import os


def apply(name: str) -> None:
    """Apply the experiments named after ``+`` in the implementation name."""
    for exp in name.split("+")[1:]:
        if exp == "cache64":
            os.environ["GDAL_CACHEMAX"] = "64"
        elif exp == "gdal":
            os.environ["PYR_NATIVE"] = "0"
        elif exp == "v3" or any(exp.startswith(p) and exp[len(p) :].isdigit() for p in ("read", "pertask")):
            pass  # not swaps: pipelines_pyr applies these (read_zarr chunks, pyr.chunks-per-task, zarr_format=3)
        else:
            raise ValueError(f"unknown experiment {exp!r}")
