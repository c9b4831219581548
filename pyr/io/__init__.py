"""Side effects live here: GeoTIFF and Zarr I/O, the GDAL environment, source paths."""

from pyr.io.gdal.env import cloud_env, configure
from pyr.io.gdal.sources import to_gdal_path
from pyr.io.tiff import read
from pyr.io.zarr import read_zarr, write_zarr

__all__ = ["cloud_env", "configure", "read", "read_zarr", "to_gdal_path", "write_zarr"]
