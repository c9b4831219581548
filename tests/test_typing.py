"""mypy (strict) sees the real types of the public API, curried or not.

Runs mypy on small snippets that use pyr as a user would: the positive one
must pass (its ``assert_type`` calls are checked by mypy), the negative one
must be rejected with the errors named here, so the check can fail.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")

ROOT = Path(__file__).resolve().parents[1]

POSITIVE = """
from pathlib import Path
from typing import Any, assert_type

import numpy as np
import xarray
from dask.delayed import Delayed
from toolz import pipe

import pyr
from pyr import Cube, Raster
from pyr._curry import SameKindStep

raster = pyr.read("x.tif")
assert_type(raster, Raster)
assert_type(pyr.read("x.tif", chunks="auto", bands=[0]), Raster)
assert_type(pyr.read(chunks=256)("x.tif"), Raster)

cube = pyr.read_cube(["a.tif", "b.tif"], times=["20240612", "20240712"])
assert_type(cube, Cube)
assert_type(pyr.stack([raster, raster], times=["2024-06-12", "2024-07-12"]), Cube)

step = pyr.rescale(scale=1e-4)
assert_type(step, SameKindStep)
assert_type(step(raster), Raster)
assert_type(step(cube), Cube)
assert_type(pyr.rescale(scale=1e-4)(raster), Raster)
assert_type(pyr.rescale(raster, scale=1e-4, clip=(0, 1)), Raster)
assert_type(pyr.rescale(cube, offset=-0.1), Cube)

assert_type(pyr.reduce_time(cube, "mean"), Raster)
assert_type(pyr.reduce_time(how="median")(cube), Raster)

assert_type(pyr.map_blocks(np.negative, raster), Raster)
assert_type(pyr.map_blocks(lambda a, b: a + b, raster, raster, dtype="float32"), Raster)
assert_type(pyr.map_blocks(np.negative, cube), Cube)
assert_type(pyr.map_blocks(np.negative, dtype="float32")(cube), Cube)

assert_type(pyr.write_zarr(raster, "out.zarr"), Delayed | None)
assert_type(pyr.write_zarr(cube, "out.zarr", compute=False), Delayed | None)
assert_type(pyr.read_zarr("out.zarr"), Raster | Cube)

assert_type(pyr.compute(raster), Raster)
assert_type(pyr.compute(cube, progress=True), Cube)
assert_type(pyr.compute(progress=True)(cube), Cube)
assert_type(pyr.compute(pyr.write_zarr(cube, "out.zarr", compute=False)), Any)

assert_type(pyr.write_tiff(raster, "x.tif"), None)
assert_type(pyr.write_tiff(raster, Path("x.tif"), cog=False, compress="zstd", level=3), None)
assert_type(pyr.write_tiff(raster, "x.tif", compute=False), Delayed)
assert_type(pyr.write_tiff(raster, "x.tif", compute=bool(1)), Delayed | None)
assert_type(pyr.write_tiff(path="x.tif", compress="zstd")(raster), None)
assert_type(pyr.write_tiff(path="x.tif", compute=False)(raster), Delayed)

assert_type(pyr.to_xarray(raster), xarray.DataArray)
assert_type(pyr.to_xarray(cube), xarray.DataArray)
assert_type(pyr.mask(raster, raster, values=[3, 8, 9, 10]), Raster)
assert_type(pyr.mask(cube, raster, bits=[1, 2, 3, 4], dilate=2), Cube)
assert_type(pyr.mask(cube, cube, values=3), Cube)
assert_type(pyr.mask(qa=raster, values=[9]), SameKindStep)
assert_type(pyr.mask(qa=raster, values=[9])(cube), Cube)

result: Any = pipe(raster, pyr.rescale(scale=1e-4), pyr.map_blocks(np.negative))
"""

# Each line is a type error mypy must report; the comment is the error code it must give.
NEGATIVE = """
import pyr

raster = pyr.read("x.tif")
cube = pyr.read_cube(["a.tif"])
pyr.rescale("not a raster", scale=1e-4)  # E: call-overload
pyr.rescale(raster, scael=1e-4)  # E: call-overload
pyr.reduce_time(raster, "mean")  # E: call-overload
pyr.rescale(scale=1e-4)("x.tif")  # E: call-overload
pyr.map_blocks(abs, "x.tif")  # E: call-overload
pyr.write_zarr("x.tif", "out.zarr")  # E: call-overload
r2: pyr.Raster = pyr.reduce_time(how="mean")(cube)
c2: pyr.Cube = pyr.rescale(raster)  # E: assignment
pyr.write_tiff(cube, "x.tif")  # E: call-overload
pyr.write_tiff(raster, 3)  # E: call-overload
r3: pyr.Raster = pyr.compute(cube)  # E: assignment
pyr.write_tiff(raster, "x.tif").compute()  # E: attr-defined
pyr.mask(raster, values=[3])  # E: call-overload
pyr.mask(raster, cube, values=[3])  # E: call-overload
"""


def _mypy(tmp_path: Path, name: str, source: str) -> subprocess.CompletedProcess[str]:
    """mypy with the project's configuration (strict), on ``source`` and the pyr it imports."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(source))
    env = {**os.environ, "MYPYPATH": str(ROOT)}  # this checkout's pyr, not an installed one
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_mypy_sees_the_public_types(tmp_path):
    run = _mypy(tmp_path, "uses_pyr.py", POSITIVE)
    assert run.returncode == 0, run.stdout + run.stderr


def test_mypy_rejects_wrong_types(tmp_path):
    run = _mypy(tmp_path, "misuses_pyr.py", NEGATIVE)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = textwrap.dedent(NEGATIVE).splitlines()
    expected = {i + 1: line.split("# E: ")[1] for i, line in enumerate(lines) if "# E: " in line}
    found: dict[int, set[str]] = {}
    for out in run.stdout.splitlines():
        if "misuses_pyr.py:" in out and ": error:" in out:
            lineno = int(out.split("misuses_pyr.py:")[1].split(":")[0])
            found.setdefault(lineno, set()).add(out.rsplit("[", 1)[-1].rstrip("]"))
    missing = {n: code for n, code in expected.items() if code not in found.get(n, set())}
    assert not missing, f"mypy accepted these lines: {missing}\n{run.stdout}"
    unexpected = set(found) - set(expected)
    assert not unexpected, f"mypy rejected lines it should accept: {sorted(unexpected)}\n{run.stdout}"
