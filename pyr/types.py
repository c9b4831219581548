"""Input types accepted by the public API and their normalisers.

The ``...Like`` aliases describe what users may pass; the ``parse_...``
functions turn those into the one form the rest of pyr works with, raising
:class:`~pyr.errors.InvalidArgument` naming the argument on bad input.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from typing import Any, Final, TypeAlias

import numpy as np

from pyr.errors import InvalidArgument

__all__ = [
    "TIME_UNIT",
    "ChunksLike",
    "PathLike",
    "TimesLike",
    "parse_band_indices",
    "parse_chunks2d",
    "parse_dtype",
    "parse_float",
    "parse_nodata",
    "parse_times",
]

PathLike: TypeAlias = str | os.PathLike[str]
ChunksLike: TypeAlias = str | int | tuple[int, int] | None
TimesLike: TypeAlias = Sequence[str | dt.datetime | dt.date | np.datetime64] | np.ndarray | None

#: The unit of ``Cube.times``: Python's own datetime precision, and a range of
#: about 290,000 years around 1970 (``ns`` wraps after 2262 and before 1677).
TIME_UNIT: Final = "us"


def parse_chunks2d(chunks: object, *, name: str = "chunks") -> str | tuple[int, int] | None:
    """Normalise a ``chunks`` argument to ``None``, ``"auto"`` or ``(y, x)``."""
    if chunks is None:
        return None
    if isinstance(chunks, str):
        if chunks != "auto":
            raise InvalidArgument(f"{name}={chunks!r}: expected None, 'auto', an int or (y, x).")
        return "auto"
    if isinstance(chunks, bool):
        raise InvalidArgument(f"{name}={chunks!r}: expected None, 'auto', an int or (y, x).")
    if isinstance(chunks, int | np.integer):
        chunks = (int(chunks), int(chunks))
    if (
        not isinstance(chunks, Sequence)
        or len(chunks) != 2
        or not all(isinstance(c, int | np.integer) and not isinstance(c, bool) for c in chunks)
    ):
        raise InvalidArgument(f"{name}={chunks!r}: expected None, 'auto', an int or (y, x).")
    y, x = int(chunks[0]), int(chunks[1])
    if y <= 0 or x <= 0:
        raise InvalidArgument(f"{name}={chunks!r}: chunk sizes must be positive.")
    return (y, x)


def parse_dtype(dtype: object, *, name: str = "dtype", kinds: str = "biuf") -> np.dtype[Any]:
    """Normalise a dtype argument (anything :class:`numpy.dtype` takes) of one of ``kinds``.

    ``None`` is refused (numpy would read it as float64): callers that accept
    ``None`` handle it first.
    """
    what = {"b": "bool", "i": "int", "u": "uint", "f": "float"}
    expected = " or ".join(what[k] for k in kinds)
    if dtype is None:
        raise InvalidArgument(f"{name}=None: expected a {expected} dtype.")
    try:
        dt: np.dtype[Any] = np.dtype(dtype)  # type: ignore[call-overload]
    except (TypeError, ValueError) as err:
        raise InvalidArgument(f"{name}={dtype!r} is not a dtype ({err}); expected a {expected} dtype.") from None
    if dt.kind not in kinds:
        raise InvalidArgument(f"{name}={dtype!r} is {dt}; expected a {expected} dtype.")
    return dt


def parse_float(value: object, *, name: str, infinite: bool = False) -> float:
    """A real number (int, float or numpy scalar; not a bool nor a string) as a ``float``.

    NaN is refused, and so are infinities unless ``infinite`` (e.g. an open side of a clip range).
    """
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
        raise InvalidArgument(f"{name}={value!r}: expected a number, not {type(value).__name__}.")
    number = float(value)
    if math.isnan(number) or (math.isinf(number) and not infinite):
        raise InvalidArgument(f"{name}={value!r}: expected a finite number.")
    return number


def parse_band_indices(bands: object, count: int, *, source: str = "") -> tuple[int, ...] | None:
    """Normalise a ``bands`` argument (0-based int or sequence) against ``count`` bands."""
    if bands is None:
        return None
    where = f" of {source!r}" if source else ""
    items = [bands] if isinstance(bands, int | np.integer) else bands
    if not isinstance(items, Sequence) or isinstance(items, str) or len(items) == 0:
        raise InvalidArgument(f"bands={bands!r}: expected a 0-based index or a sequence of them.")
    out = []
    for b in items:
        if isinstance(b, bool) or not isinstance(b, int | np.integer):
            raise InvalidArgument(f"bands={bands!r}: band indices must be integers.")
        if not 0 <= int(b) < count:
            raise InvalidArgument(f"bands={bands!r}: index {int(b)} is out of range for the {count} band(s){where}.")
        if int(b) in out:
            raise InvalidArgument(f"bands={bands!r}: index {int(b)} is given twice.")
        out.append(int(b))
    return tuple(out)


def parse_nodata(nodata: Any, dtype: np.dtype[Any], *, name: str = "nodata") -> float | int | None:
    """Check that ``nodata`` is representable in ``dtype`` and return it as a Python scalar."""
    if nodata is None:
        return None
    dtype = np.dtype(dtype)
    if isinstance(nodata, bool | np.bool_):
        if dtype.kind != "b":
            raise InvalidArgument(f"{name}={nodata!r} is a bool; dtype {dtype} needs a number.")
        return int(nodata)
    if isinstance(nodata, int | np.integer) and dtype.kind in "iu":
        exact = int(nodata)  # exact, also beyond 2**53 (int64/uint64 extremes)
        info = np.iinfo(dtype)
        if not info.min <= exact <= info.max:
            raise InvalidArgument(f"{name}={nodata!r} is out of range for dtype {dtype} ([{info.min}, {info.max}]).")
        return exact
    try:
        value = float(nodata)
    except (TypeError, ValueError):
        raise InvalidArgument(f"{name}={nodata!r} is not a number.") from None
    if dtype.kind == "f":
        if math.isnan(value):
            return math.nan
        if math.isinf(value):
            return value
        if abs(value) > float(np.finfo(dtype).max):
            raise InvalidArgument(f"{name}={nodata!r} is out of range for dtype {dtype}.")
        return float(dtype.type(value))
    if dtype.kind in "iu":
        if math.isnan(value) or math.isinf(value) or value != int(value):
            raise InvalidArgument(
                f"{name}={nodata!r} is not representable in integer dtype {dtype} "
                "(use a float dtype for NaN or fractional nodata)."
            )
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise InvalidArgument(f"{name}={nodata!r} is out of range for dtype {dtype} ([{info.min}, {info.max}]).")
        return int(value)
    if dtype.kind == "b":
        if value not in (0.0, 1.0):
            raise InvalidArgument(f"{name}={nodata!r} is not representable in dtype bool.")
        return int(value)
    raise InvalidArgument(f"dtype {dtype} is not supported for rasters.")


_TIMES_EXPECTED = (
    "expected ISO 8601 ('2024-06-12', '2024-06-12T10:30:21', with 'Z' or an offset for UTC), "
    "the compact YYYYMMDD or YYYYMMDDTHHMMSS of satellite file names, datetimes or numpy.datetime64 values"
)


def parse_times(value: object, n: int | None = None, *, name: str = "times") -> np.ndarray | None:
    """Normalise ``times`` to a read-only 1-D ``datetime64[us]`` array (or ``None``).

    Each item is an ISO 8601 string (a date, or a date and time; with ``Z``
    or an offset it is converted to UTC, without one it is taken as UTC), a
    compact ``YYYYMMDD`` / ``YYYYMMDDTHHMMSS`` string, a ``datetime.date`` /
    ``datetime.datetime`` or a ``numpy.datetime64``. Numbers and anything else
    raise :class:`~pyr.errors.InvalidArgument` naming ``name`` and the item,
    as does a date numpy cannot hold in microseconds: no date is ever wrapped
    or guessed.

    Examples
    --------
    >>> parse_times(["2024-06-12", "20240712T103021", "2300-01-01T00:00:00+02:00"])
    array(['2024-06-12T00:00:00.000000', '2024-07-12T10:30:21.000000',
           '2299-12-31T22:00:00.000000'], dtype='datetime64[us]')
    """
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise InvalidArgument(f"{name}={value!r}: expected a sequence of dates, one per date of the cube.")
    if isinstance(value, np.ndarray) and value.dtype.kind == "M":
        times = _from_datetime64_array(value, name)
    else:
        items = np.asarray(value, dtype=object)
        if items.ndim != 1:
            raise InvalidArgument(f"{name} must be 1-D; got shape {items.shape}.")
        times = np.array([_parse_time(v, f"{name}[{i}]") for i, v in enumerate(items)], dtype=f"M8[{TIME_UNIT}]")
    if times.ndim != 1:
        raise InvalidArgument(f"{name} must be 1-D; got shape {times.shape}.")
    if np.isnat(times).any():
        raise InvalidArgument(f"{name} contains NaT.")
    if n is not None and len(times) != n:
        raise InvalidArgument(f"{name} has {len(times)} value(s); the cube has {n} date(s).")
    times.setflags(write=False)
    return times


def _from_datetime64_array(value: np.ndarray, name: str) -> np.ndarray:
    unit, _ = np.datetime_data(value.dtype)
    times = value.astype(f"M8[{TIME_UNIT}]")
    finer = unit in ("ns", "ps", "fs", "as")  # truncated to microseconds, never wrapped
    if not finer:
        back = times.astype(value.dtype)
        bad = ~((back == value) | np.isnat(value))
        if bad.any():
            first = value[bad][0]
            raise InvalidArgument(f"{name} holds {first!r}, out of the range of datetime64[{TIME_UNIT}].")
    return times


def _parse_time(item: object, where: str) -> np.datetime64:
    if isinstance(item, np.datetime64):
        if np.isnat(item):
            raise InvalidArgument(f"{where} is NaT.")
        return np.datetime64(_from_datetime64_array(np.array([item]), where)[0])
    if isinstance(item, bytes):
        item = item.decode("ascii", "replace")
    if isinstance(item, str):
        try:
            parsed: dt.date = dt.datetime.fromisoformat(item.strip())
        except ValueError:
            raise InvalidArgument(f"{where}={item!r} is not a date: {_TIMES_EXPECTED}.") from None
    elif isinstance(item, dt.date):
        parsed = item
    else:
        kind = "a number" if isinstance(item, int | float | np.number) else f"a {type(item).__name__}"
        raise InvalidArgument(f"{where}={item!r} is {kind}, not a date: {_TIMES_EXPECTED}.")
    if isinstance(parsed, dt.datetime):
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC).replace(tzinfo=None)
        return np.datetime64(parsed.replace(tzinfo=None), TIME_UNIT)
    return np.datetime64(dt.datetime(parsed.year, parsed.month, parsed.day), TIME_UNIT)
