"""Kill a write at each of its named steps, then check what every reader sees.

A :class:`Scenario` is a few lines of Python: ``setup`` makes the previous
state (nothing, or an older store or file), ``call`` is the one write call
under test, ``old`` and ``new`` are expressions for what the target holds
before and after it. The snippets see the names of :data:`PRELUDE` (small
deterministic rasters and cubes) and ``TARGET`` (the path or URL), ``OPTS``
(``storage_options`` or ``None``).

For a scenario and a :class:`Place` (a local folder, or a bucket on the moto
S3 server) the harness

1. runs ``setup`` then ``call`` once with ``PYR_FAULT_TRACE`` to list the
   steps the protocol names (:mod:`pyr._faults`) in order; a protocol that
   names no step cannot be killed at one and fails (:class:`NoSteps`);
2. for every kill point (each step's first occurrence and, for a repeated
   step such as a chunk write, its last), in a folder or prefix of its own
   holding a copy of what ``setup`` made (it runs once per scenario, so a
   store must not depend on its own path), runs ``call`` with
   ``PYR_FAULT_AT=<name>#<k>``: the child must exit with
   :data:`pyr._faults.EXIT_CODE` (a kill point never reached is a failure);
3. asks every reader what it sees (readers.py): pyr (``read_zarr``/``read``)
   and plain ``xarray.open_zarr`` in one child, GDAL (rasterio) in another: ``old``,
   ``new``, ``absent``, ``refused`` (pyr's ``IncompleteStore``), ``fails``
   (any other error opening or reading) or ``wrong`` (it opened and the
   values, grid or times are neither the old nor the new ones);
4. reruns ``call`` without faults in a child, which must succeed; every
   reader must then see ``new``, and nothing but the target may be left
   in the place (no ``*.pyr-*`` staging, lock or run files).

:func:`local_promise` turns a :class:`KillResult` into the list of broken
promises of ../shared/SPEC.md ("Promises that hold under faults"); object
stores are only recorded (``python -m tests.crash.report`` prints the table).

Children are forked from one process that has imported numpy, dask, zarr,
xarray, rasterio and pyr once (``multiprocessing``'s forkserver; no GDAL
dataset is ever opened in it), so a kill point costs milliseconds of start-up
rather than an interpreter start. ``PYR_CRASH_FRESH=1`` runs every child as a
fresh ``sys.executable`` instead (slower, for checking the harness itself).
Two kill points run at once (``PYR_CRASH_WORKERS``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import traceback
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .readers import dump

__all__ = [
    "PRELUDE",
    "KillResult",
    "NoSteps",
    "Place",
    "Scenario",
    "kill_at",
    "kill_points",
    "local_promise",
    "prepare",
    "run_child",
    "run_scenario",
    "trace_steps",
]

READERS = ("pyr", "xarray", "gdal")
_READERS = __name__.rpartition(".")[0] + ".readers"  # the module the children import
TIMEOUT = 120.0  # seconds a child may take before it counts as hung

#: What every snippet sees: a 64 x 64 grid, 2 bands, 32 x 32 chunks (so a
#: write has several chunk steps), values 1..60000 and nodata 0, so a chunk
#: never written (fill) never equals the data.
PRELUDE = textwrap.dedent(
    """
    import numpy as np
    import dask
    import dask.array as da
    import pyr
    from pyr import Cube, GeoBox, Raster

    dask.config.set(scheduler=SCHEDULER)
    GB = GeoBox.from_bounds((600000, 5690000, 600640, 5690640), 10, "EPSG:32631")
    DATES = ("2024-01-01", "2024-01-11", "2024-01-21", "2024-01-31")

    def values(seed, ntime):
        rng = np.random.default_rng(seed)
        return rng.integers(1, 60000, size=(ntime, 2, *GB.shape), dtype="uint16")

    def raster(seed, lazy=True):
        v = values(seed, 1)[0]
        return Raster(da.from_array(v, chunks=(1, 32, 32)) if lazy else v, GB, nodata=0, bands=("b1", "b2"))

    def cube(seed, dates, lazy=True, first=0):
        v = values(seed, first + len(dates))[first:]
        data = da.from_array(v, chunks=(1, 2, 32, 32)) if lazy else v
        return Cube(data, GB, nodata=0, bands=("b1", "b2"), times=list(dates))

    def appended(a, b):
        return Cube(np.concatenate([np.asarray(a.data), np.asarray(b.data)]), GB, nodata=0, bands=a.bands,
                    times=np.concatenate([a.times, b.times]))
    """
)


class NoSteps(AssertionError):
    """The protocol named no step (``pyr._faults.step``), so it cannot be killed at one."""


@dataclass(frozen=True)
class Scenario:
    """One write call and the state before and after it (snippets, see the module docstring)."""

    name: str
    kind: str  # "zarr" or "tiff"
    call: str
    new: str
    setup: str = ""
    old: str = "None"
    target: str = "out.zarr"
    scheduler: str = "threads"


@dataclass(frozen=True)
class Place:
    """Where a scenario runs: ``root`` is a local folder or ``s3://bucket``.

    Each kill point gets a folder (prefix) of its own under ``root``.
    """

    root: str
    storage_options: Mapping[str, Any] | None = None
    gdal_env: Mapping[str, str] = field(default_factory=dict)
    scheduler: str | None = None  # overrides the scenario's (object stores: "sync", fewer clients to start)

    @property
    def local(self) -> bool:
        return "://" not in self.root

    def spot(self, label: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
        if self.local:
            path = Path(self.root) / safe
            path.mkdir(parents=True)
            return str(path)
        return f"{self.root.rstrip('/')}/{safe}"


@dataclass
class KillResult:
    """What one kill point did: the kill, what each reader saw, and the rerun."""

    scenario: str
    point: str
    exit_code: int | None
    seen: dict[str, str]
    rerun_error: str | None
    rerun_seen: dict[str, str]
    leftovers: list[str]
    old_exists: bool

    @property
    def readers(self) -> tuple[str, ...]:
        return tuple(r for r in READERS if r in self.seen)


# --- kill points ----------------------------------------------------------------------


def kill_points(steps: Iterable[str]) -> list[str]:
    """``name#k`` for each step's first occurrence and, if it repeats, its last, in order.

    >>> kill_points(["a", "chunk", "chunk", "chunk", "b"])
    ['a#1', 'chunk#1', 'chunk#3', 'b#1']
    """
    steps = list(steps)
    counts = Counter(steps)
    points: list[str] = []
    seen: Counter[str] = Counter()
    for name in steps:
        seen[name] += 1
        if seen[name] == 1 or seen[name] == counts[name]:
            points.append(f"{name}#{seen[name]}")
    return points


# --- running children -----------------------------------------------------------------


def _job(script: str, env: Mapping[str, str], cwd: str, result: str) -> None:
    """Run ``script`` in this (child) process; an exception is saved in ``result`` and exits 1."""
    os.chdir(cwd)
    os.environ.update(env)
    try:
        exec(compile(script, "<crash job>", "exec"), {"__name__": "__crash_job__", "RESULT": result})
    except BaseException as err:
        dump(result, {"error": f"{type(err).__name__}: {err}"[:400], "traceback": traceback.format_exc()[-2000:]})
        sys.stdout.flush()
        os._exit(1)


_PRELOAD = ["numpy", "dask.array", "dask.threaded", "distributed", "zarr", "xarray", "rasterio", "s3fs", "pyr",
            "pyr.io.zarrio", "pyr.io.tiff_write", __name__, _READERS]  # fmt: skip
_context: Any = None


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(_PRELOAD)
    return _context


def run_child(script: str, env: Mapping[str, str] | None = None) -> tuple[int | None, dict[str, Any]]:
    """Run ``script`` in a child; its exit code (None if it hung) and what it saved with ``dump(RESULT, ...)``."""
    env = dict(env or {})
    with tempfile.TemporaryDirectory(prefix="pyr-crash-job-") as tmp:
        result = os.path.join(tmp, "result.json")
        if os.environ.get("PYR_CRASH_FRESH"):
            here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/
            code = f"import sys, json; sys.path[:0] = {[here, os.getcwd()]!r}; from {__name__} import _job; " + (
                "_job(sys.stdin.read(), json.loads(sys.argv[1]), sys.argv[2], sys.argv[3])"
            )
            try:
                proc = subprocess.run(
                    [sys.executable, "-c", code, json.dumps(env), tmp, result],
                    input=script,
                    text=True,
                    capture_output=True,
                    timeout=TIMEOUT,
                )
                exit_code: int | None = proc.returncode
            except subprocess.TimeoutExpired:
                exit_code = None
        else:
            proc_ = _forkserver().Process(target=_job, args=(script, env, tmp, result))
            proc_.start()
            proc_.join(TIMEOUT)
            if proc_.exitcode is None:
                proc_.kill()
                proc_.join()
                exit_code = None
            else:
                exit_code = proc_.exitcode
        saved: dict[str, Any] = {}
        if os.path.exists(result):
            with open(result, encoding="utf-8") as f:
                saved = json.load(f)
    return exit_code, saved


def _script(sc: Scenario, target: str, place: Place, body: str) -> str:
    scheduler = place.scheduler or sc.scheduler
    head = f"SCHEDULER = {scheduler!r}\nTARGET = {target!r}\nOPTS = {_plain(place.storage_options)!r}\n"
    return head + PRELUDE + "\n" + textwrap.dedent(body) + "\n"


def _plain(opts: Mapping[str, Any] | None) -> Any:
    return None if opts is None else json.loads(json.dumps(opts))


def _observe_body(sc: Scenario, readers: tuple[str, ...], place: Place, *, call: bool = False) -> str:
    look = (
        f"from {_READERS} import observe, dump\n"
        f"dump(RESULT, observe({readers!r}, {sc.kind!r}, TARGET, OPTS, lambda: {sc.old}, lambda: {sc.new}, "
        f"{dict(place.gdal_env)!r}))\n"
    )
    return (textwrap.dedent(sc.call) + "\n" if call else "") + look


def _target(sc: Scenario, spot: str) -> str:
    return os.path.join(spot, sc.target) if "://" not in spot else f"{spot}/{sc.target}"


def prepare(sc: Scenario, place: Place) -> str | None:
    """Run ``sc.setup`` once in a spot of its own; that spot (None without a setup) is copied per kill point."""
    if not sc.setup:
        return None
    spot = place.spot(f"{sc.name}-before")
    code, saved = run_child(_script(sc, _target(sc, spot), place, sc.setup))
    if code != 0:
        raise AssertionError(f"{sc.name}: setup failed ({code}): {saved.get('error')}\n{saved.get('traceback')}")
    return spot


def _fresh(sc: Scenario, place: Place, label: str, before: str | None) -> tuple[str, str]:
    """A new spot holding a copy of ``before`` (the state before the call); the spot and the target in it."""
    spot = place.spot(label)
    if before is not None:
        if place.local:
            shutil.copytree(before, spot, dirs_exist_ok=True, symlinks=True)
        else:
            fs = _remote_fs(place)
            fs.copy(before.split("://", 1)[1] + "/", spot.split("://", 1)[1] + "/", recursive=True)
            fs.invalidate_cache()
    return spot, _target(sc, spot)


_FS: dict[str, Any] = {}


def _remote_fs(place: Place) -> Any:
    import fsspec

    key = json.dumps([place.root, _plain(place.storage_options)], sort_keys=True)
    if key not in _FS:
        _FS[key] = fsspec.url_to_fs(place.root, **(place.storage_options or {}))[0]
    return _FS[key]


def _readers(sc: Scenario) -> tuple[str, ...]:
    return ("pyr", "xarray", "gdal") if sc.kind == "zarr" else ("pyr", "gdal")


def trace_steps(sc: Scenario, place: Place, before: str | None = None) -> list[str]:
    """The steps ``sc.call`` names, in order (it runs once, after ``setup``, and must succeed).

    ``before``: the spot :func:`prepare` made (else ``setup`` runs here).
    """
    before = before if before is not None else prepare(sc, place)
    _, target = _fresh(sc, place, f"{sc.name}-trace", before)
    with tempfile.TemporaryDirectory(prefix="pyr-crash-trace-") as tmp:
        trace = os.path.join(tmp, "steps")
        code, saved = run_child(
            _script(sc, target, place, _observe_body(sc, ("pyr",), place, call=True)), {"PYR_FAULT_TRACE": trace}
        )
        if code != 0:
            raise AssertionError(f"{sc.name}: the call failed without faults ({code}): {saved.get('error')}")
        steps = Path(trace).read_text(encoding="utf-8").split() if os.path.exists(trace) else []
    if not steps:
        raise NoSteps(
            f"{sc.name}: the write named no step (pyr._faults.step); a protocol that cannot be killed at "
            "named steps is untested."
        )
    if saved.get("pyr") != "new":
        raise AssertionError(f"{sc.name}: after the call pyr sees {saved.get('pyr')!r}, not the new data")
    return steps


def kill_at(sc: Scenario, place: Place, point: str, before: str | None = None) -> KillResult:
    """Kill ``sc.call`` at ``point`` (``name#k``), look with every reader, rerun, look again.

    ``before``: the spot :func:`prepare` made (else ``setup`` runs here).
    """
    before = before if before is not None else prepare(sc, place)
    spot, target = _fresh(sc, place, f"{sc.name}-{point}", before)
    readers = _readers(sc)
    killed, saved = run_child(_script(sc, target, place, sc.call), {"PYR_FAULT_AT": point})
    seen: dict[str, str] = {}
    if killed != _exit_code():
        seen = {r: "not killed" for r in readers}
        err = saved.get("error") or f"exit code {killed}"
        return KillResult(
            sc.name, point, killed, seen, f"(the kill point was not reached: {err})", {}, [], sc.old != "None"
        )
    py = tuple(r for r in readers if r != "gdal")
    _, got = run_child(_script(sc, target, place, _observe_body(sc, py, place)))
    seen.update({r: got.get(r, f"fails: reader child died: {got.get('error')}") for r in py})
    _, got = run_child(_script(sc, target, place, _observe_body(sc, ("gdal",), place)))
    seen["gdal"] = got.get("gdal", f"fails: reader child died: {got.get('error')}")
    code, saved = run_child(_script(sc, target, place, _rerun_body(sc, readers, place, spot)))
    rerun_error = None if code == 0 else (saved.get("error") or f"exit code {code}")
    rerun_seen = {r: saved.get(r, "-") for r in readers} if code == 0 else {}
    name = sc.target
    leftovers = [p for p in saved.get("ls", []) if not _inside(p, name) or _STAGING.search(p)]
    return KillResult(sc.name, point, killed, seen, rerun_error, rerun_seen, leftovers, sc.old != "None")


def _rerun_body(sc: Scenario, readers: tuple[str, ...], place: Place, spot: str) -> str:
    return textwrap.dedent(sc.call) + (
        f"\nfrom {_READERS} import observe, listing, dump\n"
        f"seen = observe({readers!r}, {sc.kind!r}, TARGET, OPTS, lambda: {sc.old}, lambda: {sc.new}, "
        f"{dict(place.gdal_env)!r})\n"
        f"dump(RESULT, {{**seen, 'ls': listing({spot!r}, OPTS)}})\n"
    )


_STAGING = re.compile(r"(^|[./])pyr-")


def _inside(path: str, name: str) -> bool:
    return path == name or path.startswith(name + "/")


def _exit_code() -> int:
    from pyr._faults import EXIT_CODE

    return EXIT_CODE


def run_scenario(sc: Scenario, place: Place, workers: int | None = None) -> list[KillResult]:
    """Every kill point of ``sc`` at ``place`` (raises :class:`NoSteps` if the call names none).

    Kill points are independent (each has its own folder or prefix): ``workers``
    of them run at once (``PYR_CRASH_WORKERS``, else 2).
    """
    from concurrent.futures import ThreadPoolExecutor

    before = prepare(sc, place)
    points = kill_points(trace_steps(sc, place, before))
    workers = workers or int(os.environ.get("PYR_CRASH_WORKERS", "2"))
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(pool.map(lambda point: kill_at(sc, place, point, before), points))


def local_promise(res: KillResult) -> list[str]:
    """The promises (SPEC, "Promises that hold under faults") ``res`` breaks; empty when it keeps them."""
    broken: list[str] = []
    if res.exit_code != _exit_code():
        return [f"{res.point}: {res.rerun_error}"]
    kinds = {r: s.split(":")[0].split(" ")[0] for r, s in res.seen.items()}
    values = set(kinds.values())
    if values == {"new"}:
        pass
    elif res.old_exists:
        if values != {"old"}:
            broken.append(f"killed at {res.point}: the previous data must read unchanged, readers saw {res.seen}")
    else:
        allowed = {"pyr": {"absent", "refused"}}
        for reader, kind in kinds.items():
            if kind not in allowed.get(reader, {"absent", "refused", "fails"}):
                broken.append(f"killed at {res.point}: a partial new output must not open in {reader}: {res.seen}")
    if res.rerun_error:
        broken.append(f"killed at {res.point}: the rerun failed: {res.rerun_error}")
    elif set(res.rerun_seen.values()) != {"new"}:
        broken.append(f"killed at {res.point}: after the rerun the readers saw {res.rerun_seen}")
    if res.leftovers:
        broken.append(f"killed at {res.point}: the rerun left staging behind: {res.leftovers[:5]}")
    return broken
