"""``Raster``: a 3-D ``(band, y, x)`` array (numpy or dask) on a ``GeoBox``.

``Raster`` and ``Cube`` share their validation and ``repr`` through the
helpers at the bottom of this module; ``cube.py`` imports them.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import numpy as np

from pyr._imports import ensure
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.types import parse_nodata

__all__ = ["Raster", "is_dask"]


def is_dask(data: Any) -> bool:
    """Whether ``data`` is a dask array (checked without importing dask eagerly)."""
    return type(data).__module__.startswith("dask.") and hasattr(data, "chunks")


def _to_bands(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        raise InvalidArgument(f"bands={value!r}: expected a sequence of band names.") from None


def _is_geobox(obj: Any, attribute: Any, value: Any) -> None:
    if not isinstance(value, GeoBox):
        raise InvalidArgument(f"{type(obj).__name__} geobox must be a GeoBox, not {type(value).__name__}.")


@attrs.frozen(eq=False, repr=False)
class Raster:
    """Pixels ``(band, y, x)`` on a grid, with a nodata value and band names.

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
    geobox: GeoBox = attrs.field(validator=_is_geobox)
    nodata: float | int | None = None
    bands: tuple[str, ...] = attrs.field(default=None, converter=_to_bands)

    def __attrs_post_init__(self) -> None:
        _validate(self, ndim=3, what="Raster", dims="(band, y, x)")

    @property
    def shape(self) -> tuple[int, ...]:
        """``(band, y, x)``."""
        return tuple(self.data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The pixel dtype."""
        dtype: np.dtype[Any] = np.dtype(self.data.dtype)
        return dtype

    @property
    def count(self) -> int:
        """Number of bands."""
        return int(self.data.shape[-3])

    @property
    def is_lazy(self) -> bool:
        """Whether the data is a dask array."""
        return is_dask(self.data)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...] | None:
        """Dask chunks, or ``None`` when eager."""
        return tuple(self.data.chunks) if self.is_lazy else None

    def __repr__(self) -> str:
        return _repr(self, "Raster")

    def __dask_tokenize__(self) -> object:
        ensure("dask")
        from dask.base import tokenize

        return ("pyr.Raster", tokenize(self.data), self.geobox, _nodata_key(self.nodata), self.bands)


# --- shared by Raster and Cube ------------------------------------------------


def _nodata_key(nodata: float | int | None) -> object:
    if isinstance(nodata, float) and math.isnan(nodata):
        return "nan"
    return nodata


def _validate(obj: Any, *, ndim: int, what: str, dims: str) -> None:
    data = obj.data
    shape = getattr(data, "shape", None)
    dtype = getattr(data, "dtype", None)
    if shape is None or dtype is None:
        raise InvalidArgument(f"{what} data must be a numpy or dask array, not {type(data).__name__}.")
    if len(shape) != ndim:
        raise InvalidArgument(f"{what} data must be {ndim}-D {dims}; got {len(shape)}-D shape {tuple(shape)}.")
    if tuple(shape[-2:]) != obj.geobox.shape:
        raise InvalidArgument(f"{what} data shape {tuple(shape)} does not match geobox shape {obj.geobox.shape}.")
    dt = np.dtype(dtype)
    if dt.kind not in "biuf":
        raise InvalidArgument(f"{what} dtype {dt} is not supported (bool, int, uint or float).")
    # Normalise to a Python scalar of the dtype's kind (frozen: set once, here).
    object.__setattr__(obj, "nodata", parse_nodata(obj.nodata, dt))
    count = int(shape[-3])
    if obj.bands is None:
        object.__setattr__(obj, "bands", tuple(str(i + 1) for i in range(count)))
    elif len(obj.bands) != count:
        raise InvalidArgument(f"{what} bands={obj.bands!r} names {len(obj.bands)} band(s); data has {count}.")
    elif len(set(obj.bands)) != count:
        raise InvalidArgument(f"{what} bands={obj.bands!r} has duplicate names.")


def _repr(obj: Any, what: str, extra: str = "") -> str:
    data = obj.data
    if is_dask(data):
        chunks = tuple(c[0] if c else 0 for c in data.chunks)
        arr = f"<dask {data.dtype} {tuple(data.shape)} chunks={chunks}>"
    else:
        arr = f"<numpy {data.dtype} {tuple(data.shape)}>"
    bands = obj.bands if len(obj.bands) <= 6 else (*obj.bands[:5], "...")
    return f"{what}({arr}, {obj.geobox!r}, nodata={obj.nodata!r}, bands={bands!r}{extra})"
