"""``write_zarr`` and ``read_zarr``: CF-compatible Zarr stores, written chunk-parallel.

Store layout (one group)::

    <name>        (time?, band, y, x)  the pixels, grid_mapping: spatial_ref, _FillValue
    x, y          cell-centre coordinates (float64, CF attributes)
    band          band names (strings)
    time          int64 seconds since 1970-01-01 (cubes only)
    spatial_ref   0-d, CRS WKT + CF grid-mapping parameters + GeoTransform

The root group's ``pyr`` attribute records ``complete``: false while chunks
are being written, true once the last one landed (then the metadata is
consolidated). ``read_zarr`` refuses a pyr store that is not complete.

A write is a task graph: ``init`` (create the arrays) -> one ``write`` task
per dask chunk (each a whole Zarr chunk, so no two tasks touch one chunk and
no lock is needed) -> ``finalize``. Tasks hold a picklable :class:`Target`
(URL + storage options), never an open store, and open the group themselves,
so the same graph runs on threads, processes or a cluster.
"""

from __future__ import annotations

import itertools
import math
import os
import shutil
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from pyr._curry import curried
from pyr.cube import Cube
from pyr.errors import IncompleteStore, InvalidArgument, ReadError, StoreExists
from pyr.geobox import GeoBox
from pyr.io import cf
from pyr.io.sources import display_name
from pyr.raster import Raster, is_dask

__all__ = ["Target", "read_zarr", "write_zarr"]

FORMAT_VERSION = 1
DEFAULT_NAME = "band_data"
_local = threading.local()


@attrs.frozen(repr=False)
class Target:
    """Where a store lives: a path or fsspec URL plus storage options (picklable)."""

    url: str
    # compared and hashed by repr: options may nest dicts (s3fs's client_kwargs)
    storage_options: tuple[tuple[str, Any], ...] = attrs.field(default=(), eq=repr)
    store: Any = attrs.field(default=None, eq=False)  # an in-process zarr store object

    @classmethod
    def of(cls, store: Any, storage_options: Mapping[str, Any] | None) -> Target:
        """Normalise ``store`` (path, URL or zarr store) and its options."""
        if isinstance(store, str | os.PathLike):
            url = os.fspath(store)
            if "://" not in url:
                url = os.path.abspath(url)
            return cls(url, tuple(sorted((storage_options or {}).items())))
        if storage_options:
            raise InvalidArgument("storage_options only apply when the store is a path or URL.")
        return cls(f"<{type(store).__name__}>", (), store)

    @property
    def is_local(self) -> bool:
        """Whether the target is a local directory."""
        return self.store is None and "://" not in self.url

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """A zarr store object for this target."""
        if self.store is not None:
            return self.store
        if self.is_local:
            from zarr.storage import LocalStore

            return LocalStore(self.url, read_only=read_only)
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self.url, storage_options=dict(self.storage_options), read_only=read_only)

    def exists(self) -> bool:
        """Whether anything is stored at the target."""
        if self.store is not None:
            import zarr

            try:
                zarr.open_group(self.store, mode="r")
            except Exception:
                return False
            return True
        if self.is_local:
            return os.path.exists(self.url)
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return bool(fs.exists(path)) and bool(fs.ls(path)) if fs.isdir(path) else bool(fs.exists(path))

    def __repr__(self) -> str:  # storage options may hold credentials: never shown
        return f"Target({display_name(self.url)!r})"

    def __dask_tokenize__(self) -> object:
        return ("pyr.Target", self.url, repr(self.storage_options), id(self.store) if self.store is not None else None)


def _cached_array(target: Target, name: str, fingerprint: str) -> Any:
    """The calling thread's handle on the data array (opened once per process, thread and write).

    ``fingerprint`` (the write graph's name) keys the cache, so a handle opened
    for an earlier write is never reused after ``mode="w"`` replaced the array.
    """
    cache = getattr(_local, "arrays", None)
    if cache is None or getattr(_local, "pid", None) != os.getpid():
        cache = _local.arrays = {}
        _local.pid = os.getpid()
    key = (target, name, fingerprint)
    arr = cache.get(key)
    if arr is None:
        import zarr

        arr = cache[key] = zarr.open_array(target.zarr_store(), path=name, mode="r+")
        while len(cache) > 32:
            cache.pop(next(iter(cache)))
    return arr


