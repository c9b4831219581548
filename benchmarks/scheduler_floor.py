"""What a scheduler costs with no work at all, on graphs shaped like the one-band pipeline.

``python -m benchmarks.scheduler_floor [--schedulers threads,processes,distributed] [--repeat 5]``

Two graphs whose tasks do nothing, with the shape of the one-band pipeline at
full size (121 chunks of 1024 x 1024 over a 10980 x 10980 band):

* ``write``: ``init`` -> 121 independent tasks -> ``final`` (pyr's fused
  ``write_zarr`` graph);
* ``read_back``: ``nansum`` over a 121-chunk array made by a blockwise
  producer (``read_zarr(...).data`` summed: dask fuses each chunk's producer
  with its partial sum, then reduces the partial sums in a tree).

Each line gives the median wall and CPU seconds (the whole process tree).
The schedulers are set up as in ``benchmarks.run`` (a warmed process pool
given to dask, a ``LocalCluster`` of two single-threaded workers), each in a
fresh process. The medians are the floor under any pipeline of that shape on
that scheduler: a one-band run cannot take less than the bound plus them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

CHUNKS = 121


def _noop(*_: Any) -> None:
    return None


def _graphs() -> dict[str, Any]:
    import dask
    import dask.array as da

    init = dask.delayed(_noop, pure=False)()
    writes = [dask.delayed(_noop, pure=False)(init, i) for i in range(CHUNKS)]
    return {
        "write": dask.delayed(_noop, pure=False)(*writes),
        "read_back": da.nansum(da.ones((1, 11, 11), chunks=1, dtype="float64")),
    }


def child(scheduler: str, repeat: int) -> list[dict[str, Any]]:
    """Time each graph ``repeat`` times on ``scheduler`` set up in this process."""
    import dask

    from benchmarks.memory import tree_cpu
    from benchmarks.run import _setup_scheduler, _teardown_scheduler

    handle = _setup_scheduler(scheduler)
    try:
        for graph in _graphs().values():  # warm: first-compute costs, worker imports
            dask.compute(graph)
        records = []
        for name in ("write", "read_back"):
            walls, cpus = [], []
            for _ in range(repeat):
                graph = _graphs()[name]  # a fresh graph (new keys) every time
                c0 = tree_cpu()
                t0 = time.perf_counter()
                dask.compute(graph)
                walls.append(time.perf_counter() - t0)
                cpus.append(tree_cpu() - c0)
            records.append(
                {
                    "bench": "scheduler_floor",
                    "scheduler": scheduler,
                    "graph": name,
                    "tasks": len(dict(_graphs()[name].__dask_graph__())),
                    "median_s": round(statistics.median(walls), 4),
                    "min_s": round(min(walls), 4),
                    "cpu_s": round(statistics.median(cpus), 3),  # the whole process tree, workers included
                    "runs": [round(w, 4) for w in walls],
                }
            )
        return records
    finally:
        _teardown_scheduler(handle)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.scheduler_floor", description=__doc__.splitlines()[0])
    p.add_argument("--schedulers", default="threads,processes,distributed")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)  # given by benchmarks.run; the graphs are fixed
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        for rec in child(args.child, args.repeat):
            print(json.dumps(rec), flush=True)
        return
    for sched in [s.strip() for s in args.schedulers.split(",") if s.strip()]:
        cmd = [sys.executable, "-m", "benchmarks.scheduler_floor", "--child", sched, "--repeat", str(args.repeat)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
        if not lines:
            tail = " | ".join(out.stderr.strip().splitlines()[-3:])
            print(json.dumps({"bench": "scheduler_floor", "scheduler": sched, "status": "error", "reason": tail}))
        for ln in lines:
            print(ln, flush=True)


if __name__ == "__main__":
    main()
