"""Peak memory and wall time of pyr's cube pipeline: read_cube -> reduce_time -> write_zarr.

``python -m benchmarks.cube_memory [--size 10980] [--dates 10] [--how median mean]
[--scheduler threads] [--workers 2] [--gdal-cachemax MB]``

The input is a cached series of uint16 tiled DEFLATE GeoTIFFs in
``benchmarks/.cache/`` (``pyr.testing.synth.make_series`` through
``benchmarks._data.series``; written on first use, which takes minutes at full
size). Every run happens in a fresh child process (``--child``), so nothing
is cached between runs; the parent samples the resident memory of the child's
whole process tree (psutil, every 50 ms, in a thread) and prints one JSON
line per run: peak and baseline RSS (MiB), wall seconds per step, the cube's
size, the chunks pyr chose and a checksum of the result.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def child(job: dict[str, Any]) -> dict[str, Any]:
    """One run, in this (fresh) process: read_cube -> reduce_time -> write_zarr -> checksum."""
    import dask
    import dask.array as da

    import pyr

    dask.config.set(scheduler=job["scheduler"], num_workers=job["workers"])
    client = None
    if job["scheduler"] == "distributed":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=job["workers"], threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    from benchmarks.memory import PeakRSS, mb

    steps: dict[str, float] = {}
    with PeakRSS() as pipeline:
        t0 = time.perf_counter()
        cube = pyr.read_cube(job["paths"])
        steps["read_cube"] = round(time.perf_counter() - t0, 4)
        result = pyr.reduce_time(cube, job["how"])
        out = Path(job["out"]) / f"{job['how']}.zarr"
        t1 = time.perf_counter()
        pyr.write_zarr(result, out)
        steps["reduce_write"] = round(time.perf_counter() - t1, 4)
    wall = time.perf_counter() - t0
    back = pyr.read_zarr(out).data  # lazily: the check does not weigh on the figures above
    checksum = float(da.nansum(back.astype("float64")).compute())
    if client is not None:
        client.close()
    return {
        "steps": steps,
        "wall_s": round(wall, 3),
        "pipeline_peak_rss_mib": mb(pipeline.peak),
        "pipeline_baseline_rss_mib": mb(pipeline.baseline),
        "cube_shape": list(cube.shape),
        "cube_chunks": [cube.data.chunks[2][0], cube.data.chunks[3][0]],
        "cube_gb": round(cube.data.nbytes / 1e9, 3),
        "result_dtype": str(back.dtype),
        "checksum": float(f"{checksum:.7g}"),
    }


def run(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job`` in a child process while sampling the memory of its process tree."""
    from benchmarks.memory import PeakRSS, mb

    cmd = [sys.executable, "-m", "benchmarks.cube_memory", "--child", json.dumps(job)]
    env = dict(os.environ)
    if job["gdal_cachemax"] is not None:  # GDAL's block cache (default 5% of RAM) counts in RSS
        env["GDAL_CACHEMAX"] = str(job["gdal_cachemax"])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE.parent, env=env)
    with PeakRSS(pid=proc.pid) as peak:
        stdout, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"run failed ({proc.returncode}): {job['how']} {job['scheduler']}")
    result = json.loads(stdout.strip().splitlines()[-1])
    keep = ("how", "scheduler", "workers", "size", "dates", "generator", "gdal_cachemax")
    return {
        "bench": "cube_memory",
        **{k: job[k] for k in keep},
        **result,
        "process_peak_rss_mib": mb(peak.peak),
        "machine_cores": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--how", nargs="+", default=["median", "mean"])
    parser.add_argument("--scheduler", default="threads", choices=["threads", "processes", "distributed"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gdal-cachemax", type=int, default=None, help="GDAL_CACHEMAX in MB (default: GDAL's)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    from benchmarks._data import series

    paths, generator = series(size=args.size, dates=args.dates, block=args.block)
    for how in args.how:
        with tempfile.TemporaryDirectory(dir=HERE / ".cache") as out:
            job = {
                "how": how,
                "scheduler": args.scheduler,
                "workers": args.workers,
                "size": args.size,
                "dates": args.dates,
                "generator": generator,
                "gdal_cachemax": args.gdal_cachemax,
                "paths": paths,
                "out": out,
            }
            print(json.dumps(run(job)), flush=True)


if __name__ == "__main__":
    main()
