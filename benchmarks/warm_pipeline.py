"""pyr's one-band pipeline run again and again on one scheduler, to profile it warm.

``python -m benchmarks.warm_pipeline [--scheduler distributed] [--runs 10] [--data DIR]``

``benchmarks.run`` times each pipeline once, in a fresh process, so its
profiles (``--profile``) mix the workers' start-up with the pipeline. Here
the scheduler (set up as in ``benchmarks.run``) stays up and the pipeline
(read -> rescale -> write_zarr -> read back and sum) runs ``--runs`` times,
printing each run's seconds, the CPU seconds each process spent on it (this
process, which on ``distributed`` also runs the scheduler, and each worker)
and the worker process ids; attach a profiler to
the workers while it runs, e.g. ``py-spy record --pid PID --duration 6
--format raw -o worker.txt``, then ``python -m benchmarks.report --profile
worker.txt``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.warm_pipeline", description=__doc__.splitlines()[0])
    p.add_argument("--scheduler", default="distributed", choices=["threads", "processes", "distributed"])
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--data", help="a COG to read (default: the first date of the cached full-size series)")
    p.add_argument(
        "--split-every",
        type=int,
        help="the read-back's nansum with this split_every (default: dask's, 4: a tree summing 2 x 2 "
        "partial sums per task)",
    )
    p.add_argument(
        "--read-chunks", type=int, help="read_zarr(store, chunks=N) for the read-back (default: the store's)"
    )
    args = p.parse_args(argv)

    import dask
    import dask.array as da
    import psutil

    import pyr
    from benchmarks._data import series
    from benchmarks.pipelines_common import SCALE
    from benchmarks.run import _setup_scheduler, _teardown_scheduler

    src = args.data or series(size=10980, dates=10)[0][0]
    handle = _setup_scheduler(args.scheduler)
    try:
        me = psutil.Process()
        seen: list[int] = []

        def cpu(procs: list[Any]) -> list[float]:
            return [sum(p.cpu_times()[:2]) for p in procs]

        for i in range(args.runs):
            # a process pool starts its workers on first use: look for them before every run
            workers = [c for c in me.children(recursive=True) if "spawn" in " ".join(c.cmdline())]
            if [w.pid for w in workers] != seen:
                seen = [w.pid for w in workers]
                print(f"# {args.scheduler}: worker pids {seen}", flush=True)
            procs = [me, *workers]
            out = tempfile.mkdtemp(prefix="pyr-warm-", dir=os.environ.get("PYR_BENCH_TMP"))
            store = str(Path(out) / "band1.zarr")
            c0 = cpu(procs)
            t0 = time.perf_counter()
            raster = pyr.rescale(pyr.read(src, chunks="auto"), scale=SCALE, clip=(0, 1))
            dask.compute(pyr.write_zarr(raster, store, compute=False))
            t1 = time.perf_counter()
            float(
                da.nansum(
                    pyr.read_zarr(store, chunks=args.read_chunks or "auto").data,
                    dtype="float64",
                    split_every=args.split_every,
                ).compute()
            )
            t2 = time.perf_counter()
            used = [round(b - a, 2) for a, b in zip(c0, cpu(procs), strict=True)]
            print(
                f"run {i}: write {t1 - t0:.2f} s, read back {t2 - t1:.2f} s; CPU s: this process {used[0]}, "
                f"workers {used[1:]}",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
    finally:
        _teardown_scheduler(handle)


if __name__ == "__main__":
    main()
