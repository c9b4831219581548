"""In the children of the crash harness: what each reader sees at a target.

:func:`observe` opens the target with pyr (``read_zarr`` or ``read``), plain
``xarray.open_zarr`` (no options but ``storage_options``) and GDAL through
rasterio (``ZARR:"<store>":/band_data``, ``/vsis3/`` on S3; the file itself
for a GeoTIFF) and names what it saw: ``new`` or ``old`` (values, grid and
times equal to the data after or before the call), ``absent`` (nothing
there), ``refused`` (pyr's ``IncompleteStore``), ``fails: ...`` (another
error) or ``wrong: ...`` (it opened something else, e.g. fill where chunks
were never written). :func:`listing` lists what a place holds.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["dump", "listing", "observe"]


def dump(path: str, obj: Any) -> None:
    """Save ``obj`` as JSON at ``path`` (a child's result)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f)


def listing(root: str, opts: Mapping[str, Any] | None) -> list[str]:
    """Every file under ``root`` (a folder or a URL prefix), relative, sorted."""
    if "://" not in root:
        out = []
        for dirpath, dirnames, filenames in os.walk(root):
            rel = os.path.relpath(dirpath, root)
            for name in [*filenames, *(d for d in dirnames if not os.listdir(os.path.join(dirpath, d)))]:
                out.append(os.path.normpath(os.path.join(rel, name)))
        return sorted(out)
    import fsspec

    fs, path = fsspec.core.url_to_fs(root, **(opts or {}))
    fs.invalidate_cache()
    return sorted(p[len(path.rstrip("/")) + 1 :] for p in fs.find(path))


def observe(
    readers: Iterable[str],
    kind: str,
    target: str,
    opts: Mapping[str, Any] | None,
    old: Callable[[], Any],
    new: Callable[[], Any],
    gdal_env: Mapping[str, str],
) -> dict[str, str]:
    """What each reader sees at ``target``: old, new, absent, refused, fails: ... or wrong: ..."""
    expected = {"new": _eager(new()), "old": _eager(old())}
    out = {}
    for reader in readers:
        try:
            out[reader] = _see(reader, kind, target, opts, expected, gdal_env)
        except Exception as err:
            out[reader] = _failure(reader, err)
    return out


def _eager(obj: Any) -> Any:
    if obj is None:
        return None
    return type(obj)(np.asarray(obj.data), obj.geobox, **_meta(obj))


def _meta(obj: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"nodata": obj.nodata, "bands": obj.bands}
    if hasattr(obj, "times"):
        meta["times"] = obj.times
    return meta


def _failure(reader: str, err: Exception) -> str:
    from pyr.errors import IncompleteStore

    full = f"{type(err).__name__}: {err}".replace("\n", " ")
    text = full[:160]
    if isinstance(err, IncompleteStore):
        return "refused"
    missing = ("does not exist", "No such file", "NoSuchKey", "GroupNotFound", "not found", "No group found")
    if isinstance(err, FileNotFoundError) or any(m in full for m in missing):
        return f"absent ({text})" if reader != "pyr" else "absent"
    return f"fails: {text}"


def _see(
    reader: str,
    kind: str,
    target: str,
    opts: Mapping[str, Any] | None,
    expected: dict[str, Any],
    env: Mapping[str, str],
) -> str:
    if reader == "pyr":
        import pyr

        got = pyr.read_zarr(target, storage_options=opts) if kind == "zarr" else pyr.read(target)
        return _judge(lambda exp: _pyr_equal(got, exp), expected, got.data)
    if reader == "xarray":
        import xarray as xr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "no consolidated metadata": the fallback is what a user gets
            ds = xr.open_zarr(target, storage_options=opts) if opts else xr.open_zarr(target)
        var = ds["band_data"]
        values = np.asarray(var.values, dtype="float64")
        return _judge(lambda exp: _xarray_equal(ds, values, exp), expected, values)
    import rasterio

    path = target
    if "://" in target:
        path = "/vsis3/" + target.split("://", 1)[1]
    os.environ.update(env)  # GDAL reads them (rasterio.Env refuses AWS credentials as options)
    with rasterio.Env(), rasterio.open(f'ZARR:"{path}":/band_data' if kind == "zarr" else path) as src:
        values = src.read()
        transform = src.transform
    return _judge(lambda exp: _gdal_equal(values, transform, exp), expected, values)


def _judge(equal: Callable[[Any], bool], expected: dict[str, Any], values: Any) -> str:
    for label in ("new", "old"):
        if expected[label] is not None and equal(expected[label]):
            return label
    arr = np.asarray(values, dtype="float64")
    fill = float(np.mean((arr == 0) | np.isnan(arr))) if arr.size else 0.0
    return f"wrong: shape {arr.shape}, {fill:.0%} fill"


def _pyr_equal(got: Any, exp: Any) -> bool:
    from pyr.testing import assert_raster_equal

    try:
        assert_raster_equal(got, exp)
    except AssertionError:
        return False
    return True


def _xarray_equal(ds: Any, values: np.ndarray, exp: Any) -> bool:
    want = np.asarray(exp.data, dtype="float64")
    if exp.nodata is not None:
        want = np.where(want == exp.nodata, np.nan, want)
    if values.shape != want.shape or not np.array_equal(values, want, equal_nan=True):
        return False
    y, x = exp.geobox.coords()
    if not (np.allclose(ds["y"].values, y) and np.allclose(ds["x"].values, x)):
        return False
    if getattr(exp, "times", None) is not None:
        return bool(np.array_equal(ds["time"].values.astype("datetime64[ns]"), exp.times))
    return "time" not in ds.dims


def _gdal_equal(values: np.ndarray, transform: Any, exp: Any) -> bool:
    want = np.asarray(exp.data)
    want = want.reshape(-1, *want.shape[-2:])
    if values.shape != want.shape or not np.array_equal(values, want, equal_nan=values.dtype.kind == "f"):
        return False
    return bool(transform.almost_equals(exp.geobox.transform))
