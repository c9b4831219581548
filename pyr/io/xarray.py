"""xarray interop: ``to_xarray`` and ``from_xarray``, with rioxarray-compatible georeferencing.

A ``Raster`` becomes a ``DataArray`` named ``"band_data"`` with dims
``(band, y, x)`` (a ``Cube``: ``(time, band, y, x)``), cell-centre ``x``/``y``
coordinates, ``band`` names, ``time`` as ``datetime64[us]`` and a 0-d
``spatial_ref`` coordinate carrying the CRS and ``GeoTransform`` the way
rioxarray writes them, so ``da.rio.crs`` and ``da.rio.transform()`` work.
Nodata goes to ``attrs["_FillValue"]`` (as ``rioxarray.open_rasterio`` puts
it), so ``da.rio.nodata`` is the raster's nodata. Lazy (dask) data stays lazy.

xarray (and rioxarray, when installed) are imported inside the functions,
never at ``import pyr``.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
from affine import Affine

from pyr._curry import curried
from pyr._lazy import is_lazy
from pyr._values import band_names
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.io import cf
from pyr.raster import Raster
from pyr.types import parse_nodata, parse_times

if TYPE_CHECKING:  # xarray is an optional extra: imported when a conversion runs
    import xarray

__all__ = ["from_xarray", "to_xarray"]

NAME = "band_data"
GRID_MAPPING = "spatial_ref"
_X_NAMES = ("x", "longitude", "lon")
_Y_NAMES = ("y", "latitude", "lat")


def _import_xarray() -> Any:
    try:
        import xarray
    except ImportError as err:  # pragma: no cover - xarray is in the test extra
        raise ImportError("pyr.to_xarray/from_xarray need xarray: pip install 'pyr[xarray]'.") from err
    with contextlib.suppress(ImportError):  # registers the ``.rio`` accessor on what we return
        import rioxarray  # noqa: F401
    return xarray


def _read_only(data: Any) -> Any:
    """A read-only view of a numpy array (values are never mutated); dask as is."""
    if is_lazy(data):
        return data
    view = np.asarray(data).view()
    view.flags.writeable = False
    return view


# --- to_xarray --------------------------------------------------------------------


def _to_xarray(obj: Raster | Cube) -> xarray.DataArray:
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"to_xarray expects a Raster or Cube, not {type(obj).__name__}.")
    xr = _import_xarray()
    gb = obj.geobox
    coords: dict[str, Any] = {
        "band": ("band", np.array(obj.bands, dtype=str)),
        GRID_MAPPING: ((), np.int64(0), cf.grid_mapping_attrs(gb)),
    }
    if gb.is_axis_aligned:  # rotated grids: the GeoTransform alone locates them
        y, x = gb.coords()
        yattrs, xattrs = cf.xy_attrs(gb)
        coords["y"] = ("y", y, yattrs)
        coords["x"] = ("x", x, xattrs)
    dims: tuple[str, ...] = ("band", "y", "x")
    if isinstance(obj, Cube):
        dims = ("time", *dims)
        if obj.times is not None:
            coords["time"] = ("time", np.array(obj.times), {"standard_name": "time", "axis": "T"})
    attrs: dict[str, Any] = {}
    if obj.nodata is not None:
        attrs["_FillValue"] = obj.dtype.type(obj.nodata)
    attrs.update(cf.factor_attrs(obj.scales, obj.offsets))
    da: xarray.DataArray = xr.DataArray(_read_only(obj.data), coords=coords, dims=dims, name=NAME, attrs=attrs)
    # As rioxarray: grid_mapping in the encoding; "coordinates" makes xarray's
    # writers list spatial_ref so that it reads back as a coordinate.
    da.encoding.update(grid_mapping=GRID_MAPPING, coordinates=GRID_MAPPING)
    return da


@curried
def to_xarray(obj: Raster | Cube) -> xarray.DataArray:
    """An ``xarray.DataArray`` of a ``Raster`` or ``Cube``, georeferenced for rioxarray.

    Dims are ``(band, y, x)`` for a raster and ``(time, band, y, x)`` for a
    cube; coordinates are ``x``/``y`` cell centres (float64, CF attributes;
    omitted for rotated grids), ``band`` (the band names), ``time``
    (``datetime64[us]``; omitted when the cube has no times) and a 0-d
    ``spatial_ref`` with ``crs_wkt``, ``spatial_ref``, ``GeoTransform`` and
    the CF grid-mapping parameters. Nodata is ``attrs["_FillValue"]``.
    Recorded scales and offsets go to ``attrs`` as ``rioxarray.open_rasterio``
    (``mask_and_scale=False``) puts them: ``scale_factor``/``add_offset``
    when every band shares them, else ``scales``/``offsets``, one per band.
    The data is not copied: a dask array stays lazy, a numpy array is shared
    as a read-only view.

    Parameters
    ----------
    obj
        A :class:`~pyr.Raster` or :class:`~pyr.Cube`.

    Returns
    -------
    xarray.DataArray
        Named ``"band_data"``; ``.rio.crs``, ``.rio.transform()`` and
        ``.rio.nodata`` give the grid's CRS, transform and nodata when
        rioxarray is installed.

    Examples
    --------
    >>> import numpy as np
    >>> from toolz import pipe
    >>> from pyr import GeoBox, Raster, rescale, to_xarray
    >>> gb = GeoBox.from_bounds((0, 0, 30, 20), 10, "EPSG:32631")
    >>> r = Raster(np.arange(6, dtype="uint16").reshape(1, 2, 3), gb, nodata=0)
    >>> da = to_xarray(r)
    >>> da.dims, da.x.values.tolist(), int(da.rio.crs.to_epsg()), da.rio.nodata
    (('band', 'y', 'x'), [5.0, 15.0, 25.0], 32631, np.uint16(0))
    >>> pipe(r, rescale(scale=0.5), to_xarray).dtype
    dtype('float32')
    """
    return _to_xarray(obj)


# --- from_xarray ------------------------------------------------------------------


def _find_dim(da: Any, names: tuple[str, ...], axis: str) -> Hashable:
    for name in names:
        if name in da.dims:
            return name
    for name in da.dims:
        if name in da.coords:
            a = da.coords[name].attrs
            standard = str(a.get("standard_name", "")).lower()
            if str(a.get("axis", "")).upper() == axis or standard in (
                ("longitude", "projection_x_coordinate") if axis == "X" else ("latitude", "projection_y_coordinate")
            ):
                return name  # type: ignore[no-any-return]
    raise InvalidArgument(f"from_xarray: cannot find the {axis.lower()} dimension among dims {tuple(da.dims)}.")


def _grid_mapping(da: Any) -> dict[str, Any]:
    name = da.encoding.get("grid_mapping", da.attrs.get("grid_mapping", GRID_MAPPING))
    if name in da.coords:
        return dict(da.coords[name].attrs)
    return {}


def _crs_wkt_from_cf(gm: Mapping[str, Any], da: Any) -> str | None:
    """The CRS as WKT from CF grid-mapping parameters or a ``crs`` attribute (no WKT present)."""
    from rasterio.crs import CRS

    try:
        if gm.get("grid_mapping_name"):
            import pyproj

            return str(pyproj.CRS.from_cf(dict(gm)).to_wkt())
        if da.attrs.get("crs") is not None:
            return str(CRS.from_user_input(da.attrs["crs"]).to_wkt())
    except Exception as err:
        raise InvalidArgument(f"from_xarray: the grid mapping / crs attribute does not describe a CRS: {err}") from err
    return None


def _coord_values(da: Any, dim: Hashable) -> np.ndarray | None:
    if dim in da.coords and da.coords[dim].ndim == 1:
        return np.asarray(da.coords[dim].values, dtype="float64")
    return None


def _geobox(da: Any, ydim: Hashable, xdim: Hashable) -> GeoBox:
    """The grid: ``GeoTransform`` (shifted if the array was sliced) else the x/y coordinates.

    rioxarray also takes the resolution from ``GeoTransform`` and the origin from
    the coordinates. When the coordinates sit a whole number of cells from the
    ``GeoTransform``'s (``isel`` slicing), the transform is shifted by exactly
    that many cells, as ``geobox[rows, cols]`` would; when they do not fit it
    at all (resampled, flipped), the coordinates alone define the grid.
    """
    shape = (int(da.sizes[ydim]), int(da.sizes[xdim]))
    gm = _grid_mapping(da)
    y, x = _coord_values(da, ydim), _coord_values(da, xdim)
    if not (gm.get("crs_wkt") or gm.get("spatial_ref")):
        wkt = _crs_wkt_from_cf(gm, da)
        if wkt is not None:
            gm = {**gm, "crs_wkt": wkt}
    gb = cf.geobox_from_cf(shape, y, x, gm)
    if not gm.get("GeoTransform") or x is None or y is None or not gb.is_axis_aligned or 0 in shape:
        return gb
    t = gb.transform
    shift = []
    for coord, origin, res in ((x, t.c, t.a), (y, t.f, t.e)):
        steps = (coord - (origin + res / 2)) / res
        k = round(float(steps[0]))
        expected = np.arange(k, k + len(coord), dtype="float64")
        if not np.allclose(steps, expected, rtol=0, atol=1e-6):
            no_gt = {key: v for key, v in gm.items() if key != "GeoTransform"}
            return cf.geobox_from_cf(shape, y, x, no_gt)
        shift.append(k)
    if shift == [0, 0]:
        return gb
    return GeoBox(shape, t @ Affine.translation(shift[0], shift[1]), gb.crs)


def _nodata(da: Any) -> Any:
    """Nodata as rioxarray reads it: NaN once xarray has masked the data, else the attribute."""
    encoded = da.encoding.get("_FillValue")
    if encoded is not None and "_FillValue" not in da.attrs:
        # xarray decoded (masked) the data with this fill value: nodata cells are NaN now.
        return math.nan if np.dtype(da.dtype).kind == "f" else _scalar(encoded)
    for key in ("_FillValue", "missing_value", "fill_value", "nodata"):
        value = da.attrs.get(key)
        if value is not None:
            try:
                return parse_nodata(_scalar(value), np.dtype(da.dtype), name=f"attrs[{key!r}]")
            except InvalidArgument:
                return None  # as pyr.read: a fill value the dtype cannot hold marks nothing
    return None


def _scalar(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _bands(da: Any, bdim: Hashable | None, count: int) -> tuple[str, ...] | None:
    if bdim is None or bdim not in da.coords:
        return None
    values = np.asarray(da.coords[bdim].values).reshape(-1)
    names = tuple(str(v) for v in values)
    if np.array_equal(values, np.arange(1, count + 1)):
        # rioxarray numbers bands 1..n and keeps their descriptions in ``long_name``.
        long_name = da.attrs.get("long_name")
        if isinstance(long_name, str) and count == 1:
            long_name = (long_name,)
        if isinstance(long_name, list | tuple) and len(long_name) == count:
            names = band_names(str(d) if d else None for d in long_name)
    return names if len(set(names)) == len(names) else None


def _times(da: Any, tdim: Hashable) -> np.ndarray | None:
    if tdim not in da.coords:
        return None
    values = np.asarray(da.coords[tdim].values)
    if values.dtype.kind in "iu" and np.array_equal(values, np.arange(len(values))):
        return None  # positions, not dates
    if values.dtype.kind in "iuf":
        raise InvalidArgument(
            f"from_xarray: coordinate {tdim!r} holds numbers ({values.dtype}), not dates; decode it first "
            "(xarray's decode_times) or drop it."
        )
    return parse_times(values, name=f"coordinate {tdim!r}")


def _from_xarray(da: Any) -> Raster | Cube:
    xr = _import_xarray()
    if not isinstance(da, xr.DataArray):
        hint = " (pick one variable, e.g. ds['band_data'])" if isinstance(da, xr.Dataset) else ""
        raise InvalidArgument(f"from_xarray expects an xarray.DataArray, not {type(da).__name__}{hint}.")
    ydim, xdim = _find_dim(da, _Y_NAMES, "Y"), _find_dim(da, _X_NAMES, "X")
    others = [d for d in da.dims if d not in (ydim, xdim)]
    tdim: Hashable | None = "time" if "time" in others else None
    rest = [d for d in others if d != tdim]
    if len(rest) > 1:
        raise InvalidArgument(
            f"from_xarray: dims {tuple(da.dims)} have more than one non-spatial, non-time dimension {tuple(rest)}."
        )
    bdim = rest[0] if rest else None
    order = [d for d in (tdim, bdim, ydim, xdim) if d is not None]
    data = da.transpose(*order).data
    if bdim is None:  # (time?, y, x) -> add a band axis
        data = data[..., None, :, :] if tdim is not None else data[None]
    data = _read_only(data)
    geobox = _geobox(da, ydim, xdim)
    nodata = _nodata(da)
    count = int(data.shape[-3])
    bands = _bands(da, bdim, count)
    # Factors in ``attrs`` describe raw values; once xarray decoded them they are in ``encoding`` and applied.
    scales, offsets = cf.factors_from_attrs(da.attrs, count, where=f"from_xarray: DataArray {da.name!r}")
    if tdim is not None:
        times = _times(da, tdim)
        return Cube(data, geobox, nodata=nodata, bands=bands, times=times, scales=scales, offsets=offsets)
    return Raster(data, geobox, nodata=nodata, bands=bands, scales=scales, offsets=offsets)


@curried
def from_xarray(da: Any) -> Raster | Cube:
    """A ``Raster`` (or a ``Cube`` when there is a ``time`` dim) from an ``xarray.DataArray``.

    The inverse of :func:`to_xarray`, and it reads what ``rioxarray.open_rasterio``
    and ``xarray.open_zarr`` return:

    - the ``y``/``x`` dims are found by name (``y``/``x``, ``lat``/``lon``,
      ``latitude``/``longitude``) or by CF ``axis``/``standard_name``;
    - the grid comes from the grid mapping's ``GeoTransform`` (shifted when
      the array was sliced), else from the cell-centre coordinates; the CRS
      from ``crs_wkt``/``spatial_ref``, else from CF grid-mapping parameters;
    - a third dim (whatever its name) is the band axis; a 2-D ``(y, x)`` array
      gets a band axis of one; ``time`` makes a ``Cube``, with ``times`` from
      the ``time`` coordinate (``None`` without one);
    - band names are the band coordinate's values (rioxarray's ``long_name``
      descriptions when the bands are numbered 1..n);
    - nodata as ``da.rio.nodata`` reads it: ``attrs["_FillValue"]``, or NaN
      when xarray has already masked a float array (``_FillValue`` in
      ``encoding``); a fill value the dtype cannot hold is no nodata (as in
      :func:`pyr.read`);
    - scales and offsets from ``attrs`` (``scale_factor``/``add_offset``, or
      per-band ``scales``/``offsets``): the values are raw. Once xarray has
      decoded them (they are in ``encoding``) the values are physical and no
      factors are recorded.

    The data is not copied nor computed: dask stays lazy; numpy is shared
    (read-only view).

    Parameters
    ----------
    da
        An ``xarray.DataArray`` with ``y`` and ``x`` dims.

    Returns
    -------
    Raster or Cube

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster, from_xarray, to_xarray
    >>> gb = GeoBox.from_bounds((0, 0, 30, 20), 10, "EPSG:32631")
    >>> r = Raster(np.arange(6, dtype="uint16").reshape(1, 2, 3), gb, nodata=0)
    >>> back = from_xarray(to_xarray(r))
    >>> back.geobox == gb, back.nodata, back.bands
    (True, 0, ('1',))
    >>> from_xarray(to_xarray(r).isel(x=slice(1, 3))).geobox == gb[:, 1:3]
    True
    """
    return _from_xarray(da)
