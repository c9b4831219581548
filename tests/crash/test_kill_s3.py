"""The Zarr write, replace and append killed at every named step on an object store (moto's S3 server).

Object stores cannot rename, so their guarantees are weaker than a local
disk's: these tests check that every kill point is reached and record what
each reader saw and whether the rerun succeeded (printed; ``python -m
tests.crash.report`` prints the same table for docs/design.md), rather than
asserting the local promises. The Raster write runs the same protocol as the
Cube write: it is in the report only, to keep the suite short.
"""

from __future__ import annotations

import pytest

from .harness import run_scenario
from .report import s3_place, table
from .scenarios import ZARR

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.usefixtures("offline_aws_module")]


@pytest.mark.parametrize("scenario", [s for s in ZARR if s.name != "zarr-write-raster"], ids=lambda s: s.name)
def test_every_kill_point_on_s3_is_reached_and_recorded(scenario, s3_endpoint, bucket):
    results = run_scenario(scenario, s3_place(s3_endpoint, bucket))
    print(table(results))
    from pyr._faults import EXIT_CODE

    assert all(r.exit_code == EXIT_CODE for r in results), [(r.point, r.rerun_error) for r in results]
    assert all(set(r.seen) == {"pyr", "xarray", "gdal"} for r in results)
