"""Zarr stores: layout and CF metadata, the task graph, the write/replace/append protocols, reading.

Modules, one job each: :mod:`~pyr.io.zarr.layout` (what a store holds, built
in memory, no I/O), :mod:`~pyr.io.zarr.chunks` (whole-chunk encode and
decode), :mod:`~pyr.io.zarr.arrays` (chunk tasks), :mod:`~pyr.io.zarr.graph`
(the write graph), :mod:`~pyr.io.zarr.protocol` (``mode="w-"`` and
``"w"``), :mod:`~pyr.io.zarr.append` (``mode="a"``), :mod:`~pyr.io.zarr.read`
and :mod:`~pyr.io.zarr.api` (the public functions). Storage backends live in
:mod:`pyr.io.storage`.
"""

from pyr.io.zarr.api import read_zarr, write_zarr

__all__ = ["read_zarr", "write_zarr"]