# --- layout ---------------------------------------------------------------------


@attrs.frozen
class Layout:
    """Everything ``init`` needs to create the store's arrays (no pixel data)."""

    name: str
    kind: str  # "raster" or "cube"
    shape: tuple[int, ...]
    chunks: tuple[int, ...]
    dtype: str
    nodata: float | int | None
    bands: tuple[str, ...]
    geobox: GeoBox
    times: tuple[int, ...] | None
    zarr_format: int

    @property
    def dims(self) -> tuple[str, ...]:
        return ("time", "band", "y", "x") if self.kind == "cube" else ("band", "y", "x")


def _compressor(zarr_format: int) -> Any:
    # Zstd level 1 through Blosc with byte shuffle: fast to encode and decode,
    # close to DEFLATE's ratio on imagery, and readable by GDAL's Zarr driver.
    if zarr_format == 2:
        import numcodecs

        return numcodecs.Blosc(cname="zstd", clevel=1, shuffle=numcodecs.Blosc.SHUFFLE)
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="zstd", clevel=1, shuffle="shuffle")


def _json_fill(nodata: float | int | None) -> Any:
    if nodata is None:
        return None
    if isinstance(nodata, float) and math.isnan(nodata):
        return "NaN"
    return nodata


def _create_arrays(group: Any, layout: Layout) -> None:
    fmt = layout.zarr_format
    dims = layout.dims

    def dims_kw(names: tuple[str, ...]) -> dict[str, Any]:
        return {"dimension_names": names} if fmt == 3 else {}

    def attrs_with_dims(attrs_: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
        return {**attrs_, "_ARRAY_DIMENSIONS": list(names)} if fmt == 2 else attrs_

    gb = layout.geobox
    y, x = gb.coords()
    yattrs, xattrs = cf.xy_attrs(gb)
    for cname, values, cattrs in (("y", y, yattrs), ("x", x, xattrs)):
        arr = group.create_array(
            cname,
            shape=values.shape,
            chunks=values.shape,
            dtype="float64",
            fill_value=None if fmt == 2 else 0.0,
            attributes=attrs_with_dims(cattrs, (cname,)),
            **dims_kw((cname,)),
        )
        arr[:] = values
    band = group.create_array(
        "band",
        shape=(len(layout.bands),),
        dtype=str,
        fill_value=None if fmt == 2 else "",
        attributes=attrs_with_dims({"long_name": "band name"}, ("band",)),
        **dims_kw(("band",)),
    )
    band[:] = np.array(layout.bands, dtype=object)
    sref = group.create_array(
        "spatial_ref",
        shape=(),
        dtype="int64",
        fill_value=None if fmt == 2 else 0,
        attributes=attrs_with_dims(cf.grid_mapping_attrs(gb), ()),
        **dims_kw(()),
    )
    sref[...] = 0
    if layout.kind == "cube":
        time = group.create_array(
            "time",
            shape=(len(layout.times or ()),),
            chunks=(max(len(layout.times or ()), 1),),
            dtype="int64",
            fill_value=None if fmt == 2 else 0,
            attributes=attrs_with_dims(
                {"standard_name": "time", "axis": "T", "units": cf.TIME_UNITS, "calendar": cf.TIME_CALENDAR},
                ("time",),
            ),
            **dims_kw(("time",)),
        )
        time[:] = np.asarray(layout.times, dtype="int64")
    data_attrs: dict[str, Any] = {"grid_mapping": "spatial_ref", "coordinates": "spatial_ref"}
    if layout.nodata is not None:
        data_attrs["_FillValue"] = _json_fill(layout.nodata)
    fill = layout.nodata
    if fill is None and fmt == 3:
        fill = 0
    group.create_array(
        layout.name,
        shape=layout.shape,
        chunks=layout.chunks,
        dtype=layout.dtype,
        fill_value=fill,
        compressors=_compressor(fmt),
        attributes=attrs_with_dims(data_attrs, dims),
        **dims_kw(dims),
    )


def _pyr_attrs(layout: Layout, complete: bool) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "complete": complete, "kind": layout.kind, "name": layout.name}


