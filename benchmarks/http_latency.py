"""Reads over HTTP with a delay per request: one full-size band and a ten-date cube mean.

``python -m benchmarks.http_latency [--servers 0:0 0.04:0 0.04:50e6] [--impls ...] [--repeat 2]``

The server (``benchmarks._delay_server``) runs in its own process, waits
``delay`` seconds before answering each request (S3's first-byte latency is
20-60 ms), optionally caps each connection's bandwidth (``--servers
DELAY:RATE``, RATE in bytes/s, 0 for none), and counts the requests waiting
at once. Every run is a fresh Python process (no cache carries over; its
imports are made before the clock starts), on dask's threaded scheduler with
its default 2 threads here:

* ``band``: ``pyr.read(url, chunks="auto")`` of one 10980 x 10980 uint16 COG
  (1024 x 1024 DEFLATE tiles), the NaN-skipping float64 sum computed.
* ``cube``: ``pyr.read_cube`` of ten 4096 x 4096 dates, ``reduce_time(..., "mean")``,
  the sum of the result computed.

Implementations: ``pyr`` (native tile path, the default), ``pyr-gdal``
(``PYR_NATIVE=0``: GDAL reads), ``pyr-gdal-16`` (GDAL with 16 dask threads:
16 requests in flight), ``pyr-inflightN`` (native with
``pyr.requests-in-flight=N``), ``pyr-aheadN`` (native with
``pyr.read-ahead=N``), ``rioxarray`` (``open_rasterio(url, chunks=1024 tiles,
lock=False)`` under pyr's GDAL options; the cube concatenated over time and
averaged with nodata masked, as xarray users write it), ``async-geotiff`` (async-geotiff over obstore,
64 tile fetches in flight, the same sums; only where it is installed).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
IMPLS = ("pyr", "pyr-gdal", "pyr-gdal-16", "rioxarray", "async-geotiff")


def _pyr_job(job: dict[str, Any]) -> float:
    import dask
    import numpy as np

    import pyr

    impl = job["impl"]
    if impl.startswith("pyr-gdal"):
        os.environ["PYR_NATIVE"] = "0"
    config: dict[str, Any] = {"scheduler": "threads"}
    if impl == "pyr-gdal-16":
        config["num_workers"] = 16
    if impl.startswith("pyr-inflight"):
        config["pyr.requests-in-flight"] = int(impl[len("pyr-inflight") :])
    if impl.startswith("pyr-ahead"):
        config["pyr.read-ahead"] = int(impl[len("pyr-ahead") :])
    env = pyr.cloud_env()
    with dask.config.set(config):
        if job["pipeline"] == "band":
            r = pyr.read(job["urls"][0], chunks="auto", env=env)
            return float(r.data.sum(dtype="float64").compute())
        cube = pyr.read_cube(job["urls"], chunks="auto", env=env)
        mean = pyr.reduce_time(cube, "mean")
        return float(np.nansum(mean.data.compute(), dtype="float64"))


def _rioxarray_job(job: dict[str, Any]) -> float:
    import dask
    import numpy as np
    import rasterio
    import rioxarray
    import xarray as xr

    import pyr

    chunks = {"band": 1, "y": 1024, "x": 1024}
    with dask.config.set(scheduler="threads"), rasterio.Env(**pyr.cloud_env()):
        if job["pipeline"] == "band":
            band = rioxarray.open_rasterio(job["urls"][0], chunks=chunks, lock=False)
            return float(band.sum(dtype="float64").compute())
        dates = [rioxarray.open_rasterio(u, chunks=chunks, lock=False) for u in job["urls"]]
        cube = xr.concat(dates, dim="time")
        mean = cube.where(cube != 0).mean("time").astype("float32")
        return float(np.nansum(mean.compute().values, dtype="float64"))


def _async_geotiff_job(job: dict[str, Any]) -> float:
    import asyncio

    import numpy as np
    from async_geotiff import GeoTIFF
    from obstore.store import HTTPStore

    base, names = job["base"], [u.rsplit("/", 1)[1] for u in job["urls"]]
    prefix = job["urls"][0][len(base) + 1 :].rsplit("/", 1)[0]
    store = HTTPStore.from_url(f"{base}/{prefix}", client_options={"allow_http": True})

    async def run() -> float:
        sem = asyncio.Semaphore(64)
        tiffs = await asyncio.gather(*(GeoTIFF.open(n, store=store) for n in names))
        first = tiffs[0]
        nx = -(-first.width // first.tile_width)
        ny = -(-first.height // first.tile_height)

        async def tile(t: Any, x: int, y: int) -> Any:
            async with sem:
                got = await t.fetch_tile(x, y)
                return np.asarray(got.array.data)

        async def cell(x: int, y: int) -> float:
            stack = np.stack(await asyncio.gather(*(tile(t, x, y) for t in tiffs)))
            if len(tiffs) == 1:
                return float(stack.sum(dtype="float64"))
            valid = stack != 0
            n = valid.sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = (stack.sum(axis=0, dtype="float64", where=valid) / n).astype("float32")
            return float(np.nansum(mean, dtype="float64"))

        parts = await asyncio.gather(*(cell(x, y) for y in range(ny) for x in range(nx)))
        return float(sum(parts))

    return asyncio.run(run())


#: What each implementation imports, done before the clock starts (imports are not reads). dask's first
#: compute imports ``distributed`` where it is installed (to look for a client): made here too, for both users of dask.
_IMPORTS = {
    "async-geotiff": ("numpy", "pyproj", "async_geotiff", "obstore.store"),
    "rioxarray": ("numpy", "dask.array", "rasterio", "rioxarray", "xarray", "pyr"),
}
_PYR_IMPORTS = ("numpy", "dask.array", "rasterio", "pyr", "pyr.io.cog.http", "aiohttp", "imagecodecs")


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """One timed run in this process (its imports made before the clock starts)."""
    import importlib

    for module in _IMPORTS.get(job["impl"], _PYR_IMPORTS):
        importlib.import_module(module)
    if job["impl"] != "async-geotiff" and _has("distributed"):
        importlib.import_module("distributed")
    gc.collect()  # the full collection the imports made due runs before the clock, not inside the run
    t0 = time.perf_counter()
    jobs = {"async-geotiff": _async_geotiff_job, "rioxarray": _rioxarray_job}
    value = jobs.get(job["impl"], _pyr_job)(job)
    return {"seconds": round(time.perf_counter() - t0, 3), "checksum": value}


def _run(job: dict[str, Any], timeout: float) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.http_latency", "--worker", json.dumps(job)]
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=str(HERE.parent), check=False)
    except subprocess.TimeoutExpired:
        return {"status": "timeout"}
    lines = [x for x in out.stdout.splitlines() if x.startswith("{")]
    if out.returncode or not lines:
        return {"status": "error", "reason": (out.stderr or out.stdout)[-400:]}
    return {"status": "ok", **json.loads(lines[-1])}


def main(argv: list[str] | None = None) -> int:
    """Run the grid of (delay, pipeline, implementation) and print one JSON line per run."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.http_latency")
    p.add_argument("--size", type=int, default=10980, help="side of the one-band COG")
    p.add_argument("--cube-size", type=int, default=4096)
    p.add_argument("--dates", type=int, default=10)
    p.add_argument(
        "--servers",
        nargs="+",
        default=["0:0", "0.04:0", "0.04:50e6"],
        help="DELAY:RATE pairs: seconds before each answer, bytes/s per connection (0: no cap)",
    )
    p.add_argument("--pipelines", nargs="+", default=["band", "cube"], choices=["band", "cube"])
    p.add_argument("--impls", nargs="+", default=list(IMPLS))
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--timeout", type=float, default=300.0)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))), flush=True)
        return 0

    from benchmarks import _delay_server
    from benchmarks._data import CACHE, series

    band = series(size=args.size, dates=args.dates)[0][:1]
    cube = series(size=min(args.cube_size, args.size), dates=args.dates)[0]
    needs = {"async-geotiff": "async_geotiff", "rioxarray": "rioxarray"}
    impls = [i for i in args.impls if i not in needs or _has(needs[i])]
    for server in args.servers:
        delay, rate = (float(x) for x in server.split(":"))
        base, proc = _delay_server.start(CACHE, delay=delay, rate=rate)
        try:
            for pipeline in args.pipelines:
                paths = band if pipeline == "band" else cube
                urls = [f"{base}/{Path(x).relative_to(CACHE)}" for x in paths]
                for r in range(args.repeat):
                    for impl in impls if r % 2 == 0 else impls[::-1]:
                        _delay_server.stats(base, reset=True)
                        job = {"pipeline": pipeline, "impl": impl, "urls": urls, "base": base}
                        rec = _run(job, args.timeout)
                        served = _delay_server.stats(base, reset=True)
                        rec.update(
                            bench="http_latency",
                            pipeline=pipeline,
                            impl=impl,
                            delay=delay,
                            rate=rate,
                            repeat=r,
                            requests=served["requests"],
                            max_in_flight=served["max_in_flight"],
                            mbytes=round(served["bytes"] / 1e6, 1),
                        )
                        print(json.dumps(rec), flush=True)
        finally:
            proc.kill()
            proc.wait()
    return 0


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


if __name__ == "__main__":
    raise SystemExit(main())
