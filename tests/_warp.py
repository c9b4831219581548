"""GDAL's warp of a file onto a grid: the oracle of pyr's reads onto a ``geobox``, shared by the tests."""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject as rio_reproject


def warp_oracle(path, geobox, *, overview=None, resampling="nearest", nodata=0):
    """``rasterio.warp.reproject`` of band 1 of the whole file (or of overview ``overview``) onto ``geobox``.

    ``nodata`` is the source's nodata and fills what no source pixel covers.
    """
    kwargs = {} if overview is None else {"overview_level": overview}
    with rasterio.open(path, **kwargs) as ds:
        out = np.full(geobox.shape, nodata, dtype=ds.dtypes[0])
        rio_reproject(
            ds.read(1),
            out,
            src_transform=ds.transform,
            src_crs=ds.crs,
            src_nodata=nodata,
            dst_transform=geobox.transform,
            dst_crs=geobox.crs,
            dst_nodata=nodata,
            resampling=Resampling[resampling],
        )
    return out