# --- tasks ----------------------------------------------------------------------


def init_store(target: Target, layout: Layout, mode: str) -> None:
    """Create the group and arrays, marked incomplete."""
    import zarr

    if mode == "w-" and target.exists():
        raise StoreExists(f"{display_name(target.url)!r} already exists (mode='w-'); pass mode='w' to replace it.")
    # The "incomplete" marker is part of the group's first metadata write, so a
    # reader never sees this group without it.
    group = zarr.open_group(
        target.zarr_store(),
        mode="w",
        zarr_format=2 if layout.zarr_format == 2 else 3,
        attributes={"pyr": _pyr_attrs(layout, complete=False)},
    )
    _create_arrays(group, layout)


def write_chunk(
    target: Target, name: str, region: tuple[slice, ...], block: np.ndarray, _after: Any = None, fingerprint: str = ""
) -> None:
    """Write one block (a whole Zarr chunk) into the data array."""
    _cached_array(target, name, fingerprint)[region] = block


def finalize_store(target: Target, layout: Layout, _after: Any = None, publish_to: str | None = None) -> None:
    """Mark the store complete and consolidate its metadata.

    With ``publish_to`` (a local path), the finished store at ``target``
    then replaces whatever is at ``publish_to``: the old store is removed
    only after the new one is complete.
    """
    import zarr

    group = zarr.open_group(target.zarr_store(), mode="r+")
    group.attrs.update({"pyr": _pyr_attrs(layout, complete=True)})
    with warnings.catch_warnings():
        # zarr-python warns that consolidated metadata is not (yet) in the v3 spec;
        # xarray and zarr-python read it, which is what it is written for.
        warnings.filterwarnings("ignore", "Consolidated metadata", category=UserWarning)
        zarr.consolidate_metadata(target.zarr_store())
    if publish_to is not None:
        _swap_directories(target.url, publish_to)


def _swap_directories(new: str, final: str) -> None:
    old = f"{new}.old"
    if os.path.lexists(final):
        os.rename(final, old)
    os.rename(new, final)
    if os.path.lexists(old):
        shutil.rmtree(old, ignore_errors=True)


# --- write_zarr -----------------------------------------------------------------


def _layout(obj: Raster | Cube, name: str, zarr_format: int) -> Layout:
    if not obj.geobox.is_axis_aligned:
        raise InvalidArgument(
            "write_zarr needs an axis-aligned grid (CF x/y coordinates); this raster's transform is "
            f"rotated or sheared: {tuple(obj.geobox.transform)[:6]}."
        )
    if is_dask(obj.data):
        chunks = tuple(c[0] if c else 1 for c in obj.data.chunks)
        for axis, cs in enumerate(obj.data.chunks):
            if (len(cs) > 2 and len(set(cs[:-1])) > 1) or (len(cs) > 1 and cs[-1] > cs[0]):
                raise InvalidArgument(
                    f"write_zarr needs regular chunks (all equal but the last); axis {axis} has {cs[:5]}... "
                    "Rechunk first."
                )
    else:
        chunks = _eager_chunks(obj)
    times = None
    if isinstance(obj, Cube):
        # One date per Zarr chunk, whatever the dask time chunks (a dask chunk then writes
        # several whole Zarr chunks): appending dates never rewrites a stored chunk.
        chunks = (1, *chunks[1:])
        times = tuple(int(v) for v in cf.encode_times(_times_or_positions(obj)))
    return Layout(
        name=name,
        kind="cube" if isinstance(obj, Cube) else "raster",
        shape=tuple(obj.shape),
        chunks=tuple(max(c, 1) for c in chunks),
        dtype=str(obj.dtype),
        nodata=obj.nodata,
        bands=tuple(obj.bands or ()),
        geobox=obj.geobox,
        times=times,
        zarr_format=zarr_format,
    )


