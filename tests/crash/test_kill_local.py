"""Every named step of write_tiff and of the Zarr write, replace and append, killed on a local disk.

For each kill point the previous output reads unchanged with every reader
(pyr, plain xarray, GDAL) or the new one is complete; a partial new output
opens in none; rerunning the call succeeds and leaves no staging behind
(harness.py). A protocol that names no step fails: it cannot be killed at one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .harness import PRELUDE, NoSteps, Place, Scenario, kill_at, local_promise, run_child, run_scenario, trace_steps
from .scenarios import TIFF, ZARR

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("scenario", TIFF + ZARR, ids=lambda s: s.name)
def test_every_kill_point_keeps_the_promises(scenario: Scenario, tmp_path: Path) -> None:
    results = run_scenario(scenario, Place(str(tmp_path)))
    broken = [line for res in results for line in local_promise(res)]
    assert not broken, f"{scenario.name}:\n" + "\n".join(broken)


# --- the harness itself can fail ------------------------------------------------------------

_COPY = """
from pyr._faults import step
with open({src!r}, "rb") as f:
    data = f.read()
step("fake:open")
with open(TARGET, "wb") as f:
    f.write(data[: len(data) // 2])
    f.flush()
    step("fake:half")
    f.write(data[len(data) // 2 :])
{extra}
"""


def _fake(src: Path, extra: str = "") -> Scenario:
    """A GeoTIFF written in place (not staged): killed half-way it leaves a torn file."""
    return Scenario(name="fake", kind="tiff", target="out.tif", call=_COPY.format(src=str(src), extra=extra),
                    new="raster(1, lazy=False)")  # fmt: skip


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A complete GeoTIFF of ``raster(1)`` to copy from."""
    path = tmp_path / "src.tif"
    code, saved = run_child(f"SCHEDULER = 'sync'\n{PRELUDE}\npyr.write_tiff(raster(1, lazy=False), {str(path)!r})")
    assert code == 0, saved
    return path


def test_a_write_in_place_breaks_the_promise(source: Path, tmp_path: Path) -> None:
    place = Place(str(tmp_path / "place"))
    (tmp_path / "place").mkdir()
    sc = _fake(source)
    assert trace_steps(sc, place) == ["fake:open", "fake:half"]
    assert local_promise(kill_at(sc, place, "fake:open#1")) == []  # nothing at the path yet
    torn = kill_at(sc, place, "fake:half#1")
    assert torn.seen["pyr"] != "absent"
    assert local_promise(torn), torn


def test_staging_left_behind_and_unreached_kill_points_are_reported(source: Path, tmp_path: Path) -> None:
    place = Place(str(tmp_path / "place"))
    (tmp_path / "place").mkdir()
    sc = _fake(source, extra="open(TARGET + '.pyr-tmp', 'w').close()")
    res = kill_at(sc, place, "fake:open#1")
    assert res.leftovers == ["out.tif.pyr-tmp"]
    assert any("staging" in line for line in local_promise(res))
    never = kill_at(sc, place, "fake:nowhere#1")
    assert any("not reached" in line for line in local_promise(never))


def test_a_protocol_without_steps_fails(tmp_path: Path) -> None:
    sc = Scenario(name="silent", kind="tiff", target="out.tif", call="import rasterio", new="raster(1, lazy=False)")
    with pytest.raises(NoSteps, match="named no step"):
        trace_steps(sc, Place(str(tmp_path)))
