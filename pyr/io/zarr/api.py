"""``write_zarr`` and ``read_zarr``: the public functions, their argument checks and the write graph.

Store layout (one group)::

    <name>        (time?, band, y, x)  the pixels, grid_mapping: spatial_ref, _FillValue
    x, y          cell-centre coordinates (float64, CF attributes)
    band          band names (strings)
    time          int64 seconds since 1970-01-01 (cubes only)
    spatial_ref   0-d, CRS WKT + CF grid-mapping parameters + GeoTransform

How the store gets there (staging, publishing, what a crash leaves) is the
protocol's job (:mod:`pyr.io.zarr.protocol`, :mod:`pyr.io.zarr.append`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pyr._curry import curried
from pyr._imports import ensure
from pyr._lazy import as_lazy
from pyr.cube import Cube
from pyr.errors import InvalidArgument, StoreExists
from pyr.io.storage import ROOT_METADATA, storage_of
from pyr.io.zarr.arrays import abandon, write_chunk
from pyr.io.zarr.graph import chunk_graph
from pyr.io.zarr.layout import DEFAULT_NAME, Layout, StoreFiles, layout_of, store_files
from pyr.io.zarr.protocol import CLAIM, WritePlan, begin_write, finish_write, plan_write
from pyr.io.zarr.read import read_zarr_impl
from pyr.raster import Raster

if TYPE_CHECKING:
    from dask.delayed import Delayed

__all__ = ["read_zarr", "write_zarr"]

#: Names the store's own variables and Zarr's metadata keys take.
_RESERVED = {"x", "y", "band", "time", "spatial_ref", *ROOT_METADATA, ".zarray", "c"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")


def check_name(name: Any) -> str:
    """The data variable's name, checked (:class:`InvalidArgument` naming ``name``)."""
    name = DEFAULT_NAME if name is None else name
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in _RESERVED:
        raise InvalidArgument(
            f"name={name!r}: expected a variable name (letters, digits, '_' or '-', not starting with a digit) "
            "other than x, y, band, time, spatial_ref or a Zarr metadata key."
        )
    return name


def _abandon(plan: WritePlan, fingerprint: str) -> None:
    """After a failed write in this process: remove what it staged (never a published store)."""
    abandon(fingerprint)
    try:
        if not plan.in_place:
            plan.staged.remove()
            return
        claim = plan.final.beside(CLAIM)
        held = claim.get("")
        if plan.protocol == "write" and held is not None and held.decode(errors="replace").startswith(plan.tag):
            if not plan.final.has_group():
                plan.final.remove()
            claim.remove()
    except Exception:  # the write's own error is the one to report
        pass


def _files(layout: Layout) -> StoreFiles:
    given_codec = layout.compressor is not None and not isinstance(layout.compressor, str)
    try:
        return store_files(layout)
    except Exception as err:
        if not given_codec:
            raise
        raise InvalidArgument(
            f"compressor={layout.compressor!r} cannot be used with zarr_format={layout.zarr_format}: {err}"
        ) from None


def _write_graph(obj: Raster | Cube, plan: WritePlan, layout: Layout) -> tuple[Any, str]:
    """The write's ``Delayed``, and the fingerprint naming this write's chunk tasks."""
    ensure("dask.array")
    from dask.base import tokenize

    data = as_lazy(obj.data, layout.chunks)
    # the store's metadata is made here, in memory (which checks a given codec before anything
    # runs), so the begin and finish tasks, on the critical path of every write, only put objects
    files = _files(layout)
    token = tokenize(data, plan.final, layout, layout.compressor_key, plan.protocol)
    write_name = f"pyr-zarr-write-{token}"
    names = (f"pyr-zarr-init-{token}", write_name, f"pyr-zarr-write-group-{token}", f"pyr-zarr-final-{token}")
    fingerprint = f"{write_name}-{plan.tag}"
    job = chunk_graph(
        data,
        names,
        (begin_write, plan, files),
        write_chunk,
        (plan.staged, layout.name),
        (fingerprint, f"zarr.{plan.protocol}:chunk"),
        finish_write,
        (plan, files),
    )
    return job, fingerprint