def _times_or_positions(cube: Cube) -> np.ndarray:
    if cube.times is not None:
        return cube.times
    return np.datetime64("1970-01-01", "ns") + np.arange(cube.ntimes).astype("timedelta64[s]")


def _eager_chunks(obj: Raster | Cube) -> tuple[int, ...]:
    side = 1024
    spatial = (min(side, max(obj.shape[-2], 1)), min(side, max(obj.shape[-1], 1)))
    return ((1, obj.count) if isinstance(obj, Cube) else (obj.count,)) + spatial


def write_zarr_impl(
    obj: Raster | Cube,
    store: Any,
    *,
    compute: bool = True,
    mode: str = "w-",
    zarr_format: int = 2,
    name: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> Any:
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"write_zarr expects a Raster or Cube, not {type(obj).__name__}.")
    if zarr_format not in (2, 3):
        raise InvalidArgument(f"zarr_format={zarr_format!r}: expected 2 or 3.")
    if mode not in ("w-", "w", "a"):
        raise InvalidArgument(f"mode={mode!r}: expected 'w-', 'w' or 'a'.")
    name = DEFAULT_NAME if name is None else name
    if not isinstance(name, str) or not name or "/" in name or name in ("x", "y", "band", "time", "spatial_ref"):
        raise InvalidArgument(
            f"name={name!r}: expected a plain variable name other than x, y, band, time, spatial_ref."
        )
    target = Target.of(store, storage_options)
    if mode == "a":
        from pyr.io.zarr_append import append_graph

        return append_graph(obj, target, name=name, compute=compute)
    layout = _layout(obj, name, zarr_format)
    if not compute:
        return _write_graph(obj, target, layout, mode)
    if mode == "w-" and target.exists():
        raise StoreExists(f"{display_name(target.url)!r} already exists (mode='w-'); pass mode='w' to replace it.")
    _write_graph(obj, target, layout, mode).compute()
    return None


def _write_graph(obj: Raster | Cube, target: Target, layout: Layout, mode: str) -> Any:
    import dask.array as da
    from dask.base import tokenize
    from dask.delayed import Delayed
    from dask.highlevelgraph import HighLevelGraph

    data = obj.data if is_dask(obj.data) else da.from_array(obj.data, chunks=layout.chunks)
    token = tokenize(data, target, layout, mode)
    init_key = f"pyr-zarr-init-{token}"
    write_name = f"pyr-zarr-write-{token}"
    final_key = f"pyr-zarr-final-{token}"
    publish_to = None
    if mode == "w" and target.is_local:
        # Replace a local store only once the new one is complete: write it
        # beside the old one and swap directories in finalize_store.
        publish_to = target.url
        target = Target(f"{target.url}.pyr-staging-{token[:16]}")
    dsk: dict[Any, Any] = {init_key: (init_store, target, layout, mode)}
    offsets = [np.cumsum((0, *c)) for c in data.chunks]
    write_keys = []
    for key in _flatten(data.__dask_keys__()):
        idx = key[1:]
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        wkey = (write_name, *idx)
        dsk[wkey] = (write_chunk, target, layout.name, region, key, init_key, write_name)
        write_keys.append(wkey)
    dsk[final_key] = (finalize_store, target, layout, write_keys, publish_to)
    graph = HighLevelGraph.from_collections(final_key, dsk, dependencies=[data])
    return Delayed(final_key, graph)


def _flatten(keys: Any) -> list[Any]:
    if isinstance(keys, list):
        return [k for sub in keys for k in _flatten(sub)]
    return [keys]


# --- read_zarr ------------------------------------------------------------------


