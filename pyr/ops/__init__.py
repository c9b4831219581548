"""Pure transforms of rasters and cubes: no I/O, no side effects."""

from pyr.ops.map_blocks import map_blocks
from pyr.ops.mask import mask
from pyr.ops.mosaic import mosaic
from pyr.ops.reduce import reduce_time
from pyr.ops.reproject import reproject
from pyr.ops.rescale import rescale
from pyr.ops.stack import stack

__all__ = ["map_blocks", "mask", "mosaic", "reduce_time", "reproject", "rescale", "stack"]
