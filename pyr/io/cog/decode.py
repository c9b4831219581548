"""Tile bytes -> pixels: the codec (libdeflate, zstd through imagecodecs), then the TIFF predictor.

Runs in the calling thread; imagecodecs releases the GIL while it decodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pyr.io.cog.layout import Layout

__all__ = ["codecs_available", "decode_tile"]


def codecs_available() -> bool | None:
    """Whether imagecodecs (the ``pyr[native]`` extra) can be imported; ``None`` if that is not known yet.

    ``None`` when the import failed for another reason than its absence (no
    file descriptor left, say): the next read asks again.
    """
    try:
        import imagecodecs  # noqa: F401
    except ImportError:
        return False
    except Exception:
        return None
    return True


def decode_tile(layout: Layout, data: bytes, into: np.ndarray | None = None) -> np.ndarray:
    """One tile's pixels, ``(tile_height, tile_width, samples)`` (one sample per planar tile).

    ``into``, a C-contiguous array of the tile's size and dtype, receives the
    pixels (no copy) and is returned reshaped. Raises ``ValueError`` (or
    imagecodecs' error) when the bytes do not decode to exactly one tile.
    """
    import imagecodecs

    samples = 1 if layout.planar else layout.samples
    dtype = np.dtype(layout.dtype)
    shape = (layout.tile_height, layout.tile_width, samples)
    nbytes = shape[0] * shape[1] * samples * dtype.itemsize
    buf: Any = np.empty(nbytes, np.uint8) if into is None else into.reshape(-1).view(np.uint8)
    if layout.codec == "none":
        if len(data) < nbytes:
            raise ValueError(f"{len(data)} bytes for a tile of {nbytes}")
        buf[:] = np.frombuffer(data, np.uint8, nbytes)
    else:
        codec = imagecodecs.deflate_decode if layout.codec == "deflate" else imagecodecs.zstd_decode
        got = codec(data, out=buf)
        if len(got) != nbytes:
            raise ValueError(f"decoded {len(got)} bytes for a tile of {nbytes}")
    if layout.predictor == 2:
        # horizontal differencing of the samples as unsigned integers of their size (libtiff's way)
        ints: np.ndarray = buf.view(f"u{dtype.itemsize}").reshape(shape)
        imagecodecs.delta_decode(ints, axis=-2, out=ints)
        return ints.view(dtype)
    if layout.predictor == 3:
        coded = buf.view(dtype).reshape(shape)
        if into is None:
            return np.asarray(imagecodecs.floatpred_decode(coded, axis=-2))
        return np.asarray(imagecodecs.floatpred_decode(coded.copy(), axis=-2, out=coded))
    out: np.ndarray = buf.view(dtype).reshape(shape)
    return out