def read_zarr_impl(
    store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None
) -> Raster | Cube:
    import zarr

    chunks = _parse_read_chunks(chunks)
    target = Target.of(store, storage_options)
    shown = display_name(target.url)
    group: Any
    try:
        try:
            group = zarr.open_consolidated(target.zarr_store(read_only=True), mode="r")
        except Exception:
            group = zarr.open_group(target.zarr_store(read_only=True), mode="r")
    except Exception as err:
        raise ReadError(f"Cannot open Zarr store {shown!r}: {err}") from None
    meta = dict(group.attrs).get("pyr")
    if isinstance(meta, dict) and not meta.get("complete", False):
        raise IncompleteStore(f"Zarr store {shown!r} is incomplete: its writer did not finish (or is still running).")
    name = str(meta.get("name")) if isinstance(meta, dict) else _find_data_var(group, shown)
    try:
        arr = group[name]
    except KeyError:
        raise ReadError(f"Zarr store {shown!r} has no variable {name!r}.") from None
    dims = _dims(arr)
    attrs_ = dict(arr.attrs)
    if dims[-2:] != ("y", "x") or len(dims) not in (2, 3, 4):
        raise ReadError(f"{shown!r}: variable {name!r} has dims {dims}; expected (band, y, x) or (time, band, y, x).")
    gm_name = attrs_.get("grid_mapping", "spatial_ref")
    gm = dict(group[gm_name].attrs) if gm_name in group else None
    y = group["y"][:] if "y" in group else None
    x = group["x"][:] if "x" in group else None
    geobox = cf.geobox_from_cf(tuple(arr.shape[-2:]), y, x, gm)
    nodata = _nodata(arr, attrs_)
    has_band = "band" in dims
    nbands = arr.shape[dims.index("band")] if has_band else 1
    bands = tuple(str(b) for b in group["band"][:]) if has_band and "band" in group else None
    if bands is not None and len(set(bands)) != len(bands):
        bands = None
    data = _array(target, name, arr, chunks)
    if not has_band:
        data = data[..., None, :, :] if "time" in dims else data[None]
    if "time" in dims:
        times = None
        if "time" in group:
            tattrs = dict(group["time"].attrs)
            times = cf.decode_times(
                group["time"][:], tattrs.get("units", cf.TIME_UNITS), tattrs.get("calendar", cf.TIME_CALENDAR)
            )
        return Cube(data, geobox, nodata=nodata, bands=bands, times=times)
    del nbands
    return Raster(data, geobox, nodata=nodata, bands=bands)


def _parse_read_chunks(chunks: Any) -> str | tuple[int, ...] | None:
    """``None``, ``"auto"``, an int (y and x) or a tuple of the trailing axes' chunk sizes."""
    if chunks is None or chunks == "auto":
        return chunks  # type: ignore[no-any-return]
    items = (chunks, chunks) if isinstance(chunks, int | np.integer) else chunks
    if (
        isinstance(items, str)
        or not isinstance(items, tuple | list)
        or not 1 <= len(items) <= 4
        or not all(isinstance(c, int | np.integer) and not isinstance(c, bool) and c > 0 for c in items)
    ):
        raise InvalidArgument(f"chunks={chunks!r}: expected None, 'auto', a positive int or a tuple of them.")
    return tuple(int(c) for c in items)


def _dims(arr: Any) -> tuple[str, ...]:
    if arr.metadata.zarr_format == 3:
        names = arr.metadata.dimension_names
        return tuple(names) if names else ()
    return tuple(dict(arr.attrs).get("_ARRAY_DIMENSIONS", ()))


def _find_data_var(group: Any, shown: str) -> str:
    candidates = [k for k, a in group.arrays() if "grid_mapping" in dict(a.attrs)]
    if not candidates:
        candidates = [k for k, a in group.arrays() if _dims(a)[-2:] == ("y", "x") and k not in ("x", "y")]
    if len(candidates) != 1:
        raise ReadError(f"Zarr store {shown!r}: cannot tell which variable is the raster (found {candidates}).")
    return str(candidates[0])


def _nodata(arr: Any, attrs_: dict[str, Any]) -> float | int | None:
    value = attrs_.get("_FillValue")
    if value is None and arr.metadata.zarr_format == 2:
        value = arr.metadata.fill_value
    if value is None:
        return None
    if isinstance(value, str) and value.lower() == "nan":
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    return value  # type: ignore[no-any-return]


