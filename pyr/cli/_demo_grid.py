"""The grid step of ``pyr demo``: the series read onto a user grid in another CRS, reduced, and drawn.

A user picks the grid of an analysis: here the series' footprint in
longitude/latitude, as a grid of Europe's equal-area projection
(EPSG:3035, LAEA Europe) at 30 m (:meth:`pyr.GeoBox.from_bbox`). Every date
is read straight onto it (``pyr.read_cube(..., geobox=..., resampling="average")``:
each output chunk reads only the window of each file it needs, from the
coarsest overview still as fine as 30 m), the dates are reduced to their
median, written as a COG and drawn as a quicklook (plain greyscale through
GDAL's PNG driver when matplotlib is not installed).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyr.cli.demo import _Steps
    from pyr.geobox import GeoBox

__all__ = ["CRS", "PNG", "RESAMPLING", "RESOLUTION", "TIF", "grid_step", "user_grid"]

CRS = "EPSG:3035"
RESOLUTION = 30
RESAMPLING = "average"
TIF = "grid_median.tif"
PNG = "grid_median.png"


def user_grid(first: Path) -> tuple[GeoBox, tuple[float, float, float, float]]:
    """The demo's target grid: ``first``'s footprint in lon/lat as a :data:`CRS` grid at :data:`RESOLUTION` m."""
    import rasterio
    from rasterio.warp import transform_bounds

    from pyr.geobox import GeoBox

    with rasterio.open(first) as ds:
        lonlat = transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    bbox = (round(lonlat[0], 4), round(lonlat[1], 4), round(lonlat[2], 4), round(lonlat[3], 4))
    return GeoBox.from_bbox(bbox, crs=CRS, resolution=RESOLUTION), bbox


def grid_step(steps: _Steps, paths: list[Path], out: Path) -> list[str]:
    """Run the step (printed by ``steps`` with its time); returns the names of the files it wrote."""
    from pyr import compute, read_cube, reduce_time, write_tiff
    from pyr.cli import quicklook
    from pyr.testing.synth import times_of

    grid, bbox = user_grid(paths[0])
    title = (
        f"cube on a user grid: GeoBox.from_bbox({bbox}, crs={CRS!r}, resolution={RESOLUTION}); "
        f"read_cube(geobox=..., resampling={RESAMPLING!r}) -> median -> {TIF}, {PNG}"
    )
    with steps.step(title) as s:
        cube = read_cube(paths, times=times_of(paths), geobox=grid, resampling=RESAMPLING)
        median = reduce_time(cube, "median")
        job = write_tiff(median, out / TIF, level=1, compute=False)
        compute(job, progress=True)
        opts = argparse.Namespace(band="1", overview=None, time=0, cmap="gray", aws_unsigned=False, aws_region=None)
        heading = f"temporal median of {len(paths)} dates on {CRS} at {RESOLUTION} m ({RESAMPLING} resampling)"
        (w, h), _, _ = quicklook.draw(str(out / TIF), str(out / PNG), opts, heading=heading)
        rows, cols = grid.shape
        s["note"] = (
            f"{cube.shape[0]} dates x {rows} x {cols} cells ({cube.data.npartitions} chunks, each read onto the "
            f"grid from the files' windows); {PNG} ({w} x {h})"
        )
    return [TIF, PNG]
