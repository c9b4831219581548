"""The tile layout of one TIFF image (IFD), parsed from the file's own bytes.

Only the few tags a tile read needs are read: sizes, sample format, tiling,
compression, predictor, planar configuration and the tile offsets and byte
counts. :func:`parse` returns the layout of the image GDAL opens at a given
overview level, or ``None`` when the file is not one the native path reads
(strips, masks, big-endian, unknown codecs ...); the caller then lets GDAL
read it.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import attrs
import numpy as np

__all__ = ["CODECS", "GEO_TAGS", "HEAD_BYTES", "Layout", "parse"]

#: Bytes read at once from the start of a file (GDAL reads as much on open):
#: a COG's IFDs and tile index are usually inside.
HEAD_BYTES = 65536
#: TIFF compression codes the native path decodes: none, DEFLATE (two codes), ZSTD.
CODECS = {1: "none", 8: "deflate", 32946: "deflate", 50000: "zstd"}
_MAX_IFDS = 64

# TIFF field types -> (struct code, size)
_TYPES = {
    1: "B",
    2: "B",
    3: "H",
    4: "I",
    6: "b",
    7: "B",
    8: "h",
    9: "i",
    11: "f",
    12: "d",
    13: "I",
    16: "Q",
    17: "q",
    18: "Q",
}
_SAMPLE_KINDS = {1: "u", 2: "i", 3: "f"}
_WANTED = frozenset(
    {
        254,
        256,
        257,
        258,
        259,
        262,
        273,
        277,
        284,
        317,
        322,
        323,
        324,
        325,
        339,
        32997,
        33550,
        33922,
        34264,
        34735,
        42113,
        42112,
    }
)
#: The georeferencing tags of the first image: ModelPixelScale, ModelTiepoint, ModelTransformation,
#: GeoKeyDirectory, GDAL_NODATA, GDAL_METADATA (values kept raw in :attr:`Layout.geo`).
GEO_TAGS = (33550, 33922, 34264, 34735, 42113, 42112)

ReadAt = Callable[[int, int], bytes]


@attrs.frozen(eq=False)
class Layout:
    """One tiled image: what a window read needs to find, fetch and decode its tiles."""

    height: int
    width: int
    tile_height: int
    tile_width: int
    samples: int
    dtype: str  # numpy dtype name, little-endian
    codec: str  # a value of CODECS
    predictor: int  # 1 none, 2 horizontal, 3 floating point
    planar: bool  # True for PLANARCONFIG=SEPARATE (one plane of tiles per band)
    offsets: np.ndarray  # uint64, one per tile (per band plane first when planar)
    counts: np.ndarray  # uint64
    full_size: tuple[int, int] = (0, 0)  # (height, width) of the full-resolution image
    geo: dict[int, tuple[float, ...] | str] = attrs.field(factory=dict)  # GEO_TAGS of the first image

    @property
    def tiles_across(self) -> int:
        """Tiles per row of tiles."""
        return -(-self.width // self.tile_width)

    @property
    def tiles_down(self) -> int:
        """Rows of tiles."""
        return -(-self.height // self.tile_height)

    def tile_index(self, plane: int, ty: int, tx: int) -> int:
        """Position in ``offsets`` of tile (``ty``, ``tx``) of ``plane`` (0 unless planar)."""
        return (plane * self.tiles_down + ty) * self.tiles_across + tx

    def fits(self, indexes: tuple[int, ...], window: tuple[int, int, int, int]) -> bool:
        """Whether ``window`` = (row0, row1, col0, col1) lies inside the image and bands ``indexes`` (1-based) exist."""
        r0, r1, c0, c1 = window
        inside = 0 <= r0 < r1 <= self.height and 0 <= c0 < c1 <= self.width
        return inside and all(1 <= i <= self.samples for i in indexes)

    def window_tiles(self, indexes: tuple[int, ...], window: tuple[int, int, int, int]) -> list[tuple[int, ...]]:
        """(plane, tile row, tile col, position in the index) of every tile ``window`` touches."""
        r0, r1, c0, c1 = window
        th, tw = self.tile_height, self.tile_width
        planes = sorted({i - 1 for i in indexes}) if self.planar else [0]
        return [
            (p, ty, tx, self.tile_index(p, ty, tx))
            for p in planes
            for ty in range(r0 // th, (r1 - 1) // th + 1)
            for tx in range(c0 // tw, (c1 - 1) // tw + 1)
        ]

    def tile_ranges(self, tiles: list[tuple[int, ...]]) -> list[tuple[int, int]]:
        """The (offset, byte count) of each of ``tiles`` (as :meth:`window_tiles` gives them) in the file."""
        return [(int(self.offsets[k]), int(self.counts[k])) for *_, k in tiles]


class _Reader:
    """Bytes of a file through one head buffer; reads past it go to ``read_at``."""

    def __init__(self, read_at: ReadAt) -> None:
        self.read_at = read_at
        self.head = read_at(0, HEAD_BYTES)

    def get(self, offset: int, size: int) -> bytes:
        if offset + size <= len(self.head):
            return self.head[offset : offset + size]
        data = self.read_at(offset, size)
        if len(data) != size:
            raise ValueError(f"truncated: {size} bytes wanted at offset {offset}, {len(data)} read")
        return data


_Entry = tuple[int, int, int]  # field type, count, offset of the value (or of the inline value)


def _ifds(reader: _Reader) -> tuple[str, bool, list[dict[int, _Entry]]]:
    """Byte order, BigTIFF flag and the wanted entries of every IFD in the chain."""
    head = reader.head
    if head[:2] == b"II":
        bo = "<"
    elif head[:2] == b"MM":
        bo = ">"
    else:
        raise ValueError("not a TIFF")
    (magic,) = struct.unpack(bo + "H", head[2:4])
    if magic == 42:
        big, (next_ifd,) = False, struct.unpack(bo + "I", head[4:8])
    elif magic == 43:
        big, (next_ifd,) = True, struct.unpack(bo + "Q", head[8:16])
    else:
        raise ValueError("not a TIFF")
    count_fmt, entry_size, value_size, next_fmt = ("Q", 20, 8, "Q") if big else ("H", 12, 4, "I")
    count_size = struct.calcsize(count_fmt)
    out: list[dict[int, _Entry]] = []
    seen: set[int] = set()
    while next_ifd and len(out) < _MAX_IFDS and next_ifd not in seen:
        seen.add(next_ifd)
        (n,) = struct.unpack(bo + count_fmt, reader.get(next_ifd, count_size))
        raw = reader.get(next_ifd + count_size, n * entry_size + value_size)
        entries: dict[int, _Entry] = {}
        for i in range(n):
            e = raw[i * entry_size : (i + 1) * entry_size]
            tag, ftype = struct.unpack(bo + "HH", e[:4])
            if tag not in _WANTED:
                continue
            (count,) = struct.unpack(bo + ("Q" if big else "I"), e[4 : 4 + value_size])
            code = _TYPES.get(ftype)
            if code is None:
                raise ValueError(f"tag {tag} has field type {ftype}")
            inline = count * struct.calcsize(code) <= value_size
            if inline:
                where = next_ifd + count_size + i * entry_size + 4 + value_size
            else:
                (where,) = struct.unpack(bo + ("Q" if big else "I"), e[4 + value_size :])
            entries[tag] = (ftype, count, where)
        out.append(entries)
        (next_ifd,) = struct.unpack(bo + next_fmt, raw[n * entry_size :])
    return bo, big, out


def _values(reader: _Reader, bo: str, entry: _Entry) -> np.ndarray:
    ftype, count, where = entry
    dtype = np.dtype(bo + _TYPES[ftype])
    return np.frombuffer(reader.get(where, count * dtype.itemsize), dtype=dtype)


def _scalar(reader: _Reader, bo: str, ifd: dict[int, _Entry], tag: int, default: int) -> int:
    entry = ifd.get(tag)
    return default if entry is None else int(_values(reader, bo, entry)[0])


def _layout(reader: _Reader, bo: str, ifd: dict[int, _Entry]) -> Layout | None:
    """The layout of one IFD, or ``None`` for what the native path does not read."""
    if 322 not in ifd or 323 not in ifd or 324 not in ifd or 325 not in ifd:
        return None  # strips
    if _scalar(reader, bo, ifd, 32997, 1) != 1:
        return None  # a 3-D (SGI ImageDepth) image
    codec = CODECS.get(_scalar(reader, bo, ifd, 259, 1))
    samples = _scalar(reader, bo, ifd, 277, 1)
    bits = {int(b) for b in _values(reader, bo, ifd[258])} if 258 in ifd else {1}
    kinds = {int(k) for k in _values(reader, bo, ifd[339])} if 339 in ifd else {1}
    if codec is None or len(bits) != 1 or len(kinds) != 1 or _scalar(reader, bo, ifd, 262, 1) == 6:
        return None  # another codec, mixed samples, or YCbCr
    kind = _SAMPLE_KINDS.get(kinds.pop())
    nbits = bits.pop()
    if kind is None or nbits not in (8, 16, 32, 64) or (kind == "f" and nbits < 32):
        return None
    predictor = _scalar(reader, bo, ifd, 317, 1)
    if predictor not in (1, 2, 3) or (predictor == 3 and kind != "f"):
        return None
    planar = _scalar(reader, bo, ifd, 284, 1) == 2
    offsets = _values(reader, bo, ifd[324]).astype(np.uint64)
    counts = _values(reader, bo, ifd[325]).astype(np.uint64)
    layout = Layout(
        height=_scalar(reader, bo, ifd, 257, 0),
        width=_scalar(reader, bo, ifd, 256, 0),
        tile_height=_scalar(reader, bo, ifd, 323, 0),
        tile_width=_scalar(reader, bo, ifd, 322, 0),
        samples=samples,
        dtype=np.dtype(f"{kind}{nbits // 8}").name,
        codec=codec,
        predictor=predictor,
        planar=planar and samples > 1,
        offsets=offsets,
        counts=counts,
    )
    if min(layout.height, layout.width, layout.tile_height, layout.tile_width, samples) < 1:
        return None
    expected = layout.tiles_down * layout.tiles_across * (samples if layout.planar else 1)
    if len(offsets) != expected or len(counts) != expected:
        return None
    return layout


def parse(read_at: ReadAt, overview: int | None) -> Layout | None:
    """The layout of the image GDAL opens at ``overview`` (``None``: the full-resolution one).

    ``None`` when the native path does not read this file: not a little-endian
    TIFF, an internal mask, an overview that is not tiled like the others, or
    any image :func:`_layout` refuses. Raises ``ValueError`` for a file whose
    header cannot be parsed.
    """
    reader = _Reader(read_at)
    bo, _, ifds = _ifds(reader)
    if bo != "<" or not ifds:
        return None
    kinds = [_scalar(reader, bo, ifd, 254, 0) for ifd in ifds]
    if any(k & 4 for k in kinds):
        return None  # an internal mask (GDAL's per-dataset mask): left to GDAL
    if kinds[0] & 1:
        return None  # the first image is itself a reduced one
    levels = [ifds[0]] + [ifd for ifd, k in zip(ifds[1:], kinds[1:], strict=True) if k & 1]
    level = 0 if overview is None else overview + 1
    if level >= len(levels):
        return None
    layout = _layout(reader, bo, levels[level])
    if layout is None:
        return None
    first = ifds[0]
    geo: dict[int, tuple[float, ...] | str] = {}
    for tag in GEO_TAGS:
        if tag in first:
            values = _values(reader, bo, first[tag])
            if first[tag][0] == 2:  # ASCII
                geo[tag] = values.tobytes().split(b"\0")[0].decode("latin-1")
            else:
                geo[tag] = tuple(float(v) for v in values)
    full = (_scalar(reader, bo, first, 257, 0), _scalar(reader, bo, first, 256, 0))
    return attrs.evolve(layout, full_size=full, geo=geo)