def read_chunk(target: Target, name: str, region: tuple[slice, ...], fingerprint: str = "") -> np.ndarray:
    """Read one region of the data array (a task of a lazy ``read_zarr``).

    ``fingerprint`` (the graph's name, a token of the array's metadata) keys
    the handle cache, so a handle opened before the array was resized or
    replaced (``mode="a"``/``"w"``) is never reused with stale metadata.
    """
    import zarr

    cache = getattr(_local, "read_arrays", None)
    if cache is None or getattr(_local, "read_pid", None) != os.getpid():
        cache = _local.read_arrays = {}
        _local.read_pid = os.getpid()
    key = (target, name, fingerprint)
    arr = cache.get(key)
    if arr is None:
        arr = cache[key] = zarr.open_array(target.zarr_store(read_only=True), path=name, mode="r")
        while len(cache) > 32:
            cache.pop(next(iter(cache)))
    return np.asarray(arr[region])


def _array(target: Target, name: str, arr: Any, chunks: Any) -> Any:
    if chunks is None:
        return np.asarray(arr[...])
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph

    if chunks == "auto":
        chunk_shape = tuple(arr.chunks)
    else:
        if len(chunks) > arr.ndim:
            raise InvalidArgument(f"chunks={chunks!r}: the array has only {arr.ndim} dimensions.")
        chunk_shape = tuple(arr.chunks[: arr.ndim - len(chunks)]) + tuple(chunks)
    norm = tuple(
        tuple(min(c, n - o) for o in range(0, n, c)) if n else (0,) for c, n in zip(chunk_shape, arr.shape, strict=True)
    )
    name_ = "pyr-read-zarr-" + tokenize(target, name, norm, str(arr.metadata.to_dict()))
    offsets = [np.cumsum((0, *c)) for c in norm]
    dsk: dict[Any, Any] = {}

    for idx in itertools.product(*(range(len(c)) for c in norm)):
        region = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx, strict=True))
        dsk[(name_, *idx)] = (read_chunk, target, name, region, name_)
    graph = HighLevelGraph.from_collections(name_, dsk, dependencies=())
    return da.Array(graph, name_, norm, meta=np.empty((0,) * arr.ndim, dtype=arr.dtype))


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
) -> Any:
    """Write a ``Raster`` or ``Cube`` to a CF-compatible Zarr store, chunk-parallel.

    Parameters
    ----------
    obj
        What to write; a lazy object is written chunk by chunk (one dask chunk
        is one Zarr chunk) without being materialised.
    store
        A path, an fsspec URL (``s3://``, ``memory://``...) or a zarr store.
    compute
        ``False`` returns a ``dask.delayed.Delayed``; nothing touches the store
        until it is computed.
    mode
        ``"w-"`` refuses an existing store (:class:`~pyr.errors.StoreExists`),
        ``"w"`` replaces it, ``"a"`` appends later dates of a ``Cube`` to an
        existing cube store on the same grid.
    zarr_format
        2 (default: GDAL reads it) or 3.
    name
        The data variable's name (default ``"band_data"``, as rioxarray).
    storage_options
        fsspec options for URL stores (credentials never reach the metadata).

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
    return write_zarr_impl(
        obj, store, compute=compute, mode=mode, zarr_format=zarr_format, name=name, storage_options=storage_options
    )


@curried
def read_zarr(store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None) -> Raster | Cube:
    """Read a store written by :func:`write_zarr` (or a CF store from xarray/rioxarray).

    Returns a ``Raster`` for ``(band, y, x)`` data and a ``Cube`` (with
    ``times``) for ``(time, band, y, x)``. ``chunks="auto"`` is lazy with the
    store's own chunks; an int or tuple gives other spatial chunks; ``None``
    reads eagerly. Raises :class:`~pyr.errors.IncompleteStore` for a pyr
    store whose writer did not finish.
    """
    return read_zarr_impl(store, chunks=chunks, storage_options=storage_options)
