"""``pyr info SOURCE...``: grid, CRS, dtype, nodata, bands, blocks and overviews of rasters and Zarr stores."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np

from pyr.cli._common import add_cloud_arguments, crs_text, env_for, is_zarr, units_of
from pyr.io.gdal.sources import display_name

NAME = "info"
HELP = "describe rasters (GeoTIFF/COG, local or URL) and pyr/CF Zarr stores"
DESCRIPTION = """\
Print what pyr sees in each SOURCE without reading pixels: grid (shape,
transform), CRS, resolution, bounds, dtype, nodata, band names, internal
block shape, overviews (GeoTIFFs), chunks and dates (Zarr stores).

SOURCE is a local path, file://, http(s)://, s3://, gs://, az:// URL or GDAL
/vsi path to a raster, or a Zarr store written by pyr (or xarray/rioxarray).

examples:
  pyr info B04.tif
  pyr info https://host/S2A_31UFT_20240105_0_L2A/B04.tif
  pyr info --aws-unsigned s3://sentinel-cogs/sentinel-s2-l2a-cogs/31/U/FT/2024/1/S2A_31UFT_20240105_0_L2A/B04.tif
  pyr info cube.zarr
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pyr info``."""
    parser.add_argument("sources", nargs="+", metavar="SOURCE", help="raster file, URL or Zarr store")
    add_cloud_arguments(parser)


def _fmt(value: float) -> str:
    return f"{value:.10g}"


def _grid_lines(geobox: Any) -> list[tuple[str, str]]:
    t = geobox.transform
    units = units_of(geobox.crs)
    rows = [
        ("size", f"{geobox.height} rows x {geobox.width} columns"),
        ("crs", crs_text(geobox.crs)),
        ("transform", f"({', '.join(_fmt(v) for v in (t.a, t.b, t.c, t.d, t.e, t.f))})  [a, b, c, d, e, f]"),
    ]
    if geobox.is_axis_aligned:
        xres, yres = geobox.resolution
        rows.append(("resolution", f"{_fmt(abs(xres))} x {_fmt(abs(yres))} {units}"))
        left, bottom, right, top = geobox.bounds
        rows.append(("bounds", f"left {_fmt(left)}, bottom {_fmt(bottom)}, right {_fmt(right)}, top {_fmt(top)}"))
    else:
        rows.append(("resolution", "rotated or sheared grid (see transform)"))
    return rows


def _bands_text(names: Any) -> str:
    if not any(names):
        return f"{len(names)} (no band descriptions)"
    return f"{len(names)}: " + ", ".join(f"{i + 1}={n or '-'}" for i, n in enumerate(names))


def _nodata_text(nodata: Any) -> str:
    return "none" if nodata is None else repr(nodata).replace("nan", "NaN")


def describe_tiff(source: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The lines of ``pyr info`` for a GDAL raster (header only)."""
    from pyr.io.gdal.handles import dataset
    from pyr.io.tiff import read_header, source_spec

    spec = source_spec(source, env=env_for(source, args))
    header = read_header(spec)
    with dataset(spec) as ds:
        driver = ds.driver
        structure = ds.tags(ns="IMAGE_STRUCTURE")
        compression = ds.compression.name.lower() if ds.compression is not None else "none"
    layout = structure.get("LAYOUT")
    kind = f"{driver} (COG layout)" if layout == "COG" else driver
    block_y, block_x = header.block_shape
    tiled = block_x < header.geobox.width or (block_y == block_x and block_x % 16 == 0)
    blocks = f"{block_y} x {block_x} ({'tiles' if tiled else 'strips'})"
    h, w = header.geobox.shape
    ovr = ", ".join(f"{f}x ({-(-h // f)} x {-(-w // f)})" for f in header.overviews) or "none"
    return [
        ("format", f"{kind}, {compression}"),
        *_grid_lines(header.geobox),
        ("dtype", header.dtype),
        ("nodata", _nodata_text(header.nodata)),
        ("bands", _bands_text(header.descriptions)),
        ("blocks", blocks),
        ("overviews", ovr),
    ]


def describe_zarr(source: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The lines of ``pyr info`` for a Zarr store (metadata only)."""
    del args
    from pyr.cube import Cube
    from pyr.io.zarr import read_zarr

    obj = read_zarr(source, chunks="auto")
    chunks = obj.data.chunks
    chunk_text = " x ".join(str(max(c)) for c in chunks[-2:])
    rows = [
        ("format", f"Zarr store ({type(obj).__name__}, dims {'time, ' if isinstance(obj, Cube) else ''}band, y, x)")
    ]
    rows += _grid_lines(obj.geobox)
    rows += [
        ("dtype", obj.dtype.name),
        ("nodata", _nodata_text(obj.nodata)),
        ("bands", _bands_text(obj.bands)),
        ("chunks", f"{chunk_text} (y x)"),
    ]
    if isinstance(obj, Cube):
        times = obj.times
        if times is None:
            rows.append(("times", f"{obj.shape[0]} (no dates)"))
        else:
            days = np.datetime_as_string(times, unit="D")
            shown = ", ".join(days) if len(days) <= 6 else f"{days[0]}, {days[1]}, ..., {days[-1]}"
            rows.append(("times", f"{len(days)}: {shown}"))
    return rows


def describe(source: str, args: argparse.Namespace) -> list[tuple[str, str]]:
    """The ``(label, text)`` lines of ``pyr info`` for one source."""
    return describe_zarr(source, args) if is_zarr(source) else describe_tiff(source, args)


def run(args: argparse.Namespace) -> int:
    """Print the description of every source; fail on the first bad one."""
    for i, source in enumerate(args.sources):
        rows = describe(source, args)
        if i:
            print()
        print(display_name(source))
        for label, text in rows:
            print(f"  {label:<11}{text}")
        sys.stdout.flush()
    return 0
