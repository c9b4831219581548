"""Threads that make their first pyr calls at the same time, in a fresh interpreter.

pyr imports dask and zarr lazily. Python fails an import when one thread
imports a package while another imports one of its submodules (a
"partially initialized module" ImportError); before ``pyr._imports.ensure``
two threads' first ``pyr.read`` calls failed this way every time.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from servers import write_cog

import pyr

SCRIPT = r"""
import sys, threading, traceback
import pyr
cog, store, out = sys.argv[1:4]
errors = []

def run(name, f):
    try:
        f()
    except BaseException:
        errors.append(name + ": " + traceback.format_exc(limit=3))

jobs = [("read %d" % i, lambda: pyr.read(cog, chunks=64).data.sum().compute(scheduler="sync")) for i in range(3)]
jobs += [
    ("read auto", lambda: pyr.read(cog, chunks="auto").data.sum().compute(scheduler="sync")),
    ("read_zarr", lambda: pyr.read_zarr(store).data.sum().compute(scheduler="sync")),
    ("write_zarr", lambda: pyr.write_zarr(pyr.rescale(pyr.read(cog), scale=1e-4), out)),
    ("read_cube", lambda: pyr.reduce_time(pyr.read_cube([cog, cog], chunks=64), "mean")),
]
threads = [threading.Thread(target=run, args=job) for job in jobs]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("".join(errors) or "ok")
"""


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_first_calls_in_a_fresh_process(tmp_path, attempt):
    data = (np.arange(256 * 256, dtype="uint16").reshape(256, 256) % 1000) + 1
    cog = write_cog(tmp_path / "b.tif", data, block=64)
    pyr.write_zarr(pyr.read(cog), tmp_path / "in.zarr")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cog), str(tmp_path / "in.zarr"), str(tmp_path / "out.zarr")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok", done.stdout
