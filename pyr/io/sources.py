"""Source paths and their names in messages (the home is :mod:`pyr.io.gdal.sources`)."""

from pyr.io.gdal.sources import display_name, to_gdal_path

__all__ = ["display_name", "to_gdal_path"]
