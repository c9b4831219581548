"""What ``Raster`` and ``Cube`` share: properties, validation, band names, ``repr``.

:class:`Pixels` is the base of both value types: everything that only looks
at ``data``, ``geobox``, ``nodata`` and ``bands`` lives here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pyr import _lazy
from pyr.errors import InvalidArgument
from pyr.geobox import GeoBox
from pyr.types import parse_nodata

__all__ = ["Pixels", "band_names", "is_geobox", "to_bands", "to_factors", "validate"]


def band_names(descriptions: Iterable[str | None]) -> tuple[str, ...]:
    """Band names from a file's band descriptions: the description, or the 1-based number where it is empty.

    >>> band_names(["red", None, ""])
    ('red', '2', '3')
    """
    return tuple(d if d else str(i + 1) for i, d in enumerate(descriptions))


def to_bands(value: Any) -> tuple[str, ...] | None:
    """Converter of the ``bands`` field: a tuple of names (a single string is one name)."""
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    try:
        return tuple(str(v) for v in value)
    except TypeError:
        raise InvalidArgument(f"bands={value!r}: expected a sequence of band names.") from None


def to_factors(value: Any) -> tuple[float, ...] | None:
    """Converter of the ``scales`` and ``offsets`` fields: a tuple of floats, one per band (a number is one band)."""
    if value is None:
        return None
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        value = (value,)
    try:
        factors = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        raise InvalidArgument(f"scales/offsets={value!r}: expected a sequence of numbers, one per band.") from None
    if not all(np.isfinite(factors)):
        raise InvalidArgument(f"scales/offsets={value!r}: every factor must be a finite number.")
    return factors


def _check_factors(obj: Any, count: int) -> None:
    """Check and normalise ``scales``/``offsets``: both ``None`` or both one per band, ``None`` when they do nothing."""
    what = type(obj).__name__
    scales, offsets = obj.scales, obj.offsets
    if scales is None and offsets is None:
        return
    scales = (1.0,) * count if scales is None else scales
    offsets = (0.0,) * count if offsets is None else offsets
    for name, factors in (("scales", scales), ("offsets", offsets)):
        if len(factors) != count:
            raise InvalidArgument(f"{what} {name}={factors!r} has {len(factors)} factor(s); data has {count} band(s).")
    identity = all(s == 1.0 for s in scales) and all(o == 0.0 for o in offsets)
    object.__setattr__(obj, "scales", None if identity else scales)
    object.__setattr__(obj, "offsets", None if identity else offsets)


def is_geobox(obj: Any, attribute: Any, value: Any) -> None:
    """Validator of the ``geobox`` field."""
    if not isinstance(value, GeoBox):
        raise InvalidArgument(f"{type(obj).__name__} geobox must be a GeoBox, not {type(value).__name__}.")


def validate(obj: Any, *, ndim: int, dims: str) -> None:
    """Check ``obj``'s metadata (never its pixels) and normalise ``nodata`` and ``bands`` in place (set once)."""
    what = type(obj).__name__
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
    _check_factors(obj, count)


class Pixels:
    """Properties shared by :class:`~pyr.Raster` and :class:`~pyr.Cube` (both have ``data`` ``(..., band, y, x)``)."""

    __slots__ = ()

    data: Any
    geobox: GeoBox
    nodata: float | int | None
    bands: tuple[str, ...]
    scales: tuple[float, ...] | None
    offsets: tuple[float, ...] | None

    @property
    def shape(self) -> tuple[int, ...]:
        """The data's shape: ``(band, y, x)`` for a raster, ``(time, band, y, x)`` for a cube."""
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
        return _lazy.is_lazy(self.data)

    @property
    def chunks(self) -> tuple[tuple[int, ...], ...] | None:
        """Dask chunks, or ``None`` when eager."""
        return _lazy.chunks(self.data)

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        data = self.data
        if self.is_lazy:
            chunks = tuple(c[0] if c else 0 for c in data.chunks)
            arr = f"<dask {data.dtype} {tuple(data.shape)} chunks={chunks}>"
        else:
            arr = f"<numpy {data.dtype} {tuple(data.shape)}>"
        bands = self.bands if len(self.bands) <= 6 else (*self.bands[:5], "...")
        factors = "" if self.scales is None else f", scales={self.scales!r}, offsets={self.offsets!r}"
        return (
            f"{type(self).__name__}({arr}, {self.geobox!r}, nodata={self.nodata!r}, bands={bands!r}"
            f"{self._extra_repr()}{factors})"
        )
