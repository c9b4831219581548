"""The benchmark harness runs end to end and its implementations agree (small data, threads).

Speed is not asserted here (see docs/benchmarks.md): this test keeps
``make bench`` working, and checks the harness's own claim that every
implementation computes the same output (the checksum of what it wrote and
read back).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pyr.testing.synth import make_series

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(300)


def test_harness_runs_and_implementations_agree(tmp_path):
    data = tmp_path / "data"
    make_series(data, size=512, dates=3, block=256)
    results = tmp_path / "results"
    impls = ["pyr", "pyr+read512", "bound-dask"]
    cmd = [sys.executable, "-m", "benchmarks.run", "--data", str(data), "--results", str(results)]
    cmd += ["--only", "band1", "median", "--impls", *impls, "--schedulers", "threads", "--repeat", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert {(r["pipeline"], r["impl"]) for r in records} == {
        (p, i) for p in ("band1", "median") for i in ("bound", *impls)
    }
    assert all(r["status"] == "ok" for r in records), [r for r in records if r["status"] != "ok"]
    for pipeline in ("band1", "median"):
        # the harness's own "agrees": within 1e-5 of the bound's (implementations sum in different orders)
        sums = {r["impl"]: r["checksum"] for r in records if r["pipeline"] == pipeline}
        ref = sums["bound"]
        assert all(abs(v - ref) <= 1e-5 * max(abs(ref), 1.0) for v in sums.values()), (pipeline, sums)
    assert all(r["size"] == 512 for r in records)  # taken from --data
    (log,) = results.glob("*.jsonl")
    assert [json.loads(line) for line in log.read_text().splitlines()] == records
    assert "| band1 | pyr | threads |" in done.stdout  # the ratio table
    assert "| NO |" not in done.stdout  # its "agrees" column