@curried
def write_zarr(
    obj: Raster | Cube,
    store: Any,
    *,
    compute: bool = True,
    mode: str = "w-",
    zarr_format: int = 2,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    compressor: Any = "auto",
) -> Delayed | None:
    """Write a ``Raster`` or ``Cube`` to a CF-compatible Zarr store, chunk-parallel.

    Parameters
    ----------
    obj
        What to write; a lazy object is written chunk by chunk (one dask chunk
        is one Zarr chunk) without being materialised. Each chunk is read,
        computed and written by one task; on a ``distributed`` cluster (a
        client active when the graph is built) one task does several chunks
        in turn, fewer tasks for the scheduler (dask config
        ``pyr.chunks-per-task``: ``"auto"`` or a number; docs/design.md).
        Scales and offsets recorded on ``obj`` (``raw * scale + offset``) are
        written with the raw values: as CF ``scale_factor``/``add_offset``
        when every band shares them (``xarray.open_zarr`` then decodes
        physical values, and GDAL reads them as the band's scale and offset),
        else as ``scales``/``offsets`` attributes, one per band (as rioxarray
        names them; xarray leaves the values raw). ``mode="a"`` refuses a
        cube with other factors than the store's (``GridMismatch``).
    store
        A path, an fsspec URL (``s3://``, ``memory://``...) or a zarr store.
        An empty path, a filesystem root, the home directory and the current
        directory or its parents are refused (``InvalidArgument``).
    compute
        ``False`` returns a ``dask.delayed.Delayed``; nothing touches the store
        until it is computed.
    mode
        ``"w-"`` refuses an existing store (:class:`~pyr.errors.StoreExists`),
        ``"w"`` replaces it, ``"a"`` appends later dates of a ``Cube`` to an
        existing cube store on the same grid. ``"w"`` writes the new store
        beside the old one (``<store>.pyr-staging-<token>``) and replaces the
        old one only once the new one is complete: a local directory is
        swapped in by renames; on an object store the old store is deleted and
        the new one copied into place (root metadata last), so a failure
        during the write keeps the old store, and a failure during the copy
        keeps the new one under the staging prefix. A zarr store object
        (that can list and delete, as zarr's own stores) stages the new store
        under a ``.pyr-staging-...`` prefix inside it and moves it to the
        root the same way; one that cannot is overwritten in place. Two
        writes of one store at once never leave a store with chunks missing:
        the last one to publish wins (docs/design.md). ``"a"`` writes the new
        dates where readers do not look yet and then publishes the new
        metadata, so readers see the old dates throughout; it holds a lock
        beside the store (``<store>.pyr-append``) from its first task to its
        last: another append meanwhile is refused (``WriteError``); a failed
        append keeps the lock, the same append run again finishes it, and a
        different one is refused until the lock is deleted. A killed write
        leaves its staging place (``<store>.pyr-staging-...``); the next
        write of the store removes it. docs/design.md tabulates what a crash
        at each step leaves.
    zarr_format
        2 (default: GDAL reads it) or 3.
    name
        The data variable's name (default ``"band_data"``, as rioxarray): letters,
        digits, ``_`` and ``-``, not the name of a coordinate or a Zarr metadata key.
    storage_options
        fsspec options for URL stores (credentials never reach the metadata).
    compressor
        The data variable's codec. ``"auto"``: Blosc LZ4 with byte shuffle,
        chosen for encode and decode speed (docs/design.md, "Why Blosc
        LZ4"); ``None``: uncompressed; or a codec object as zarr-python's
        ``create_array(compressors=...)`` takes it: numcodecs for
        ``zarr_format=2``, ``zarr.codecs`` for 3. For example
        ``numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)``,
        packs smaller and encodes slower (figures in docs/design.md).
        Checked when the graph is built (:class:`~pyr.errors.InvalidArgument`).
        Not allowed with ``mode="a"``, which keeps the store's codec.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from pyr import GeoBox, Raster, read_zarr, write_zarr
    >>> gb = GeoBox.from_bounds((0, 0, 30, 10), 10, "EPSG:32631")
    >>> r = Raster(np.array([[[1, 2, 3]]], "uint16"), gb, nodata=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "r.zarr")
    >>> write_zarr(r, path)
    >>> read_zarr(path, chunks=None).data
    array([[[1, 2, 3]]], dtype=uint16)
    """
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"write_zarr expects a Raster or Cube, not {type(obj).__name__}.")
    if zarr_format not in (2, 3):
        raise InvalidArgument(f"zarr_format={zarr_format!r}: expected 2 or 3.")
    if mode not in ("w-", "w", "a"):
        raise InvalidArgument(f"mode={mode!r}: expected 'w-', 'w' or 'a'.")
    name = check_name(name)
    storage = storage_of(store, storage_options)
    if mode == "a":
        from pyr.io.zarr.append import append_graph

        if not (isinstance(compressor, str) and compressor == "auto"):
            raise InvalidArgument(
                f"compressor={compressor!r} with mode='a': appended chunks use the store's own codec; "
                "leave compressor at 'auto'."
            )
        appended: Delayed | None = append_graph(obj, storage, name=name, compute=compute)
        return appended
    if isinstance(compressor, str) and compressor != "auto":
        raise InvalidArgument(
            f"compressor={compressor!r}: expected 'auto', None or a codec object "
            "(numcodecs for zarr_format=2, e.g. numcodecs.Zstd(level=3); zarr.codecs for 3)."
        )
    layout = layout_of(obj, name, zarr_format, compressor)
    if mode == "w-" and compute and storage.exists() and storage.beside(CLAIM).get("") is None:
        raise StoreExists(f"{storage.url!r} already exists (mode='w-'); pass mode='w' to replace it.")
    plan = plan_write(storage, mode)
    job: Delayed
    job, fingerprint = _write_graph(obj, plan, layout)
    if not compute:
        return job
    try:
        job.compute()
    except BaseException:
        _abandon(plan, fingerprint)
        raise
    return None


@curried
def read_zarr(store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None) -> Raster | Cube:
    """Read a store written by :func:`write_zarr` (or a CF store from xarray/rioxarray).

    Returns a ``Raster`` for ``(band, y, x)`` data and a ``Cube`` (with
    ``times``) for ``(time, band, y, x)``. ``chunks="auto"`` is lazy with the
    store's own chunks; an int or tuple gives other spatial chunks; ``None``
    reads eagerly. Raises :class:`~pyr.errors.IncompleteStore` for a pyr
    store whose writer did not finish. The values are the stored ones; CF
    ``scale_factor``/``add_offset`` (or per-band ``scales``/``offsets``) on
    the data variable are recorded as the result's ``scales``/``offsets``,
    which :func:`pyr.rescale` applies.
    """
    return read_zarr_impl(store, chunks=chunks, storage_options=storage_options)
