"""Peak memory of the calling process for ``pyr.compute(reduce_time(read_cube(...), how))``.

``python -m benchmarks.compute_memory --data DIR [--how median] [--scheduler processes]``
runs the reduction in a fresh child process and prints one JSON line: the
child's own peak RSS (``ru_maxrss``: the process that called ``pyr.compute``,
which on the processes scheduler receives what the workers return), the
largest peak among its worker processes and the size of the result.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, resource, sys, time
import dask
import pyr
paths = sys.argv[1].split(",")
with dask.config.set(scheduler=sys.argv[3]):
    t0 = time.perf_counter()
    out = pyr.compute(pyr.reduce_time(pyr.read_cube(paths), sys.argv[2]))
    wall = time.perf_counter() - t0
print(json.dumps({
    "main_peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "worker_peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    "wall": round(wall, 2),
    "shape": list(out.shape),
    "result_mib": out.data.nbytes / 2**20,
}))
"""


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder of COGs (sorted *.tif), one per date")
    p.add_argument("--how", default="median")
    p.add_argument("--scheduler", default="processes")
    args = p.parse_args(argv)
    paths = sorted(str(x) for x in Path(args.data).glob("*.tif"))
    out = subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(paths), args.how, args.scheduler],
        capture_output=True,
        text=True,
        check=True,
    )
    record = json.loads(out.stdout.strip().splitlines()[-1])
    record.update(how=args.how, scheduler=args.scheduler, dates=len(paths))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
