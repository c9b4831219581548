"""``pyr quicklook SOURCE OUT.png``: a georeferenced picture of a raster or store, read from an overview."""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np

from pyr._nodata import is_value
from pyr._values import band_names
from pyr.cli._common import add_cloud_arguments, env_for, is_zarr, units_of
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.io.gdal.sources import display_name

NAME = "quicklook"
HELP = "draw a PNG of a raster or Zarr store (fast: reads an overview when there is one)"
DESCRIPTION = """\
Draw one band of SOURCE (a raster file, URL or Zarr store) into OUT.png with
a colour bar, a title and easting/northing axes in the source's CRS.

GeoTIFFs are read from the overview closest to ~1000 pixels across (so a
10980 x 10980 Sentinel-2 band takes a fraction of a second); sources without
overviews are read chunk by chunk and decimated. Nodata is transparent.
Without matplotlib (the `plot` extra) the picture is plain greyscale, with
no axes, colour bar or title.

examples:
  pyr quicklook B04.tif b04.png
  pyr quicklook cube.zarr cube.png --time 2
  pyr quicklook multiband.tif nir.png --band 4 --cmap viridis
"""

TARGET = 1000  # pixels across a picture


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pyr quicklook``."""
    parser.add_argument("source", metavar="SOURCE", help="raster file, URL or Zarr store")
    parser.add_argument("out", metavar="OUT.png", help="the picture to write")
    parser.add_argument("--band", default="1", metavar="B", help="band number (1-based, as GDAL) or name; default 1")
    parser.add_argument(
        "--overview",
        type=int,
        metavar="K",
        help="read overview K (0 is the finest; default: the one closest to ~1000 px across)",
    )
    parser.add_argument("--time", type=int, default=0, metavar="T", help="date index of a cube store (default 0)")
    parser.add_argument("--cmap", default="gray", help="matplotlib colour map (default gray; others need matplotlib)")
    add_cloud_arguments(parser)


def pick_overview(shape: tuple[int, int], factors: tuple[int, ...], target: int = TARGET) -> int | None:
    """The coarsest overview still at least ``target`` pixels across (``None``: the full resolution).

    >>> pick_overview((10980, 10980), (2, 4, 8, 16))
    2
    >>> pick_overview((1098, 1098), (2, 4)) is None
    True
    """
    side = max(shape)
    best = None
    for k, f in enumerate(factors):
        if -(-side // f) >= target:
            best = k
    return best


def ordinal(n: int) -> str:
    """``n`` as an English ordinal.

    >>> [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '13th', '21st', '22nd', '23rd', '101st', '111th']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def band_index(band: str, names: tuple[str, ...], source: str) -> int:
    """The 0-based index of ``--band`` (a 1-based number or a band name)."""
    if band.isdigit():
        i = int(band) - 1
        if not 0 <= i < len(names):
            raise InvalidArgument(f"--band {band}: {source!r} has bands 1..{len(names)}.")
        return i
    if band in names:
        return names.index(band)
    raise InvalidArgument(f"--band {band!r}: {source!r} has no band of that name (bands: {', '.join(names)}).")


def _masked(values: np.ndarray, nodata: Any) -> np.ndarray:
    arr = values.astype("float64")
    if is_value(nodata):
        arr[values == nodata] = np.nan
    return arr


def _tiff_layer(source: str, args: argparse.Namespace) -> tuple[Any, str, str]:
    """The raster to draw (eager or lazy), plus a description of the level read, and the band name."""
    from pyr.io.tiff import read, read_header, source_spec

    env = env_for(source, args)
    header = read_header(source_spec(source, env=env))
    names = band_names(header.descriptions)
    i = band_index(args.band, names, display_name(source))
    k = args.overview
    if k is None:
        k = pick_overview(header.geobox.shape, header.overviews)
    elif not 0 <= k < len(header.overviews):
        have = f"overviews 0..{len(header.overviews) - 1}" if header.overviews else "no overviews"
        raise InvalidArgument(f"--overview {k}: {display_name(source)!r} has {have}.")
    level = "full resolution" if k is None else f"overview {k} (1/{header.overviews[k]})"
    raster = read(source, bands=i, overview=k, env=env, chunks="auto")
    return raster, level, names[i]


def _zarr_layer(source: str, args: argparse.Namespace) -> tuple[Any, str, str]:
    from pyr.cube import Cube
    from pyr.io.zarr import read_zarr
    from pyr.raster import Raster

    obj = read_zarr(source, chunks="auto")
    i = band_index(args.band, obj.bands, display_name(source))
    level = "full resolution"
    if isinstance(obj, Cube):
        n = obj.shape[0]
        if not -n <= args.time < n:
            raise InvalidArgument(f"--time {args.time}: {display_name(source)!r} has dates 0..{n - 1}.")
        when = "" if obj.times is None else f" {np.datetime_as_string(obj.times[args.time], unit='D')}"
        level += f", date {args.time % n}{when}"
        obj = Raster(obj.data[args.time], obj.geobox, nodata=obj.nodata, bands=obj.bands)
    band = Raster(obj.data[i : i + 1], obj.geobox, nodata=obj.nodata, bands=(obj.bands[i],))
    return band, level, obj.bands[i]


def draw(
    source: str, out: str, args: argparse.Namespace, heading: str | None = None
) -> tuple[tuple[int, int], tuple[int, int], str]:
    """Write the picture (titled ``heading``, default the source); returns (picture size, cells read, level read)."""
    from pyr._lazy import is_lazy
    from pyr.cli._plot import check_png_path, decimated_geobox, render

    check_png_path(out)
    raster, level, band = _zarr_layer(source, args) if is_zarr(source) else _tiff_layer(source, args)
    geobox: GeoBox = raster.geobox
    step = max(1, math.ceil(max(geobox.shape) / (2 * TARGET)))
    data = raster.data[0, ::step, ::step]
    if is_lazy(data):
        data = data.compute()
    if step > 1:
        geobox = decimated_geobox(geobox, step)
        level += f", every {ordinal(step)} pixel"
    arr = _masked(np.asarray(data), raster.nodata)
    res = abs(geobox.resolution[0]) if geobox.is_axis_aligned else float("nan")
    shape = f"{arr.shape[0]} x {arr.shape[1]} px at {res:.4g} {units_of(geobox.crs)}"
    title = f"{heading or display_name(source)}\nband {band}, {level}: {shape}"
    size = render(arr, geobox, out, title=title, label=f"band {band}", cmap=args.cmap)
    return size, (int(arr.shape[0]), int(arr.shape[1])), level


def run(args: argparse.Namespace) -> int:
    """Draw the picture and say what was read."""
    t0 = time.perf_counter()
    (w, h), (rows, cols), level = draw(args.source, args.out, args)
    from pyr.cli._plot import has_matplotlib

    plain = "" if has_matplotlib() else " (plain greyscale: matplotlib is not installed)"
    print(
        f"wrote {args.out} ({w} x {h} px){plain} from {level}, {rows} x {cols} cells,"
        f" in {time.perf_counter() - t0:.2f} s"
    )
    return 0
