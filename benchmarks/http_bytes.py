"""Bytes and requests of a full lazy read of a COG over HTTP: pyr vs rioxarray.

A synthetic Sentinel-2-like B04 COG (``benchmarks/_data.series``: uint16,
DEFLATE, ``--block`` tiles, overviews; cached under ``benchmarks/.cache``)
is served by the test suite's Range server on 127.0.0.1. Each
implementation runs in a fresh Python process (GDAL's per-process cache
starts cold), opens the URL lazily with the same chunks, and computes every
chunk with dask's threaded scheduler. The server counts every request and
body byte sent (an aborted response counts what was written before the
client hung up); a marker request separates opening (graph building) from
compute. ``requests_per_chunk`` counts compute requests per dask chunk.

One JSON line per implementation and repeat::

    {"impl": "pyr", "size": 10980, "block": 1024, "chunks": 2048,
     "file_bytes": ..., "tile_bytes": ..., "http_bytes": ...,
     "bytes_ratio": http/file, "bytes_per_tile_byte": http/full-resolution tiles,
     "open_requests": 2, "compute_requests": ..., "chunks_total": 36,
     "requests_per_chunk": ..., "head_requests": ..., "seconds": ..., "correct": true}

Usage::

    python -m benchmarks.http_bytes                 # 10980 x 10980, 1024 tiles, 2048 chunks
    python -m benchmarks.http_bytes --size 5490     # a moderate run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARK = "__pyr_bench_mark__"
#: What rioxarray's COG example sets (and the merge GDAL does by default).
RIOXARRAY_ENV = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_USE_HEAD": "NO",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": "TIF",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
}


# --- the child: one implementation, one cold process ------------------------------------


def _mark(base_url: str) -> None:
    import contextlib
    import urllib.error
    import urllib.request

    # the server answers 404; what matters is that it logged the request
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(f"{base_url}/{MARK}", timeout=10).read()


def _run_pyr(url: str, base_url: str, chunks: int, workers: int) -> dict[str, Any]:
    import dask
    import dask.array  # imported before timing, as rioxarray imports it on import

    import pyr

    t0 = time.perf_counter()
    r = pyr.read(url, chunks=(chunks, chunks), env=pyr.cloud_env())
    t_open = time.perf_counter() - t0
    _mark(base_url)
    t1 = time.perf_counter()
    with dask.config.set(scheduler="threads", num_workers=workers):
        total = int(r.data.sum(dtype="uint64").compute())
    return {
        "open_seconds": round(t_open, 3),
        "seconds": round(time.perf_counter() - t1, 3),
        "checksum": total,
        "chunks_total": int(r.data.npartitions),
        "env": "pyr.cloud_env()",
    }


def _run_rioxarray(url: str, base_url: str, chunks: int, workers: int) -> dict[str, Any]:
    import dask
    import rasterio
    import rioxarray

    with rasterio.Env(**RIOXARRAY_ENV):
        t0 = time.perf_counter()
        da = rioxarray.open_rasterio(url, chunks={"band": 1, "y": chunks, "x": chunks}, lock=False)
        t_open = time.perf_counter() - t0
        _mark(base_url)
        t1 = time.perf_counter()
        with dask.config.set(scheduler="threads", num_workers=workers):
            total = int(da.data.sum(dtype="uint64").compute())
    return {
        "open_seconds": round(t_open, 3),
        "seconds": round(time.perf_counter() - t1, 3),
        "checksum": total,
        "chunks_total": int(da.data.npartitions),
        "env": RIOXARRAY_ENV,
    }


IMPLS = {"pyr": _run_pyr, "rioxarray": _run_rioxarray}


def _child(spec: str) -> None:
    job = json.loads(spec)
    out = IMPLS[job["impl"]](job["url"], job["base_url"], job["chunks"], job["workers"])
    print(json.dumps(out), flush=True)


# --- the parent: data, server, counting --------------------------------------------------


def _server(root: Path) -> Any:
    sys.path.insert(0, str(ROOT))
    from tests.servers import RangeServer  # the test suite's server: counts per path and method

    return RangeServer(root)


def _checksum_and_tile_bytes(path: Path) -> tuple[int, int]:
    """The pixel sum, and the bytes of the full-resolution tiles (what a full read needs at least)."""
    import numpy as np
    import rasterio

    total = tiles = 0
    with rasterio.open(path) as ds:
        for (i, j), window in ds.block_windows(1):
            total += int(ds.read(1, window=window).sum(dtype=np.uint64))
            tiles += int(ds.get_tag_item(f"BLOCK_SIZE_{j}_{i}", "TIFF", bidx=1) or 0)
    return total, tiles


def _measure(server: Any, name: str, impl: str, chunks: int, workers: int, timeout: float) -> dict[str, Any]:
    server.reset()
    job = {"impl": impl, "url": server.url(name), "base_url": server.base_url, "chunks": chunks, "workers": workers}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.http_bytes", "--child", json.dumps(job)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if proc.returncode != 0:
        return {"status": "error", "error": (proc.stderr.strip().splitlines() or ["?"])[-1][:300]}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    log = list(server.log)
    split = next((i for i, (_, p, _) in enumerate(log) if p.endswith(MARK)), len(log))
    opening = [e for e in log[:split] if e[1] == "/" + name]
    computing = [e for e in log[split + 1 :] if e[1] == "/" + name]
    others = sorted({p for _, p, _ in log if p not in ("/" + name, "/" + MARK)})
    result.update(
        status="ok",
        open_requests=len(opening),
        compute_requests=len(computing),
        head_requests=sum(1 for m, _, _ in log if m == "HEAD"),
        other_paths=others,
        http_bytes=server.bytes_sent(name),
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10980, help="rows and columns of the COG (default 10980)")
    p.add_argument("--block", type=int, default=1024, help="internal tile size (default 1024)")
    p.add_argument("--chunks", type=int, default=2048, help="dask chunk size, both implementations (default 2048)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="dask threads")
    p.add_argument("--impls", default="pyr,rioxarray", help="comma-separated: pyr, rioxarray")
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per run")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        _child(args.child)
        return 0
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        p.error(f"unknown --impls {unknown}; expected some of {sorted(IMPLS)}")
    from benchmarks._data import series

    paths, origin = series(size=args.size, dates=1, block=args.block)
    path = Path(paths[0])
    file_bytes = path.stat().st_size
    expected, tile_bytes = _checksum_and_tile_bytes(path)
    print(f"# {path.name}: {file_bytes} bytes ({tile_bytes} in full-resolution tiles) from {origin}", file=sys.stderr)
    with _server(path.parent) as server:
        for r in range(args.repeat):
            for impl in impls if r % 2 == 0 else impls[::-1]:
                rec: dict[str, Any] = {
                    "bench": "http_bytes",
                    "impl": impl,
                    "repeat": r,
                    "size": args.size,
                    "block": args.block,
                    "chunks": args.chunks,
                    "workers": args.workers,
                    "file_bytes": file_bytes,
                    "tile_bytes": tile_bytes,
                }
                rec.update(_measure(server, path.name, impl, args.chunks, args.workers, args.timeout))
                if rec["status"] == "ok":
                    rec["bytes_ratio"] = round(rec["http_bytes"] / file_bytes, 4)
                    rec["bytes_per_tile_byte"] = round(rec["http_bytes"] / tile_bytes, 4)
                    rec["requests_per_chunk"] = round(rec["compute_requests"] / rec["chunks_total"], 3)
                    rec["correct"] = rec.pop("checksum") == expected
                print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
