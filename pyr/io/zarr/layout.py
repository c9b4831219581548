"""The layout of a pyr Zarr store: which arrays, chunks, codecs and CF attributes.

Pure description (:class:`Layout`) plus :func:`store_files`, which has
zarr-python build the store's metadata and coordinate arrays (not the
pixels) in memory and returns their bytes; no I/O on any real store.
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import attrs
import numpy as np

from pyr._imports import ensure
from pyr._lazy import is_lazy
from pyr._nodata import is_nan
from pyr._warnings import quiet
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.io import cf
from pyr.raster import Raster

__all__ = [
    "DEFAULT_NAME",
    "FORMAT_VERSION",
    "Layout",
    "StoreFiles",
    "consolidate",
    "create_arrays",
    "decode_fill",
    "encode_fill",
    "layout_of",
    "pyr_attrs",
    "store_files",
]

FORMAT_VERSION = 1
DEFAULT_NAME = "band_data"

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
    # "auto" (pyr's default codec), None (no compression) or a codec given to zarr-python's
    # ``create_array(compressors=...)``; compared by its config (see ``compressor_key``)
    compressor: Any = attrs.field(default="auto", eq=False)
    # each band's raw * scale + offset (``None``: none), written as CF or per-band attributes
    scales: tuple[float, ...] | None = None
    offsets: tuple[float, ...] | None = None

    @property
    def compressor_key(self) -> str:
        """A stable text for the compressor choice (it goes into the write graph's token)."""
        c = self.compressor
        if c is None or isinstance(c, str):
            return repr(c)
        for method in ("get_config", "to_dict"):  # numcodecs codecs; zarr v3 codecs
            if hasattr(c, method):
                return repr(sorted(getattr(c, method)().items()))
        return repr(c)

    @property
    def dims(self) -> tuple[str, ...]:
        """The data variable's dimension names."""
        return ("time", "band", "y", "x") if self.kind == "cube" else ("band", "y", "x")


def _compressor(zarr_format: int, choice: Any = "auto") -> Any:
    """The default codec for ``choice="auto"``, else ``choice`` itself (``None``: no compression)."""
    if not (isinstance(choice, str) and choice == "auto"):
        return choice
    # LZ4 through Blosc with byte shuffle (zarr v2's own default compressor), chosen
    # for encode and decode speed by benchmarks/codecs.py (docs/design.md, "Why Blosc
    # LZ4"). Readable by GDAL's Zarr driver.
    if zarr_format == 2:
        import numcodecs

        return numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
    ensure("zarr")
    from zarr.codecs import BloscCodec

    return BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


def encode_fill(nodata: float | int | None, dtype: str, zarr_format: int) -> Any:
    """The ``_FillValue`` attribute for ``nodata``, encoded as the pinned xarray reads it.

    Zarr v2: the value itself (``"NaN"`` for NaN). Zarr v3: xarray decodes a
    float ``_FillValue`` from the base64 of its little-endian float64 bytes
    (``xarray.backends.zarr.FillValueCoder``), and refuses a plain number;
    integers stay numbers.
    """
    if nodata is None:
        return None
    if zarr_format == 3 and np.dtype(dtype).kind == "f":
        return base64.standard_b64encode(struct.pack("<d", float(nodata))).decode()
    if is_nan(nodata):
        return "NaN"
    return nodata


def decode_fill(value: Any, dtype: Any, zarr_format: int) -> Any:
    """The nodata value of a ``_FillValue`` attribute (the inverse of :func:`encode_fill`)."""
    if isinstance(value, str):
        if value in ("NaN", "nan", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
        if zarr_format == 3 and np.dtype(dtype).kind == "f":
            try:
                return struct.unpack("<d", base64.standard_b64decode(value))[0]
            except (ValueError, struct.error):
                return value
    return value


def create_arrays(group: Any, layout: Layout) -> None:
    """Create the data variable and the coordinate arrays of ``layout`` in the zarr ``group``."""
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
        data_attrs["_FillValue"] = encode_fill(layout.nodata, layout.dtype, fmt)
    data_attrs.update(cf.factor_attrs(layout.scales, layout.offsets))
    fill = layout.nodata
    if fill is None and fmt == 3:
        fill = 0
    group.create_array(
        layout.name,
        shape=layout.shape,
        chunks=layout.chunks,
        dtype=layout.dtype,
        fill_value=fill,
        compressors=_compressor(fmt, layout.compressor),
        attributes=attrs_with_dims(data_attrs, dims),
        **dims_kw(dims),
    )


@attrs.frozen(eq=False, repr=False)
class StoreFiles:
    """The bytes of a complete store's metadata and coordinates, made in memory by zarr-python.

    ``arrays``: every object but the pixels and the group's own metadata
    (array metadata, coordinate chunks). ``root``: the group's metadata,
    marked complete and consolidated, in the order a writer puts them last
    (root attributes, then the group, then the consolidated metadata; one
    ``zarr.json`` in v3): no reader opens the group before they land. Keys
    are store keys (``"band_data/.zarray"``). An opaque object, so that dask
    never looks inside it for task keys.
    """

    arrays: tuple[tuple[str, bytes], ...]
    root: tuple[tuple[str, bytes], ...]

    def __repr__(self) -> str:
        return f"StoreFiles({len(self.arrays)} arrays, {len(self.root)} root)"


_ROOT_ORDER = (".zattrs", ".zgroup", ".zmetadata", "zarr.json")


def store_files(layout: Layout) -> StoreFiles:
    """Build the store described by ``layout`` in memory and return its files (no pixels).

    zarr-python creates the group and arrays in a ``MemoryStore`` and
    consolidates the metadata, so a store written from these bytes is the
    store zarr-python would write; the protocols then only put files or
    objects, on the workers, without zarr-python's event loop.
    """
    ensure("zarr")
    import zarr
    from zarr.storage import MemoryStore

    objects: dict[str, Any] = {}
    store = MemoryStore(objects)
    group = zarr.open_group(
        store,
        mode="w",
        zarr_format=2 if layout.zarr_format == 2 else 3,
        attributes={"pyr": pyr_attrs(layout, complete=True)},
    )
    create_arrays(group, layout)
    consolidate(store)
    files = {k: v.to_bytes() for k, v in objects.items()}
    root = tuple((k, files[k]) for k in _ROOT_ORDER if k in files)
    return StoreFiles(tuple((k, v) for k, v in files.items() if k not in _ROOT_ORDER), root)


def consolidate(store: Any) -> None:
    """Consolidate the metadata of the group in a zarr store."""
    ensure("zarr")
    import zarr

    # zarr-python warns that consolidated metadata is not (yet) in the v3 spec;
    # xarray and zarr-python read it, which is what it is written for.
    with quiet(UserWarning, "Consolidated metadata"):
        zarr.consolidate_metadata(store)


def pyr_attrs(layout: Layout, complete: bool) -> dict[str, Any]:
    """The root group's ``pyr`` attribute."""
    return {"version": FORMAT_VERSION, "complete": complete, "kind": layout.kind, "name": layout.name}


def layout_of(obj: Raster | Cube, name: str, zarr_format: int, compressor: Any = "auto") -> Layout:
    """The layout of the store ``write_zarr`` writes for ``obj`` (chunks from its dask chunks)."""
    if not obj.geobox.is_axis_aligned:
        raise InvalidArgument(
            "write_zarr needs an axis-aligned grid (CF x/y coordinates); this raster's transform is "
            f"rotated or sheared: {tuple(obj.geobox.transform)[:6]}."
        )
    if is_lazy(obj.data):
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
        compressor=compressor,
        scales=obj.scales,
        offsets=obj.offsets,
    )


def _times_or_positions(cube: Cube) -> np.ndarray:
    if cube.times is not None:
        return cube.times
    return np.datetime64("1970-01-01", "ns") + np.arange(cube.ntimes).astype("timedelta64[s]")


def _eager_chunks(obj: Raster | Cube) -> tuple[int, ...]:
    side = 1024
    spatial = (min(side, max(obj.shape[-2], 1)), min(side, max(obj.shape[-1], 1)))
    return ((1, obj.count) if isinstance(obj, Cube) else (obj.count,)) + spatial
