"""pyr/_malloc.py: glibc's thresholds are raised in the processes that run pyr's tasks, unless chosen otherwise.

Each case runs in a fresh interpreter (the setting is process-wide and read
from the environment at start-up) and counts the minor page faults of a loop
that allocates, fills and frees a 3 MiB buffer: with ``MALLOC_TRIM_THRESHOLD_``
set, every buffer is a fresh ``mmap`` whose pages fault in again; once pyr
has tuned the allocator the heap keeps them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests._tiffs import write_tif

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only"
)

_PROBE = r"""
import json, resource, sys
import numpy as np

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(40):
        buf = np.empty(3 << 20, dtype=np.uint8)
        buf.fill(1)
        del buf
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

faults()  # warm up numpy and the heap
first = faults()
if sys.argv[1] == "pyr-read":  # through a real chunk read, as a worker would
    import pyr
    pyr.read(sys.argv[2], chunks=64).data.sum().compute(scheduler="sync")
    applied = None  # not asked: the faults after the read tell
else:
    import dask
    from pyr import _malloc
    with dask.config.set({"pyr.tune-malloc": sys.argv[1] != "off"}):
        applied = _malloc.tune_once()
print(json.dumps({"before": first, "after": faults(), "applied": applied}))
"""


def _probe(mode: str, env: dict[str, str], *extra: str) -> dict[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode, *extra],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_nanny_setting_is_lifted() -> None:
    got = _probe("on", {"MALLOC_TRIM_THRESHOLD_": "65536"})
    assert got["applied"] is True
    # 40 buffers of 768 pages each fault in anew before; reused afterwards
    assert got["before"] > 40 * 500, got
    assert got["after"] < got["before"] / 10, got


def test_applied_when_unset() -> None:
    got = _probe("on", {})
    assert got["applied"] is True
    assert got["after"] < 40 * 50, got  # the buffers come from the heap, not fresh pages


def test_a_chunk_read_lifts_it(tmp_path: Path) -> None:
    tif = write_tif(tmp_path / "a.tif", np.arange(50 * 70, dtype="uint16").reshape(1, 50, 70))
    got = _probe("pyr-read", {"MALLOC_TRIM_THRESHOLD_": "65536"}, str(tif))
    assert got["after"] < got["before"] / 10, got


@pytest.mark.parametrize(
    ("mode", "env"),
    [
        ("off", {"MALLOC_TRIM_THRESHOLD_": "65536"}),  # dask config pyr.tune-malloc: false
        ("on", {"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}),  # the user chose both
        ("on", {"MALLOC_TRIM_THRESHOLD_": str(1 << 30)}),  # already large
    ],
)
def test_left_alone(mode: str, env: dict[str, str]) -> None:
    got = _probe(mode, env)
    assert got["applied"] is False
    if "MALLOC_TRIM_THRESHOLD_" in env and int(env["MALLOC_TRIM_THRESHOLD_"]) < 1 << 20:
        assert got["after"] > got["before"] / 2, got  # still faulting: the setting was kept
