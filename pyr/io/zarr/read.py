"""Reading a Zarr store: what ``write_zarr`` wrote, or a CF store from xarray/rioxarray."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from pyr._imports import ensure
from pyr.cube import Cube
from pyr.errors import IncompleteStore, InvalidArgument, ReadError
from pyr.io import cf
from pyr.io.storage import Storage, storage_of
from pyr.io.zarr.arrays import read_chunk
from pyr.io.zarr.layout import decode_fill
from pyr.io.zarr.protocol import CLAIM, STAGING
from pyr.raster import Raster

__all__ = ["dims_of", "nodata_of", "read_zarr_impl"]


def _being_written(storage: Storage) -> bool:
    """Whether a pyr write of ``storage`` has started and not published (a claim, a staging place)."""
    try:
        return storage.beside(CLAIM).get("") is not None or bool(storage.besides(STAGING))
    except Exception:
        return False


def read_zarr_impl(
    store: Any, *, chunks: Any = "auto", storage_options: Mapping[str, Any] | None = None
) -> Raster | Cube:
    """See :func:`pyr.read_zarr`."""
    ensure("zarr")
    import zarr

    chunks = _parse_read_chunks(chunks)
    storage = storage_of(store, storage_options)
    shown = storage.url
    group: Any
    try:
        try:
            group = zarr.open_consolidated(storage.zarr_store(read_only=True), mode="r")
        except Exception:
            group = zarr.open_group(storage.zarr_store(read_only=True), mode="r")
    except Exception as err:
        if _being_written(storage):
            raise IncompleteStore(
                f"Zarr store {shown!r} is incomplete: its writer did not finish (or is still running)."
            ) from None
        raise ReadError(f"Cannot open Zarr store {shown!r}: {err}") from None
    meta = dict(group.attrs).get("pyr")
    if isinstance(meta, dict) and not meta.get("complete", False):
        raise IncompleteStore(f"Zarr store {shown!r} is incomplete: its writer did not finish (or is still running).")
    name = str(meta.get("name")) if isinstance(meta, dict) else _find_data_var(group, shown)
    try:
        arr = group[name]
    except KeyError:
        raise ReadError(f"Zarr store {shown!r} has no variable {name!r}.") from None
    dims = dims_of(arr)
    attrs_ = dict(arr.attrs)
    if dims[-2:] != ("y", "x") or len(dims) not in (2, 3, 4):
        raise ReadError(f"{shown!r}: variable {name!r} has dims {dims}; expected (band, y, x) or (time, band, y, x).")
    gm_name = attrs_.get("grid_mapping", "spatial_ref")
    gm = dict(group[gm_name].attrs) if gm_name in group else None
    # the coordinates are only read when there is no GeoTransform to take the grid from (two reads saved)
    coords = gm is None or not gm.get("GeoTransform")
    y = group["y"][:] if coords and "y" in group else None
    x = group["x"][:] if coords and "x" in group else None
    geobox = cf.geobox_from_cf(tuple(arr.shape[-2:]), y, x, gm)
    nodata = nodata_of(arr, attrs_)
    has_band = "band" in dims
    nbands = arr.shape[dims.index("band")] if has_band else 1
    bands = tuple(str(b) for b in group["band"][:]) if has_band and "band" in group else None
    if bands is not None and len(set(bands)) != len(bands):
        bands = None
    scales, offsets = cf.factors_from_attrs(attrs_, nbands, where=f"Zarr store {shown!r}, variable {name!r}")
    data = _array(storage, name, arr, chunks)
    if not has_band:
        data = data[..., None, :, :] if "time" in dims else data[None]
    if "time" in dims:
        times = None
        if "time" in group:
            tattrs = dict(group["time"].attrs)
            times = cf.decode_times(
                group["time"][:], tattrs.get("units", cf.TIME_UNITS), tattrs.get("calendar", cf.TIME_CALENDAR)
            )
        return Cube(data, geobox, nodata=nodata, bands=bands, times=times, scales=scales, offsets=offsets)
    return Raster(data, geobox, nodata=nodata, bands=bands, scales=scales, offsets=offsets)


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


def dims_of(arr: Any) -> tuple[str, ...]:
    """A zarr array's dimension names (v3 ``dimension_names``, v2 ``_ARRAY_DIMENSIONS``)."""
    if arr.metadata.zarr_format == 3:
        names = arr.metadata.dimension_names
        return tuple(names) if names else ()
    return tuple(dict(arr.attrs).get("_ARRAY_DIMENSIONS", ()))


def _find_data_var(group: Any, shown: str) -> str:
    candidates = [k for k, a in group.arrays() if "grid_mapping" in dict(a.attrs)]
    if not candidates:
        candidates = [k for k, a in group.arrays() if dims_of(a)[-2:] == ("y", "x") and k not in ("x", "y")]
    if len(candidates) != 1:
        raise ReadError(f"Zarr store {shown!r}: cannot tell which variable is the raster (found {candidates}).")
    return str(candidates[0])


def nodata_of(arr: Any, attrs_: dict[str, Any]) -> float | int | None:
    """The nodata of a Zarr array: its ``_FillValue`` attribute (v2: else its fill value)."""
    value = attrs_.get("_FillValue")
    if value is None and arr.metadata.zarr_format == 2:
        value = arr.metadata.fill_value
    if value is None:
        return None
    value = decode_fill(value, arr.dtype, arr.metadata.zarr_format)
    if isinstance(value, str) and value.lower() == "nan":
        return math.nan
    if isinstance(value, np.generic):
        value = value.item()
    return value  # type: ignore[no-any-return]


def _array(storage: Storage, name: str, arr: Any, chunks: Any) -> Any:
    if chunks is None:
        return np.asarray(arr[...])
    ensure("dask")
    from dask.base import tokenize

    from pyr.io._producer import producer_array

    if chunks == "auto":
        chunk_shape = tuple(arr.chunks)
    else:
        if len(chunks) > arr.ndim:
            raise InvalidArgument(f"chunks={chunks!r}: the array has only {arr.ndim} dimensions.")
        chunk_shape = tuple(arr.chunks[: arr.ndim - len(chunks)]) + tuple(chunks)
    norm = tuple(
        tuple(min(c, n - o) for o in range(0, n, c)) if n else (0,) for c, n in zip(chunk_shape, arr.shape, strict=True)
    )
    token = tokenize(storage, name, norm, str(arr.metadata.to_dict()))
    # the token doubles as the fingerprint of the array's metadata (see read_chunk); not the layer's
    # name itself: dask renames layers when it fuses them, and would rewrite that argument too
    return producer_array(
        "pyr-read-zarr-" + token, _read_zarr_region, (storage, name, token), norm, np.dtype(arr.dtype)
    )


def _read_zarr_region(storage: Storage, name: str, fingerprint: str, region: tuple[slice, ...]) -> np.ndarray:
    """One chunk task of a lazy ``read_zarr`` (``fingerprint``: see :func:`read_chunk`)."""
    return read_chunk(storage, name, region, fingerprint)
