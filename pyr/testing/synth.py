"""Synthetic Sentinel-2-like L2A band series (B04, red) for demos and benchmarks.

A scene is a patchwork of rotated agricultural parcels whose red reflectance
follows a per-field phenology curve, with forest, towns, lakes and a river
that do not move between dates, fine texture, per-date clouds with their
shadows, and a diagonal swath edge of nodata (0) as in real tiles. Some dates
are "cloud-masked": cloudy pixels are set to nodata, as after applying SCL.

Everything is computed from coarse random grids upsampled bilinearly, strip
by strip (:mod:`pyr.testing._scene`), so memory stays a few strips whatever
the tile's size. The pixels depend only on ``(size, date_index, seed)``.

Examples
--------
>>> from pyr.testing.synth import scene_array
>>> a = scene_array(256, 0, seed=1)
>>> a.shape, a.dtype.name, bool((a == 0).any()), int(a.max()) > 1000
((256, 256), 'uint16', True, True)
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from pyr.errors import InvalidArgument, WriteError
from pyr.testing._scene import CRS, ORIGIN, RESOLUTION, _check, _Date, _Landscape, _strips, scene_array, transform_of

__all__ = ["CRS", "ORIGIN", "RESOLUTION", "make_series", "scene_array", "times_of", "transform_of"]

_NAME = re.compile(r"B04_(\d{8})\.tif$")
_TAG = "PYR_SYNTH"


# ----------------------------------------------------------------------------- files


def times_of(paths: Iterable[Any]) -> list[_dt.datetime]:
    """The acquisition dates parsed from ``B04_<YYYYMMDD>.tif`` names.

    Examples
    --------
    >>> times_of(["out/B04_20240105.tif", "B04_20240110.tif"])
    [datetime.datetime(2024, 1, 5, 0, 0), datetime.datetime(2024, 1, 10, 0, 0)]
    """
    out = []
    for p in paths:
        m = _NAME.search(str(p))
        if m is None:
            raise InvalidArgument(f"{str(p)!r}: expected a name like 'B04_20240105.tif'.")
        out.append(_dt.datetime.strptime(m.group(1), "%Y%m%d"))
    return out


def _tag(size: int, date_index: int, seed: int, block: int) -> str:
    return f"size={size} date={date_index} seed={seed} block={block} v=1"


def _is_cached(path: Path, tag: str) -> bool:
    import rasterio
    from rasterio.errors import RasterioError

    if not path.is_file():
        return False
    try:
        with rasterio.open(path) as ds:
            return bool(ds.tags().get(_TAG) == tag)
    except (RasterioError, OSError):
        return False


def _write_date(path: Path, size: int, date_index: int, seed: int, block: int, tag: str) -> None:
    import rasterio
    from rasterio.shutil import copy as gdal_copy

    date = _Date(_Landscape(size, seed), date_index)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp.tif")
    part = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    profile = {
        "driver": "GTiff",
        "width": size,
        "height": size,
        "count": 1,
        "dtype": "uint16",
        "crs": CRS,
        "transform": transform_of(size),
        "nodata": 0,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "none",
        "BIGTIFF": "IF_SAFER",
    }
    try:
        with rasterio.Env(GDAL_CACHEMAX=256 * 2**20, GDAL_NUM_THREADS="ALL_CPUS"):
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.update_tags(**{_TAG: tag})
                dst.set_band_description(1, "B04")
                # render strips in a small thread pool (numpy releases the GIL), write in order
                strips = _strips(size)
                with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
                    for (r0, r1), arr in zip(strips, pool.map(lambda s: date.strip(*s), strips), strict=True):
                        dst.write(arr[None], window=((r0, r1), (0, size)))
            gdal_copy(
                str(tmp),
                str(part),
                driver="COG",
                COMPRESS="DEFLATE",
                LEVEL=1,  # as small as level 6 with the predictor, twice as fast
                PREDICTOR="YES",
                BLOCKSIZE=block,
                OVERVIEWS="AUTO",
                OVERVIEW_RESAMPLING="AVERAGE",
                NUM_THREADS="ALL_CPUS",
                BIGTIFF="IF_SAFER",
            )
        os.replace(part, path)
    except Exception as err:
        part.unlink(missing_ok=True)
        raise WriteError(f"Cannot write synthetic scene {str(path)!r}: {err}") from err
    finally:
        tmp.unlink(missing_ok=True)


def make_series(
    out_dir: Any,
    *,
    size: int = 10980,
    dates: int = 10,
    seed: int = 0,
    block: int = 1024,
    start: str | _dt.date = "2024-01-05",
    every_days: int = 5,
    overwrite: bool = False,
) -> list[Path]:
    """Write (or reuse) a series of synthetic Sentinel-2 L2A B04 COGs.

    Files are ``out_dir/B04_<YYYYMMDD>.tif``: uint16, nodata 0, EPSG:32631,
    10 m, top-left corner :data:`ORIGIN`, DEFLATE, ``block`` x ``block``
    tiles and overviews (GDAL's COG driver). A file already there from the
    same ``size``, ``seed``, date and ``block`` is kept unless ``overwrite``.

    Parameters
    ----------
    out_dir
        Folder to write to (created if needed).
    size
        Rows and columns (10980 is a full 10 m tile).
    dates
        Number of acquisitions, ``every_days`` apart from ``start``.
    seed
        The landscape and weather; the same arguments give the same files.
    block
        Internal tile size (a multiple of 16).

    Returns
    -------
    list of pathlib.Path
        The files, in date order.

    Examples
    --------
    >>> import tempfile
    >>> paths = make_series(tempfile.mkdtemp(), size=256, dates=2, block=128)
    >>> [p.name for p in paths]
    ['B04_20240105.tif', 'B04_20240110.tif']
    """
    _check(size, 0, seed)
    if isinstance(dates, bool) or not isinstance(dates, int) or dates < 1:
        raise InvalidArgument(f"dates={dates!r}: expected an int >= 1.")
    if isinstance(block, bool) or not isinstance(block, int) or block < 16 or block % 16:
        raise InvalidArgument(f"block={block!r}: expected a multiple of 16.")
    if isinstance(every_days, bool) or not isinstance(every_days, int) or every_days < 1:
        raise InvalidArgument(f"every_days={every_days!r}: expected an int >= 1.")
    try:
        first = _dt.date.fromisoformat(start) if isinstance(start, str) else start
    except ValueError:
        raise InvalidArgument(f"start={start!r}: expected an ISO date like '2024-01-05'.") from None
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise WriteError(f"Cannot create the folder {str(out)!r}: {err}") from err
    paths = []
    for i in range(dates):
        day = first + _dt.timedelta(days=i * every_days)
        path = out / f"B04_{day:%Y%m%d}.tif"
        tag = _tag(size, i, seed, block)
        if overwrite or not _is_cached(path, tag):
            _write_date(path, size, i, seed, block, tag)
        paths.append(path)
    return paths


def _dates(paths: Sequence[Any]) -> np.ndarray:
    """``times_of`` as ``datetime64[ns]`` (handy for cubes)."""
    return np.array(times_of(paths), dtype="datetime64[ns]")
