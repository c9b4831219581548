"""``Raster``: a 3-D ``(band, y, x)`` array (numpy or dask) on a ``GeoBox``.

What ``Raster`` and ``Cube`` share (properties, validation, ``repr``) lives in
:mod:`pyr._values`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from pyr._imports import ensure
from pyr._nodata import nodata_key
from pyr._values import Pixels, is_geobox, to_bands, to_factors, validate
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox

__all__ = ["Raster", "rasters_of"]


@attrs.frozen(eq=False, repr=False)
class Raster(Pixels):
    """Pixels ``(band, y, x)`` on a grid, with a nodata value and band names.

    ``scales`` and ``offsets`` (keyword-only, one float per band, or ``None``)
    record how stored values become physical ones, ``raw * scale + offset``,
    as a file's metadata or a STAC item says; :func:`pyr.rescale` with no
    factors applies them. Factors that change nothing are stored as ``None``.

    ``data`` may be a numpy array (eager) or a dask array (lazy); nothing is
    computed to build or validate a ``Raster``. Two rasters are equal only if
    they are the same object: compare values with
    :func:`pyr.testing.assert_raster_equal`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import GeoBox, Raster
    >>> gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    >>> r = Raster(np.zeros((1, 2, 4), "uint16"), gb, nodata=0)
    >>> r.shape, r.bands, r.is_lazy
    ((1, 2, 4), ('1',), False)
    """

    data: Any
    geobox: GeoBox = attrs.field(validator=is_geobox)
    nodata: float | int | None = None
    bands: tuple[str, ...] = attrs.field(default=None, converter=to_bands)
    scales: tuple[float, ...] | None = attrs.field(default=None, converter=to_factors, kw_only=True)
    offsets: tuple[float, ...] | None = attrs.field(default=None, converter=to_factors, kw_only=True)

    def __attrs_post_init__(self) -> None:
        validate(self, ndim=3, dims="(band, y, x)")

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return (
            "pyr.Raster",
            tokenize(self.data),
            self.geobox,
            nodata_key(self.nodata),
            self.bands,
            self.scales,
            self.offsets,
        )


def rasters_of(rasters: object, who: str) -> list[Raster]:
    """``rasters`` as a non-empty list of :class:`Raster` (the input of ``stack``, ``mosaic``, ...).

    ``who`` names the calling function in the :class:`~pyr.errors.InvalidArgument` raised otherwise.
    """
    if isinstance(rasters, Raster | str) or not isinstance(rasters, Sequence):
        raise InvalidArgument(f"{who} expects a sequence of Rasters, not {type(rasters).__name__}.")
    items = list(rasters)
    if not items:
        raise InvalidArgument(f"{who} needs at least one raster; got an empty sequence.")
    for i, r in enumerate(items):
        if not isinstance(r, Raster):
            raise InvalidArgument(f"{who}: item {i} is a {type(r).__name__}, not a Raster.")
    return items
