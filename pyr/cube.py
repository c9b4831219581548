"""``Cube``: a 4-D ``(time, band, y, x)`` array on a ``GeoBox`` with a time axis."""

from __future__ import annotations

from typing import Any

import attrs
import numpy as np

from pyr._imports import ensure
from pyr._nodata import nodata_key
from pyr._values import Pixels, is_geobox, to_bands, to_factors, validate
from pyr.geobox import GeoBox
from pyr.types import parse_times

__all__ = ["Cube"]


@attrs.frozen(eq=False, repr=False)
class Cube(Pixels):
    """A time series of rasters on one grid: data ``(time, band, y, x)``.

    ``times`` is a 1-D ``datetime64[us]`` array (read-only; see :func:`pyr.types.parse_times`) or ``None``.
    ``scales``/``offsets`` are as on :class:`~pyr.Raster`.
    Equality is identity; compare values with :func:`pyr.testing.assert_raster_equal`.

    Examples
    --------
    >>> import numpy as np
    >>> from pyr import Cube, GeoBox
    >>> gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    >>> c = Cube(np.zeros((3, 1, 2, 4), "uint16"), gb, nodata=0,
    ...          times=["2020-01-01", "2020-01-11", "2020-01-21"])
    >>> c.shape, c.times[1]
    ((3, 1, 2, 4), np.datetime64('2020-01-11T00:00:00.000000'))
    """

    data: Any
    geobox: GeoBox = attrs.field(validator=is_geobox)
    nodata: float | int | None = None
    bands: tuple[str, ...] = attrs.field(default=None, converter=to_bands)
    times: np.ndarray | None = attrs.field(default=None)
    scales: tuple[float, ...] | None = attrs.field(default=None, converter=to_factors, kw_only=True)
    offsets: tuple[float, ...] | None = attrs.field(default=None, converter=to_factors, kw_only=True)

    def __attrs_post_init__(self) -> None:
        validate(self, ndim=4, dims="(time, band, y, x)")
        object.__setattr__(self, "times", parse_times(self.times, int(self.data.shape[0])))

    @property
    def ntimes(self) -> int:
        """Number of dates."""
        return int(self.data.shape[0])

    def _extra_repr(self) -> str:
        if self.times is None:
            return ", times=None"
        if len(self.times):
            return f", times=[{self.times[0]!s:.10}..{self.times[-1]!s:.10}]"
        return ", times=[]"

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild through __init__ so an unpickled (or copied) cube validates
        # again and its ``times`` stay read-only.
        return (_rebuild_cube, (self.data, self.geobox, self.nodata, self.bands, self.times, self.scales, self.offsets))

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        times = None if self.times is None else self.times.astype("int64").tolist()
        return (
            "pyr.Cube",
            tokenize(self.data),
            self.geobox,
            nodata_key(self.nodata),
            self.bands,
            times,
            self.scales,
            self.offsets,
        )


def _rebuild_cube(*args: Any) -> Cube:
    """Unpickle a :class:`Cube` through ``__init__`` (positional fields, then the keyword-only factors)."""
    *fields, scales, offsets = args
    return Cube(*fields, scales=scales, offsets=offsets)
