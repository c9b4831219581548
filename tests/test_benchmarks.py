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


def test_reprojection_pipelines_run_and_agree(tmp_path):
    """``--only reproject``: pyr, rioxarray and the WarpedVRT bound (odc-stac when installed) write the same median."""
    data = tmp_path / "data"
    make_series(data, size=256, dates=2, block=128)
    cmd = [sys.executable, "-m", "benchmarks.run", "--data", str(data), "--results", str(tmp_path / "results")]
    cmd += ["--only", "reproject", "--schedulers", "threads", "--repeat", "1"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=280, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    records = {r["impl"]: r for r in lines if r["pipeline"] == "reproject"}
    assert set(records) == {"bound", "pyr", "odc-stac", "rioxarray"}
    ran = {impl: r for impl, r in records.items() if r["status"] == "ok"}
    assert {"bound", "pyr", "rioxarray"} <= set(ran), records
    if "odc-stac" not in ran:  # not installed here: skipped, saying what is missing
        assert records["odc-stac"]["status"] == "skipped"
        assert "needs" in records["odc-stac"]["reason"]
    ref = ran["bound"]["checksum"]
    assert ref > 0
    assert all(abs(r["checksum"] - ref) <= 1e-5 * ref for r in ran.values()), {i: r["checksum"] for i, r in ran.items()}
    assert "| reproject | pyr | threads |" in done.stdout
    assert "| NO |" not in done.stdout
