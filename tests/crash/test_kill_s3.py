"""The Zarr write, replace and append killed at every named step on an object store (moto's S3 server).

Object stores cannot rename, so their guarantees are weaker than a local
disk's: these tests check that every kill point is reached and record what
each reader saw and whether the rerun succeeded (printed; ``python -m
tests.crash.report`` prints the same table for docs/design.md), rather than
asserting the local promises; what they do assert is what docs/design.md
says of object stores: no reader ever sees a wrong store (only the old one,
the new one complete, nothing, or pyr's refusal), a store is missing only
inside a replace's copy window, and every rerun succeeds except a ``"w-"``
killed after publishing (the store exists then). The suite runs the replace
and the append, where object stores differ most; the new-store writes
(Raster and Cube, the same protocol) are in the report only, to keep the
suite short: ``python -m tests.crash.report --where s3``.
"""

from __future__ import annotations

import pytest

from .harness import run_scenario
from .report import s3_place, table
from .scenarios import ZARR

pytest_plugins = ["conftest_cloud"]
pytestmark = [pytest.mark.slow, pytest.mark.network, pytest.mark.usefixtures("offline_aws_module")]


@pytest.mark.parametrize(
    "scenario", [s for s in ZARR if s.name in ("zarr-replace", "zarr-append")], ids=lambda s: s.name
)
def test_every_kill_point_on_s3_is_reached_and_recorded(scenario, s3_endpoint, bucket):
    results = run_scenario(scenario, s3_place(s3_endpoint, bucket))
    print(table(results))
    from pyr._faults import EXIT_CODE

    assert all(r.exit_code == EXIT_CODE for r in results), [(r.point, r.rerun_error) for r in results]
    assert all(set(r.seen) == {"pyr", "xarray", "gdal"} for r in results)
    allowed = {"old", "new", "absent", "refused"} if scenario.name != "zarr-append" else {"old", "new"}
    for r in results:
        seen = {v.split(" ", 1)[0] for v in r.seen.values()}  # "absent (why)" -> "absent"
        assert seen <= allowed, (r.point, r.seen)
        window = scenario.name == "zarr-replace" and r.point.split("#")[0].endswith((":remove", ":copy", ":publish"))
        if scenario.name == "zarr-replace" and not window:
            assert seen <= {"old", "new"}, (r.point, r.seen)
        if r.point.startswith("zarr.write:release"):
            assert r.rerun_error is not None
            assert "StoreExists" in r.rerun_error, r.rerun_error
        else:
            assert r.rerun_error is None, (r.point, r.rerun_error)
            assert set(r.rerun_seen.values()) == {"new"}, (r.point, r.rerun_seen)
