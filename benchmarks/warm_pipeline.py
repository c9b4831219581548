"""pyr's one-band pipeline run again and again on one scheduler, to profile it warm.

``python -m benchmarks.warm_pipeline [--scheduler distributed] [--runs 10] [--data DIR]``

``benchmarks.run`` times each pipeline once, in a fresh process, so its
profiles (``--profile``) mix the workers' start-up with the pipeline. Here
the scheduler (set up as in ``benchmarks.run``) stays up and the pipeline
(read -> rescale -> write_zarr -> read back and sum) runs ``--runs`` times,
printing each run's seconds, the CPU seconds each process spent on it (this
process, which on ``distributed`` also runs the scheduler, and each worker)
and the worker process ids. On ``distributed``, ``--task-stream`` also
prints, for the write and the read-back, distributed's task stream summed:
tasks, transfers between workers, each worker's compute seconds and the
span from the first task's start to the last one's end. Attach a profiler to
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
    p.add_argument(
        "--task-stream",
        action="store_true",
        help="on distributed: summarise the task stream of the write and of the read-back",
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
            with _stream(handle, args.task_stream) as write_stream:
                raster = pyr.rescale(pyr.read(src, chunks="auto"), scale=SCALE, clip=(0, 1))
                dask.compute(pyr.write_zarr(raster, store, compute=False))
            t1 = time.perf_counter()
            with _stream(handle, args.task_stream) as read_stream:
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
            if args.task_stream and handle is not None and args.scheduler == "distributed":
                print(f"  write: {_summary(write_stream.data)}\n  read back: {_summary(read_stream.data)}", flush=True)
            shutil.rmtree(out, ignore_errors=True)
    finally:
        _teardown_scheduler(handle)


def _stream(handle: Any, wanted: bool) -> Any:
    """distributed's task stream of the block when wanted on a cluster, else a stand-in with no data."""
    import contextlib
    from types import SimpleNamespace

    if not wanted or not isinstance(handle, tuple):
        return contextlib.nullcontext(SimpleNamespace(data=[]))
    from distributed import get_task_stream

    return get_task_stream(handle[0])


def _summary(records: list[dict[str, Any]]) -> str:
    """Tasks, transfers, compute seconds per worker and the span of one task stream."""
    busy: dict[str, float] = {}
    transfers = 0
    spans = [s for r in records for s in r["startstops"]]
    for r in records:
        for s in r["startstops"]:
            if s["action"] == "compute":
                busy[r["worker"]] = busy.get(r["worker"], 0.0) + s["stop"] - s["start"]
            elif s["action"] == "transfer":
                transfers += 1
    span = max(s["stop"] for s in spans) - min(s["start"] for s in spans) if spans else 0.0
    per_worker = ", ".join(f"{v:.2f}" for v in sorted(busy.values()))
    return f"{len(records)} tasks, {transfers} transfers, compute s per worker [{per_worker}], span {span:.2f} s"


if __name__ == "__main__":
    main()
