"""Helpers shared by the ``pyr`` sub-commands: what a source is, how to name a CRS."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from pyr.errors import ReadError
from pyr.io.gdal.sources import display_name

__all__ = ["add_cloud_arguments", "crs_text", "env_for", "is_remote", "is_zarr", "units_of"]

_ZARR_MARKERS = (".zgroup", ".zattrs", ".zmetadata", "zarr.json")


def is_remote(source: str) -> bool:
    """Whether ``source`` is a URL or GDAL virtual path rather than a local path."""
    return ("://" in source and not source.startswith("file://")) or source.startswith("/vsi")


def is_zarr(source: str) -> bool:
    """Whether ``source`` names a Zarr store (a folder with Zarr metadata, or a ``.zarr`` URL).

    Raises :class:`~pyr.errors.ReadError` for a local folder that is not a Zarr store.
    """
    if is_remote(source):
        return source.rstrip("/").lower().endswith(".zarr")
    path = Path(source[len("file://") :] if source.startswith("file://") else source)
    if path.is_dir():
        if any((path / m).exists() for m in _ZARR_MARKERS):
            return True
        raise ReadError(f"{display_name(source)!r} is a folder, not a raster file or Zarr store.")
    return False


def crs_text(crs: Any) -> str:
    """``EPSG:32631 (WGS 84 / UTM zone 31N)``, or the CRS's name when it has no EPSG code."""
    if crs is None:
        return "none (not georeferenced)"
    wkt = crs.to_wkt()
    m = re.match(r'\s*\w+\["([^"]*)"', wkt)
    name = m.group(1) if m else ""
    epsg = crs.to_epsg()
    if epsg is not None:
        return f"EPSG:{epsg} ({name})" if name else f"EPSG:{epsg}"
    return name or crs.to_string()


def units_of(crs: Any) -> str:
    """The unit of a CRS's axes: ``m``, ``deg`` or whatever its WKT says."""
    if crs is None:
        return "px"
    if crs.is_geographic:
        return "deg"
    unit = (crs.linear_units or "").lower()
    return "m" if unit in ("metre", "meter", "m", "metres", "meters") else unit or "?"


def add_cloud_arguments(parser: argparse.ArgumentParser) -> None:
    """``--aws-unsigned`` and ``--aws-region`` for public buckets."""
    parser.add_argument(
        "--aws-unsigned",
        action="store_true",
        help="read s3:// sources anonymously (public buckets such as sentinel-cogs)",
    )
    parser.add_argument("--aws-region", metavar="REGION", help="the AWS region of s3:// sources")


def env_for(source: str, args: argparse.Namespace) -> Any:
    """GDAL options for ``source``: pyr's cloud defaults for remote sources, nothing for local files."""
    if not is_remote(source):
        return None
    from pyr.io.gdal.env import cloud_env

    aws: dict[str, Any] = {}
    if getattr(args, "aws_unsigned", False):
        aws["aws_unsigned"] = True
    if getattr(args, "aws_region", None):
        aws["region"] = args.aws_region
    return cloud_env(aws=aws or None)
