"""``reproject``: a raster or cube resampled onto another grid (any CRS, resolution, extent).

One numpy kernel (:class:`Warp`, ``rasterio.warp.reproject`` of an array onto
a grid) and one lazy/eager branch: eagerly the kernel warps the whole array;
lazily each output chunk is one task that receives only the input chunks its
footprint touches (:func:`pyr._gridding.source_windows`), slices the window
it needs and warps it with the window's transform onto the chunk's. A chunk
whose footprint misses the input is a nodata block with no dependency.
"""

from __future__ import annotations

import math
from typing import Any, TypeVar

import attrs
import numpy as np
from affine import Affine

from pyr import _gridding
from pyr._curry import curried
from pyr._lazy import is_lazy
from pyr._warnings import quiet
from pyr.cube import Cube
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.raster import Raster
from pyr.types import parse_nodata

__all__ = ["Warp", "output_nodata", "reproject"]

R = TypeVar("R", Raster, Cube)


@attrs.frozen
class Warp:
    """The kernel: ``rasterio.warp.reproject`` of a ``(..., y, x)`` array onto a grid.

    ``src_crs``/``dst_crs`` are WKT (deterministic tokens, cheap pickles).
    Cells with ``src_nodata`` (or NaN, for a float input without nodata) are
    not used; cells no input reaches are ``dst_nodata``. ``scale`` pins
    GDAL's kernel scale (:func:`pyr._gridding.warp_scale`) so that every
    warp of one reprojection, whole or per chunk, widens its kernel alike.
    A warped read can call it on a window read from a file.
    """

    src_crs: str
    dst_crs: str
    resampling: str
    src_nodata: float | int | None
    dst_nodata: float | int
    dtype: str
    scale: tuple[float, float] | None = None

    def __call__(
        self, src: np.ndarray, src_transform: Affine, dst_transform: Affine, dst_shape: tuple[int, int]
    ) -> np.ndarray:
        """``src`` (on ``src_transform``) warped onto the ``dst_shape`` grid at ``dst_transform``."""
        from rasterio.enums import Resampling
        from rasterio.errors import NotGeoreferencedWarning
        from rasterio.warp import reproject as rio_reproject

        dtype = np.dtype(self.dtype)
        lead = src.shape[:-2]
        out = np.full((math.prod(lead), *dst_shape), self.dst_nodata, dtype=dtype)
        options = {} if self.scale is None else {"XSCALE": repr(self.scale[0]), "YSCALE": repr(self.scale[1])}
        src_nodata = self.src_nodata
        if self.resampling == "nearest" and _same_value(src_nodata, self.dst_nodata):
            # nearest copies one input cell: a nodata cell copies as the output's nodata anyway, so
            # GDAL's validity masks (and its slower masked kernel) change nothing
            src_nodata = None
        if out.size and src.size:
            work = np.ascontiguousarray(src.reshape(-1, *src.shape[-2:]))
            target = out
            if dtype.kind == "b":  # GDAL has no bool: warp as bytes
                work, target = work.view("uint8"), out.view("uint8")
            # rasterio silences this warning (its in-memory dataset has no transform for a moment)
            # with warnings.catch_warnings, which leaks between threads: warps run in many at once.
            with quiet(NotGeoreferencedWarning):
                rio_reproject(
                    work,
                    target,
                    src_transform=src_transform,
                    src_crs=self.src_crs,
                    src_nodata=src_nodata,
                    dst_transform=dst_transform,
                    dst_crs=self.dst_crs,
                    dst_nodata=self.dst_nodata,
                    resampling=Resampling[self.resampling],
                    init_dest_nodata=True,
                    **options,
                )
        return out.reshape(*lead, *dst_shape)

    def __dask_tokenize__(self) -> object:
        nodata = (repr(self.src_nodata), repr(self.dst_nodata))
        return ("pyr.Warp", self.src_crs, self.dst_crs, self.resampling, *nodata, self.dtype, self.scale)

    def fill(self, lead: tuple[int, ...], dst_shape: tuple[int, int]) -> np.ndarray:
        """A block of ``dst_nodata`` (an output chunk no input reaches)."""
        return np.full((*lead, *dst_shape), self.dst_nodata, dtype=np.dtype(self.dtype))

    def window(
        self, blocks: list[list[np.ndarray]], crop: tuple[int, int, int, int], src_transform: Affine,
        dst_transform: Affine, dst_shape: tuple[int, int],
    ) -> np.ndarray:  # fmt: skip
        """Warp the window ``crop`` (rows, cols relative to the blocks' corner) of the joined input blocks."""
        joined = blocks[0][0] if len(blocks) == 1 and len(blocks[0]) == 1 else np.block(blocks)
        r0, r1, c0, c1 = crop
        return self(joined[..., r0:r1, c0:c1], src_transform, dst_transform, dst_shape)


def _same_value(a: float | int | None, b: float | int) -> bool:
    """Whether nodata values ``a`` and ``b`` are the same value (both NaN counts)."""
    if a is None:
        return False
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return bool(a == b)


