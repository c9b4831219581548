"""Zarr v2 compressors on Sentinel-2-like chunks: encode and decode speed, and size.

``python -m benchmarks.codecs [--repeat 5] [--size 10980 --dates 10]``

Why pyr writes with Blosc LZ4 and byte shuffle by default
(``pyr/io/_zarr_layout.py``): this measures the candidates on 1024 x 1024
chunks of (a) real Sentinel-2 L2A B04 (``../shared/data/real/s2l2a_cog_29RKH_20200219``,
a 10x decimated tile, so neighbouring pixels are 100 m apart and less alike
than at 10 m) and (b) the benchmarks' synthetic B04 at full resolution,
each as stored (uint16) and as reflectance (``a * 1e-4`` as float32, nodata
NaN: what the one-band pipeline writes). One thread, in this process; the
figures are milliseconds per 4 MiB chunk and the compressed size as a share
of the raw bytes. Prints one JSON line per (data, codec) and a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REAL_B04 = HERE.parent.parent / "shared" / "data" / "real" / "s2l2a_cog_29RKH_20200219" / "B04.tif"


def candidates() -> dict[str, Any]:
    import numcodecs

    blosc = numcodecs.Blosc
    return {
        "blosc-zstd1-shuffle": blosc(cname="zstd", clevel=1, shuffle=blosc.SHUFFLE),
        "blosc-zstd3-shuffle": blosc(cname="zstd", clevel=3, shuffle=blosc.SHUFFLE),
        "blosc-lz4-shuffle (pyr)": blosc(cname="lz4", clevel=5, shuffle=blosc.SHUFFLE),
        "blosc-zstd1-bitshuffle": blosc(cname="zstd", clevel=1, shuffle=blosc.BITSHUFFLE),
        "zstd1 (no shuffle)": numcodecs.Zstd(level=1),
        "zlib1": numcodecs.Zlib(level=1),
        "zlib6 (GDAL's DEFLATE default)": numcodecs.Zlib(level=6),
    }


def chunks_of(path: Path, size: int = 1024, limit: int = 4) -> list[np.ndarray]:
    """Up to ``limit`` full ``size`` x ``size`` chunks of band 1, tiled from the top left."""
    import rasterio

    with rasterio.open(path) as ds:
        a = ds.read(1)
    out = []
    for r in range(0, a.shape[0] - size + 1, size):
        for c in range(0, a.shape[1] - size + 1, size):
            out.append(np.ascontiguousarray(a[r : r + size, c : c + size]))
            if len(out) == limit:
                return out
    if not out:  # smaller than one chunk: tile it (still real pixels, repeated)
        reps = (-(-size // a.shape[0]), -(-size // a.shape[1]))
        out.append(np.ascontiguousarray(np.tile(a, reps)[:size, :size]))
    return out


def reflectance(a: np.ndarray) -> np.ndarray:
    out = a.astype("float32") * np.float32(1e-4)
    out[a == 0] = np.nan
    return out


def measure(codec: Any, blocks: list[np.ndarray], repeat: int) -> dict[str, float]:
    enc_times, dec_times, sizes = [], [], []
    for block in blocks:
        encoded = codec.encode(block)
        sizes.append(len(encoded) / block.nbytes)
        out = np.empty_like(block)
        for _ in range(repeat):
            t0 = time.perf_counter()
            codec.encode(block)
            enc_times.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            codec.decode(encoded, out=out)
            dec_times.append(time.perf_counter() - t0)
        assert np.array_equal(out, block, equal_nan=block.dtype.kind == "f")
    scale = 4 * 1024 * 1024 / blocks[0].nbytes  # per 4 MiB of raw data
    return {
        "encode_ms_per_4MiB": round(statistics.median(enc_times) * 1e3 * scale, 2),
        "decode_ms_per_4MiB": round(statistics.median(dec_times) * 1e3 * scale, 2),
        "size_ratio": round(statistics.mean(sizes), 4),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.codecs", description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--size", type=int, default=10980, help="side of the synthetic series (cached in benchmarks/.cache)")
    p.add_argument("--dates", type=int, default=10, help="dates of that series (only its first date is used)")
    args = p.parse_args(argv)
    from numcodecs import blosc

    blosc.use_threads = False  # one thread, as in pyr's chunk tasks
    from benchmarks._data import series

    sources: dict[str, Path] = {}
    if REAL_B04.exists():
        sources["real S2 B04 (100 m)"] = REAL_B04
    sources[f"synthetic B04 (10 m, {args.size} px)"] = Path(series(size=args.size, dates=args.dates)[0][0])
    rows = []
    for label, path in sources.items():
        raw = chunks_of(path)
        for kind, blocks in (("uint16", raw), ("float32 reflectance", [reflectance(b) for b in raw])):
            for name, codec in candidates().items():
                rec = {
                    "bench": "codecs",
                    "data": label,
                    "dtype": kind,
                    "codec": name,
                    **measure(codec, blocks, args.repeat),
                }
                print(json.dumps(rec), flush=True)
                rows.append(rec)
    print("| data | dtype | codec | encode ms / 4 MiB | decode ms / 4 MiB | size / raw |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['data']} | {r['dtype']} | {r['codec']} | {r['encode_ms_per_4MiB']} | "
            f"{r['decode_ms_per_4MiB']} | {r['size_ratio']:.3f} |"
        )


if __name__ == "__main__":
    main()
