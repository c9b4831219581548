"""pyr: frozen raster value types and pure, composable functions.

Import order (each module imports only from those above it)::

    errors, types, _imports     _imports: first imports of dask and zarr, safe across threads
    _nodata                     nodata equality and masks
    _blocks, _lazy              kernels on numpy blocks; the one lazy/eager decision
    _gridding                   grid geometry across CRSs: snapped grids, footprints, chunk windows
    geobox
    _warp_plan                  the window of the input each output chunk of a warp needs
    _values                     what Raster and Cube share
    raster, cube
    _cluster, _fuse             the active cluster; fusing tasks so pixels stay where computed
    ops/                        pure transforms: rescale, map_blocks, mask, stack, reduce_time, reproject, mosaic
    io/                         side effects: GeoTIFF, Zarr, GDAL env, sources, xarray, STAC items
    _assemble, compute          running graphs (a lazy array into one numpy array, block by block)
    testing/                    assertions, hypothesis strategies, synthetic series
    cli/                        the ``pyr`` command

``import pyr`` does not import xarray, distributed or matplotlib, nor dask
or zarr: the functions that need them import them (through
``pyr._imports.ensure``, so that threads making their first calls at once
do not break each other's imports).
"""

from pyr.compute import compute
from pyr.cube import Cube
from pyr.errors import GridMismatch, IncompleteStore, InvalidArgument, PyrError, ReadError, StoreExists, WriteError
from pyr.geobox import GeoBox
from pyr.io import cloud_env, configure, read, read_zarr, write_zarr
from pyr.io.cube import check_sources, read_cube
from pyr.io.stac import read_stac
from pyr.io.tiff_write import write_tiff
from pyr.io.xarray import from_xarray, to_xarray
from pyr.ops import map_blocks, mask, mosaic, reduce_time, reproject, rescale, stack
from pyr.raster import Raster

__version__ = "0.1.0"

__all__ = [
    "Cube",
    "GeoBox",
    "GridMismatch",
    "IncompleteStore",
    "InvalidArgument",
    "PyrError",
    "Raster",
    "ReadError",
    "StoreExists",
    "WriteError",
    "__version__",
    "check_sources",
    "cloud_env",
    "compute",
    "configure",
    "from_xarray",
    "map_blocks",
    "mask",
    "mosaic",
    "read",
    "read_cube",
    "read_stac",
    "read_zarr",
    "reduce_time",
    "reproject",
    "rescale",
    "stack",
    "to_xarray",
    "write_tiff",
    "write_zarr",
]
