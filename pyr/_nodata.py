"""Nodata, one home: whether two nodata values are the same, and which cells a nodata value marks.

A nodata value is ``None`` (no cell is missing by value), a Python ``int``
or ``float`` of the data's kind (:func:`pyr.types.parse_nodata` makes it
one), or NaN. NaN is equal to NaN here, unlike ``==``; and in a float
array a NaN cell holds no data whatever the nodata value.

>>> import math
>>> same_nodata(math.nan, float("nan")), same_nodata(0, None), is_value(math.nan)
(True, False, False)
>>> import numpy as np
>>> missing(np.array([0.0, 1.0, np.nan]), 0).tolist()
[True, False, True]
>>> out = np.array([0, 5, 0])
>>> fill_holes(out, np.array([7, 8, 0]), 0), out.tolist()
(True, [7, 5, 0])
>>> first_valid(iter([np.array([0, 5]), None, np.array([7, 0]), np.array([9, 9])]), 0).tolist()
[7, 5]
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

__all__ = ["fill_holes", "first_valid", "is_nan", "is_value", "missing", "nodata_key", "same_nodata"]

Nodata = float | int | None


def is_nan(nodata: Nodata) -> bool:
    """Whether ``nodata`` is NaN."""
    return isinstance(nodata, float) and math.isnan(nodata)


def is_value(nodata: Nodata) -> bool:
    """Whether pixels can equal ``nodata`` (it is neither ``None`` nor NaN)."""
    return nodata is not None and not is_nan(nodata)


def same_nodata(a: Nodata, b: Nodata) -> bool:
    """Whether two nodata values mark the same cells: both ``None``, both NaN, or equal numbers."""
    if a is None or b is None:
        return a is None and b is None
    if is_nan(a) or is_nan(b):
        return is_nan(a) and is_nan(b)
    return bool(a == b)


def nodata_key(nodata: Nodata) -> object:
    """A hashable, tokenizable stand-in for ``nodata`` that is equal for two NaNs."""
    return "nan" if is_nan(nodata) else nodata


def missing(block: np.ndarray, nodata: Nodata) -> np.ndarray | None:
    """Where ``block`` holds no data (NaN in a float block, or ``nodata``); ``None`` when nowhere can."""
    mask: np.ndarray | None = np.isnan(block) if block.dtype.kind == "f" else None
    if is_value(nodata):
        eq: np.ndarray = block == nodata
        mask = eq if mask is None else mask | eq
    return mask


def fill_holes(out: np.ndarray, block: np.ndarray, nodata: Nodata) -> bool:
    """Fill the cells of ``out`` that hold no data from ``block``, in place; whether any is still empty.

    The rule of every mosaic in pyr (``mosaic``, ``read_cube(group_by=)``,
    ``read_stac``): the first valid pixel wins, later sources fill only holes.
    """
    hole = missing(out, nodata)
    if hole is None:
        return False
    out[hole] = block[hole]
    return _any_missing(out, nodata)


def _any_missing(block: np.ndarray, nodata: Nodata) -> bool:
    hole = missing(block, nodata)
    return hole is not None and bool(hole.any())


def first_valid(blocks: Iterator[np.ndarray | None], nodata: Nodata) -> np.ndarray | None:
    """The blocks merged, each cell from the first block that has data there (``None``: no block).

    ``blocks`` is consumed lazily and left as soon as no cell is missing, so a
    generator that reads a source per block reads no more sources than that;
    a ``None`` block (a source that gave nothing) is skipped.
    """
    out: np.ndarray | None = None
    for block in blocks:
        if block is None:
            continue
        if out is None:
            out = block
            if not _any_missing(out, nodata):
                break
        elif not fill_holes(out, block, nodata):
            break
    return out
