"""The write calls the crash tests kill: Zarr write, replace and append; GeoTIFF write and replace.

Each is a :class:`~.harness.Scenario` (snippets that see the names of
:data:`~.harness.PRELUDE`, ``TARGET`` and ``OPTS``).
"""

from __future__ import annotations

from .harness import Scenario

__all__ = ["TIFF", "ZARR"]

ZARR = (
    Scenario(
        name="zarr-write-raster",
        kind="zarr",
        call="pyr.write_zarr(raster(1), TARGET, storage_options=OPTS)",
        new="raster(1, lazy=False)",
    ),
    Scenario(
        name="zarr-write-cube",
        kind="zarr",
        call="pyr.write_zarr(cube(1, DATES[:2]), TARGET, storage_options=OPTS)",
        new="cube(1, DATES[:2], lazy=False)",
    ),
    Scenario(
        name="zarr-replace",
        kind="zarr",
        setup="pyr.write_zarr(cube(1, DATES[:2], lazy=False), TARGET, storage_options=OPTS)",
        call="pyr.write_zarr(cube(2, DATES[1:4]), TARGET, mode='w', storage_options=OPTS)",
        old="cube(1, DATES[:2], lazy=False)",
        new="cube(2, DATES[1:4], lazy=False)",
    ),
    Scenario(
        name="zarr-append",
        kind="zarr",
        setup="pyr.write_zarr(cube(1, DATES[:2], lazy=False), TARGET, storage_options=OPTS)",
        call="pyr.write_zarr(cube(1, DATES[2:4], first=2), TARGET, mode='a', storage_options=OPTS)",
        old="cube(1, DATES[:2], lazy=False)",
        new="cube(1, DATES[:4], lazy=False)",
    ),
)

TIFF = (
    Scenario(
        name="tiff-write-eager",
        kind="tiff",
        target="out.tif",
        call="pyr.write_tiff(raster(1, lazy=False), TARGET)",
        new="raster(1, lazy=False)",
    ),
    Scenario(
        name="tiff-write-lazy",
        kind="tiff",
        target="out.tif",
        call="pyr.write_tiff(raster(1), TARGET)",
        new="raster(1, lazy=False)",
    ),
    Scenario(
        name="tiff-replace-eager",
        kind="tiff",
        target="out.tif",
        setup="pyr.write_tiff(raster(1, lazy=False), TARGET)",
        call="pyr.write_tiff(raster(2, lazy=False), TARGET, cog=False)",
        old="raster(1, lazy=False)",
        new="raster(2, lazy=False)",
    ),
    Scenario(
        name="tiff-replace-lazy",
        kind="tiff",
        target="out.tif",
        setup="pyr.write_tiff(raster(1, lazy=False), TARGET)",
        call="pyr.write_tiff(raster(2), TARGET)",
        old="raster(1, lazy=False)",
        new="raster(2, lazy=False)",
    ),
)
