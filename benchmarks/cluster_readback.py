"""The one-band read-back on a LocalCluster, graph shape by graph shape, pyr's tasks beside hand-written ones.

``python -m benchmarks.cluster_readback [--rounds 3] [--data COG]``

The one-band pipeline's read-back (``da.nansum(read_zarr(store).data)``)
is what keeps it above the bound on a ``distributed`` cluster. This script
writes the band once with pyr on a ``LocalCluster`` set up as in
``benchmarks.run`` (two single-threaded worker processes), then sums the
store back on that cluster with each of these graphs in turn, ``--rounds``
times, in rotation:

* ``pyr``: ``da.nansum(read_zarr(store).data)``, as a user writes it (one
  task per store chunk, fused with its partial sum, then dask's tree of sums);
* ``pyr-flat``: the same with ``split_every`` covering every chunk (the
  partial sums summed by one task: no tree);
* ``pyr-2048`` / ``pyr-2048-flat``: ``read_zarr(store, chunks=2048)`` (four
  store chunks per task), with dask's tree and flat;
* ``hand-1`` / ``hand-4``: the hand-written bounds' read-back as a dask graph
  (``benchmarks.bounds._sum_each``: one task decodes and sums 1 or 4 chunk
  files, one task adds the sums).

Each line gives the wall seconds and, from distributed's task stream, the
tasks, transfers between workers, the median task compute time and the
span. Same graph shape, same cost means pyr's tasks add nothing of their
own; what remains is the shape.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("pyr", "pyr-flat", "pyr-2048", "pyr-2048-flat", "hand-1", "hand-4")


def _sum(store: str, variant: str) -> float:
    import dask
    import dask.array as da

    import pyr
    from benchmarks import bounds

    if variant.startswith("hand-"):
        k = int(variant.split("-")[1])
        name = json.loads((Path(store) / ".zattrs").read_text())["pyr"]["name"]  # the data variable
        root = str(Path(store) / name)
        keys = sorted(f for f in os.listdir(root) if f[0].isdigit())  # the chunk files
        parts = [
            dask.delayed(bounds._sum_each, pure=False)(root, "float32", keys[i : i + k]) for i in range(0, len(keys), k)
        ]
        return float(dask.delayed(sum)(parts).compute())
    arr = pyr.read_zarr(store, chunks=2048 if "2048" in variant else "auto").data
    every = dict(enumerate(arr.numblocks)) if variant.endswith("-flat") else None
    return float(da.nansum(arr, dtype="float64", split_every=every).compute())


def _summary(records: list[dict[str, Any]]) -> str:
    compute = [s["stop"] - s["start"] for r in records for s in r["startstops"] if s["action"] == "compute"]
    transfers = sum(s["action"] == "transfer" for r in records for s in r["startstops"])
    spans = [s for r in records for s in r["startstops"]]
    span = max(s["stop"] for s in spans) - min(s["start"] for s in spans) if spans else 0.0
    median_ms = statistics.median(compute) * 1000 if compute else 0.0
    return f"{len(records)} tasks, {transfers} transfers, task compute median {median_ms:.1f} ms, span {span:.2f} s"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.cluster_readback", description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--data", help="a COG to read (default: the first date of the cached full-size series)")
    args = p.parse_args(argv)

    import dask
    from distributed import get_task_stream

    import pyr
    from benchmarks._data import series
    from benchmarks.pipelines_common import SCALE
    from benchmarks.run import _setup_scheduler, _teardown_scheduler

    src = args.data or series(size=10980, dates=10)[0][0]
    handle = _setup_scheduler("distributed")
    try:
        with tempfile.TemporaryDirectory(prefix="pyr-readback-", dir=os.environ.get("PYR_BENCH_TMP")) as tmp:
            store = str(Path(tmp) / "band1.zarr")
            raster = pyr.rescale(pyr.read(src, chunks="auto"), scale=SCALE, clip=(0, 1))
            dask.compute(pyr.write_zarr(raster, store, compute=False))
            walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
            sums = set()
            for r in range(args.rounds):
                for variant in VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]:  # rotate the order
                    with get_task_stream(handle[0]) as stream:
                        t0 = time.perf_counter()
                        sums.add(round(_sum(store, variant), 1))
                        wall = time.perf_counter() - t0
                    walls[variant].append(wall)
                    print(f"round {r} {variant:14s} {wall:.3f} s  {_summary(stream.data)}", flush=True)
            print("# median wall s: " + ", ".join(f"{v} {statistics.median(w):.3f}" for v, w in walls.items()))
            print(f"# sums agree: {len(sums) == 1} ({sorted(sums)})")
    finally:
        _teardown_scheduler(handle)


if __name__ == "__main__":
    main()
