"""Reading STAC items into a cube: ``read_stac``.

Modules, each one job: :mod:`~pyr.io.stac.items` (STAC items in any form to
plain values: times, assets, grids from the projection extension,
``raster:bands``), :mod:`~pyr.io.stac.grid` (the default grid),
:mod:`~pyr.io.stac.graph` (the tasks: each band's assets read onto a chunk,
mosaicked), :mod:`~pyr.io.stac.read` (``read_stac`` itself). pystac is never
imported: items are duck-typed.
"""

from pyr.io.stac.read import read_stac

__all__ = ["read_stac"]
