"""Whether a file's own georeferencing tags give exactly the grid a read was planned on.

A lazy read plans its chunks on GDAL's header of the source; each chunk
task checks that the file it reads still has that header. For a URL, the
GDAL open that check needs costs several round trips per file and
process. :func:`agrees` reads the answer from the tags the native path has
already parsed instead: EPSG-coded CRSs (``GTModelType`` projected or
geographic, pixel-is-area, metres or degrees), a pixel scale and one tie
point, ``GDAL_NODATA``; anything else (user-defined CRSs, rotation,
pixel-is-point, other keys) answers ``False`` and GDAL's header is read as
before. ``False`` is never an error: it only means "ask GDAL".
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
from affine import Affine

from pyr.io.cog.layout import Layout

__all__ = ["agrees"]

# GeoKeys GDAL reads the same way whatever their value here (citations), and the ones checked below.
_CITATIONS = frozenset({1026, 2049, 3073})
_KNOWN = frozenset({1024, 1025, 2048, 2054, 3072, 3076}) | _CITATIONS


def _geokeys(directory: tuple[float, ...] | str) -> dict[int, int] | None:
    """The GeoKeys with inline SHORT values; ``None`` for a directory with any other non-citation key."""
    if isinstance(directory, str) or len(directory) < 4:
        return None
    keys: dict[int, int] = {}
    count = int(directory[3])
    for n in range(count):
        entry = directory[4 + 4 * n : 8 + 4 * n]
        if len(entry) < 4:
            return None
        key, location, _, value = (int(v) for v in entry)
        if key in _CITATIONS:
            continue
        if location != 0 or key not in _KNOWN:
            return None
        keys[key] = value
    return keys


@functools.lru_cache(maxsize=64)
def _crs(code: int) -> Any:
    from rasterio.crs import CRS

    return CRS.from_epsg(code)


def agrees(layout: Layout, expect: Any) -> bool:
    """Whether ``layout``'s tags give ``expect``'s grid, band count, dtype, nodata and (no) scales/offsets exactly."""
    from pyr.geobox import GeoBox
    from pyr.types import parse_nodata

    geo = layout.geo
    scale, tie, directory = geo.get(33550), geo.get(33922), geo.get(34735)
    if 34264 in geo or not isinstance(scale, tuple) or not isinstance(tie, tuple) or directory is None:
        return False
    keys = _geokeys(directory)
    if keys is None or keys.get(1025, 1) != 1:
        return False  # unknown keys, or pixel-is-point (GDAL shifts by half a pixel)
    model = keys.get(1024)
    if model == 1 and keys.get(3076, 9001) == 9001:
        code = keys.get(3072, 0)
    elif model == 2 and keys.get(2054, 9102) == 9102:
        code = keys.get(2048, 0)
    else:
        return False
    if not 1024 <= code < 32767 or len(scale) < 2 or len(tie) < 6:
        return False
    sx, sy = scale[0], scale[1]
    full_h, full_w = layout.full_size
    a = sx if layout.width == full_w else sx * (full_w / layout.width)
    e = -sy if layout.height == full_h else -sy * (full_h / layout.height)
    transform = Affine(a, 0.0, tie[3] - tie[0] * sx, 0.0, e, tie[4] + tie[1] * sy)
    text = geo.get(42113)
    try:
        nodata = None if text is None else parse_nodata(float(str(text)), np.dtype(layout.dtype))
        geobox = GeoBox((layout.height, layout.width), transform, _crs(code))
    except Exception:  # a nodata the dtype cannot hold, an unknown code ...: GDAL says what it makes of it
        return False
    metadata = str(geo.get(42112, ""))
    if 'role="scale"' in metadata or 'role="offset"' in metadata:
        return False  # GDAL reads the band scales and offsets, which the header check compares
    identity = ((1.0,) * layout.samples, (0.0,) * layout.samples)
    return bool(
        geobox == expect.geobox
        and layout.samples == expect.count
        and layout.dtype == expect.dtype
        and repr(nodata) == repr(expect.nodata)
        and expect.factors(range(1, layout.samples + 1)) == identity
    )