def output_nodata(obj: Raster | Cube, nodata: Any) -> float | int:
    """The nodata of a reprojected ``obj``: ``nodata``, else ``obj``'s, else NaN for floats."""
    if nodata is not None:
        value = parse_nodata(nodata, obj.dtype)
    elif obj.nodata is not None:
        value = obj.nodata
    elif obj.dtype.kind == "f":
        value = math.nan
    else:
        raise InvalidArgument(
            f"nodata=None: the input ({obj.dtype}) has no nodata value, and cells outside it need one; "
            "pass nodata= (a value of the dtype that marks cells with no data)."
        )
    assert value is not None
    return value


@curried
def reproject(obj: R, geobox: GeoBox, *, resampling: str = "nearest", nodata: Any = None) -> R:
    """``obj`` resampled onto ``geobox`` (any CRS, resolution and extent).

    Works on a :class:`~pyr.Raster` or a :class:`~pyr.Cube` (each date
    warped alike), eager or lazy. Eagerly the result is
    ``rasterio.warp.reproject`` of the whole array onto ``geobox``. Lazily the
    result is chunked like the input (its largest spatial chunk shape, whole
    bands, the input's time chunks) and each output chunk is one task that
    depends only on the input chunks its footprint, plus the kernel's margin,
    touches; it warps that window with GDAL as the eager call does. GDAL's
    approximate transformer interpolates source coordinates along each row
    of a warp to within 0.125 source cells, and a chunk is a warp of its
    own: a lazy cell may differ from the eager one only where its exact
    source coordinate lies within that distance of a source cell edge
    (with ``nearest``, another neighbour is picked; a few percent of cells
    at most). Between grids of one CRS the transform is affine and the two
    agree. GDAL's kernel scale (how far an interpolating or area kernel
    reaches when the output is coarser) is computed once for the whole
    reprojection and given to every warp, eager or per chunk.

    Parameters
    ----------
    obj
        The raster or cube. Its grid may be rotated; it needs a CRS.
    geobox
        The target grid: north-up, with a CRS (see :meth:`GeoBox.from_bbox`
        and :meth:`GeoBox.to_crs`).
    resampling
        Any name of ``rasterio.enums.Resampling``: ``"nearest"``,
        ``"bilinear"``, ``"cubic"``, ``"average"``, ``"mode"``, ``"min"``,
        ``"max"``, ``"med"``, ``"q1"``, ``"q3"``, ...
    nodata
        The output's nodata, for cells the input does not reach and cells
        whose inputs are all nodata. Default: the input's, NaN for a float
        input without one; an integer input without nodata needs it.
        Input cells equal to the input's nodata (NaN for floats without
        one) are not used.

    Examples
    --------
    >>> import numpy as np
    >>> from toolz import pipe
    >>> from pyr import GeoBox, Raster, reproject
    >>> utm = GeoBox.from_bounds((600_000, 5_000_000, 600_300, 5_000_200), 100, "EPSG:32631")
    >>> r = Raster(np.arange(1, 7, dtype="uint16").reshape(1, 2, 3), utm, nodata=0)
    >>> wide = GeoBox.from_bounds((599_900, 5_000_000, 600_400, 5_000_200), 100, "EPSG:32631")
    >>> reproject(r, wide).data
    array([[[0, 1, 2, 3, 0],
            [0, 4, 5, 6, 0]]], dtype=uint16)
    >>> pipe(r, reproject(geobox=utm.to_crs("EPSG:3857"))).geobox.epsg
    3857
    """
    if not isinstance(obj, Raster | Cube):
        raise InvalidArgument(f"reproject expects a Raster or Cube, not {type(obj).__name__}.")
    if not isinstance(geobox, GeoBox):
        raise InvalidArgument(f"geobox={geobox!r}: expected a GeoBox.")
    if not geobox.is_axis_aligned:
        raise InvalidArgument(f"geobox={geobox!r}: the target grid must be north-up (no rotation or shear).")
    if geobox.crs is None or obj.geobox.crs is None:
        which = "geobox" if geobox.crs is None else "the input's geobox"
        raise InvalidArgument(f"reproject needs a CRS on both grids; {which} has none.")
    name = _gridding.resampling_name(resampling)
    dst_nodata = output_nodata(obj, nodata)
    src_nodata = obj.nodata if obj.nodata is not None or obj.dtype.kind != "f" else math.nan
    warp = Warp(
        src_crs=obj.geobox.crs.to_wkt(),
        dst_crs=geobox.crs.to_wkt(),
        resampling=name,
        src_nodata=src_nodata,
        dst_nodata=dst_nodata,
        dtype=str(obj.dtype),
        scale=None if name == "nearest" else _gridding.warp_scale(geobox, obj.geobox),
    )
    if is_lazy(obj.data):
        from pyr.ops._reproject_lazy import lazy_reproject

        data = lazy_reproject(obj.data, obj.geobox, geobox, warp)
    else:
        data = warp(obj.data, obj.geobox.transform, geobox.transform, geobox.shape)
    return attrs.evolve(obj, data=data, geobox=geobox, nodata=dst_nodata)
