"""Entry point: ``python -m benchmarks.run [--small] [--data DIR] [--only NAME...] ...``.

Every run of one (pipeline, implementation, scheduler) happens in a fresh
worker process (``python -m benchmarks.run --worker JOB``), so peak memory,
GDAL's block cache and dask's pools never carry over between runs, and a
hopeless run can be stopped by a time limit. Implementations alternate
(A B A B, the order reversed on every other repeat) so drift of a shared
machine cancels; the bound of each pipeline is measured in the same rotation.
Each run prints one JSON line; the table of ratios follows.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.pipelines_common import Job, Steps

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SCHEDULERS = ("threads", "processes", "processes-fresh", "distributed", "distributed-unqueued")
DASK_IMPLS = ("bound-dask", "pyr", "pyr-1024", "rioxarray", "rioxarray-nolock", "pyramids")
PIPELINES: dict[str, tuple[str, ...]] = {
    # name -> implementations besides "bound" (those run under every scheduler)
    "band1": DASK_IMPLS,
    "mean": DASK_IMPLS,
    "median": DASK_IMPLS,
    "count": DASK_IMPLS,
    "http": ("pyr", "pyr-1024", "rioxarray-nolock"),
    "decode": (),
    "zarr_write": (),
    "read_cube_1000": (),
    "reproject": ("pyr", "odc-stac", "rioxarray"),  # benchmarks/pipelines_reproject.py
}
# Benchmarks written by others, run through their own ``main(argv)`` (their own JSON lines):
EXTERNAL = ("cube_memory", "http_bytes", "scheduler_floor", "codecs", "stac_median", "http_latency")
DEFAULT_ONLY = (
    "band1", "mean", "median", "count", "http", "decode", "zarr_write", "read_cube_1000", "reproject", *EXTERNAL
)  # fmt: skip


# --- worker side ------------------------------------------------------------------


def _impl_func(job: Job) -> Callable[[Job], Steps]:
    impls = _impl_table(job)
    if job.pipeline not in impls:
        from benchmarks.pipelines_pyr import Skip

        raise Skip(f"{job.impl} has no {job.pipeline!r} pipeline")
    return impls[job.pipeline]


def _impl_table(job: Job) -> dict[str, Callable[[Job], Steps]]:
    if job.pipeline == "reproject":
        from benchmarks import pipelines_reproject
        from benchmarks.pipelines_pyr import Skip

        why = pipelines_reproject.available(job.impl)
        if why is not None:
            raise Skip(why)
        impl = pipelines_reproject.IMPLS.get(job.impl)
        return {} if impl is None else {"reproject": impl}
    if job.impl == "bound":
        from benchmarks import bounds

        return bounds.IMPLS
    if job.impl == "bound-libdeflate":  # the bounds with GDAL's tile reads replaced by libdeflate
        from benchmarks import bounds, bounds_libdeflate

        bounds_libdeflate.install()
        return bounds.IMPLS
    if job.impl == "bound-dask" or job.impl.startswith("bound-dask-"):
        from benchmarks import bounds

        return bounds.DASK_IMPLS
    if job.impl.startswith("pyr-") or job.impl.startswith("pyr+") or job.impl == "pyr":
        from benchmarks import pipelines_pyr, pipelines_pyr_experiments

        pipelines_pyr_experiments.apply(job.impl)
        return pipelines_pyr.IMPLS
    if job.impl.startswith("rioxarray"):
        from benchmarks import pipelines_rioxarray

        return pipelines_rioxarray.IMPLS
    if job.impl == "pyramids":
        from benchmarks import pipelines_pyramids

        why = pipelines_pyramids.available()
        if why is not None:
            from benchmarks.pipelines_pyr import Skip

            raise Skip(why)
        return pipelines_pyramids.IMPLS
    raise ValueError(job.impl)


def _read_cube_many(job: Job) -> Steps:
    """Graph-build time and files opened by ``read_cube`` over many sources."""
    import rasterio

    import pyr
    from benchmarks.pipelines_pyr import Skip

    steps = Steps()
    opened: list[str] = []
    real_open = rasterio.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(str(path))
        return real_open(path, *args, **kwargs)

    rasterio.open = counting_open
    try:
        with steps.step("build"):
            try:
                cube = pyr.read_cube(list(job.paths))
            except NotImplementedError as err:
                raise Skip(f"pyr: {err}") from None
        with steps.step("build_mean"):
            mean = pyr.reduce_time(cube, "mean")
    except NotImplementedError as err:
        raise Skip(f"pyr: {err}") from None
    finally:
        rasterio.open = real_open
    steps.extra.update(
        sources=len(job.paths),
        files_opened=len(set(opened)),
        opens=len(opened),
        graph_tasks=len(mean.data.__dask_graph__()),
        chunks=[int(c[0]) for c in cube.data.chunks[2:]],
    )
    steps.checksum = float(len(job.paths))
    return steps


_IMPORTS = {
    "bound": ("rasterio", "zarr", "numcodecs"),
    "bound-dask": ("rasterio", "zarr", "numcodecs", "dask.array", "pyr._malloc"),
    "bound-libdeflate": ("rasterio", "zarr", "numcodecs", "imagecodecs", "tifffile"),
    # pyproj: pyr imports it (when installed) for the CF grid-mapping attributes of a
    # Zarr store; rioxarray imports it at import time
    "pyr": ("pyr", "dask.array", "zarr", "numcodecs", "rasterio", "pyproj"),
    "rioxarray": ("rioxarray", "xarray", "pandas", "dask.array", "zarr", "numcodecs"),
    "pyramids": ("pyramids.dataset", "dask.array", "zarr", "numcodecs"),
    "odc-stac": ("odc.stac", "odc.geo.geobox", "pystac", "shapely", "xarray", "dask.array", "zarr", "numcodecs"),
}


def _preimport(impl: str) -> None:
    """Import what an implementation needs before the clock starts (import time is not its speed)."""
    import importlib

    family = "pyr" if impl.startswith("pyr") and not impl.startswith("pyramids") else impl.split("-")[0]
    key = "bound-dask" if impl.startswith("bound-dask") else impl
    for mod in _IMPORTS.get(key, _IMPORTS.get(family, ())):
        importlib.import_module(mod)


def _setup_scheduler(name: str) -> Any:
    import dask

    if name == "threads":
        dask.config.set(scheduler="threads", num_workers=2)
        return None
    if name == "processes-fresh":  # dask's default: a new pool of processes for every compute
        dask.config.set(scheduler="processes", num_workers=2)
        return None
    if name == "processes":  # one pool for the session, given to dask (started and warmed before the clock)
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        from functools import partial

        from dask.multiprocessing import initialize_worker_process

        os.environ.setdefault("PYTHONHASHSEED", "6640")  # what dask sets for the pools it starts itself
        pool = ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn"), initializer=partial(initialize_worker_process)
        )
        dask.config.set(scheduler="processes", num_workers=2, pool=pool)
        return pool
    if name in ("distributed", "distributed-unqueued"):
        from distributed import Client, LocalCluster

        if name == "distributed-unqueued":  # every ready task goes to a worker at once (no root-task queue)
            dask.config.set({"distributed.scheduler.worker-saturation": float("inf")})

        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        return Client(cluster), cluster
    raise ValueError(name)


def _warm_up(job: Job, handle: Any) -> None:
    """Pay dask's first-compute costs (and the workers' imports) before the clock starts.

    A user pays these once per session, not once per pipeline. With
    ``processes-fresh`` dask starts a new pool on every compute, so there is
    nothing to warm: that cost is part of every compute there.
    """
    if job.scheduler == "processes-fresh":
        return
    import dask
    import dask.array as da

    impl = "pyr" if job.pipeline == "read_cube_1000" else job.impl
    dask.compute(da.nansum(da.ones((4, 4), chunks=2).astype("float64")))
    if job.scheduler == "processes":
        # both workers import what the pipeline needs (each call holds its worker a moment)
        for f in [handle.submit(_preimport_and_wait, impl) for _ in range(2)]:
            f.result()
    elif handle is not None:
        client, _ = handle
        client.run(_preimport, impl)


def _preimport_and_wait(impl: str) -> None:
    _preimport(impl)
    time.sleep(0.5)


def worker(job: Job) -> dict[str, Any]:
    """Run one job in this process; return its record."""
    from benchmarks.memory import PeakRSS, mb, tree_cpu
    from benchmarks.pipelines_pyr import Skip

    record: dict[str, Any] = {"pipeline": job.pipeline, "impl": job.impl, "scheduler": job.scheduler}
    handle = None
    try:
        func = _read_cube_many if job.pipeline == "read_cube_1000" else _impl_func(job)
        _preimport("pyr" if job.pipeline == "read_cube_1000" else job.impl)
        if job.impl not in ("bound", "bound-libdeflate") and job.pipeline != "read_cube_1000":
            handle = _setup_scheduler(job.scheduler)
            _warm_up(job, handle)
        # The full garbage collection the imports have made due runs now, not inside the first timed
        # step (it walks every imported module's objects: about 0.08 s of pyr's band1 "open" otherwise).
        gc.collect()
        with PeakRSS() as mem:
            c0 = tree_cpu()
            t0 = time.perf_counter()
            steps = func(job)
            wall = time.perf_counter() - t0
            cpu = tree_cpu() - c0
        record.update(
            status="ok",
            wall=round(wall, 3),
            cpu_s=round(cpu, 2),
            steps=steps.times,
            peak_rss_mb=mb(mem.peak),
            base_rss_mb=mb(mem.baseline),
            checksum=steps.checksum,
            **steps.extra,
        )
    except Skip as err:
        record.update(status="skipped", reason=str(err))
    except Exception as err:
        record.update(status="error", reason=f"{type(err).__name__}: {err}"[:500])
        traceback.print_exc(file=sys.stderr)
    finally:
        _teardown_scheduler(handle)
    return record


def _teardown_scheduler(handle: Any) -> None:
    """Stop what :func:`_setup_scheduler` started (a client and cluster, or a process pool)."""
    if isinstance(handle, tuple):
        client, cluster = handle
        client.close()
        cluster.close()
    elif handle is not None:
        handle.shutdown()


# --- orchestrator side ----------------------------------------------------------


def _pyspy() -> str | None:
    """The py-spy executable (``PYSPY`` env var, beside this Python (the bench extra), PATH), if any."""
    import shutil

    beside = os.path.join(os.path.dirname(sys.executable), "py-spy")
    for cand in (os.environ.get("PYSPY"), beside, shutil.which("py-spy")):
        if cand and os.path.exists(cand):
            return cand
    return None


def _run_worker(job: Job, timeout: float, profile: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.run", "--worker", json.dumps(asdict(job))]
    if profile:
        spy = _pyspy()
        if spy is None:
            raise SystemExit("--profile needs py-spy (pip install py-spy, or set PYSPY=/path/to/py-spy)")
        out = os.path.join(profile, f"{job.pipeline}-{job.impl}-{job.scheduler}.txt")
        cmd = [
            spy,
            "record",
            "--format",
            "raw",
            "--rate",
            "200",
            "--subprocesses",
            "--nonblocking",
            "-o",
            out,
            "--",
            *cmd,
        ]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            cmd, cwd=HERE.parent, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return {
            "pipeline": job.pipeline,
            "impl": job.impl,
            "scheduler": job.scheduler,
            "status": "skipped",
            "reason": f"time limit {timeout:.0f} s exceeded",
        }
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {
            "pipeline": job.pipeline,
            "impl": job.impl,
            "scheduler": job.scheduler,
            "status": "error",
            "reason": f"worker exited {proc.returncode}: {' | '.join(tail)}"[:500],
        }
    record: dict[str, Any] = json.loads(lines[-1])
    record["process_seconds"] = round(time.perf_counter() - t0, 2)
    return record


def _nodata(path: str) -> Any:
    import rasterio

    with rasterio.open(path) as ds:
        nd = ds.nodata
    return None if nd is None else (int(nd) if float(nd).is_integer() else nd)


def _side(path: str) -> int:
    """The width of the raster at ``path`` (the ``size`` recorded for ``--data`` runs)."""
    import rasterio

    with rasterio.open(path) as ds:
        return int(ds.width)


def _many_sources(path: str, n: int) -> list[str]:
    """``n`` symlinks to ``path`` in the cache (read_cube over many sources)."""
    d = HERE / ".cache" / f"many-{n}-{Path(path).parent.name}"
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        link = d / f"S2_{i:04d}_B04.tif"
        if not link.exists():
            os.symlink(path, link)
        out.append(str(link))
    return out


def _tile_bytes(path: str) -> int:
    """Compressed bytes of the full-resolution tiles of band 1 (what a full read must fetch)."""
    import rasterio

    with rasterio.open(path) as ds:
        bh, bw = ds.block_shapes[0]
        rows, cols = -(-ds.height // bh), -(-ds.width // bw)
        return sum(int(ds.block_size(1, i, j)) for i in range(rows) for j in range(cols))


def _http_root(paths: list[str]) -> tuple[str, list[str]]:
    root = str(Path(paths[0]).parent)
    return root, [Path(p).name for p in paths]


def _serve(root: str) -> Any:
    try:
        from tests.servers import serve_directory  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        serve_directory = None
    if serve_directory is not None:  # the test suite's RangeServer
        print("# HTTP: tests.servers.serve_directory (RangeServer)", file=sys.stderr)
        return serve_directory(root)
    from benchmarks._http import serve

    print("# HTTP: benchmarks._http.serve", file=sys.stderr)
    return serve(root)


def _run_external(name: str, size: int, dates: int, data: str | None) -> None:
    """Run ``benchmarks.<name>.main`` (cube memory, HTTP bytes) with this run's size, if it exists."""
    import importlib

    try:
        module = importlib.import_module(f"benchmarks.{name}")
    except ImportError as err:
        print(json.dumps({"pipeline": name, "status": "skipped", "reason": f"not available: {err}"}), flush=True)
        return
    if data:
        print(json.dumps({"pipeline": name, "status": "skipped", "reason": "uses its own series, not --data"}))
        return
    argv = ["--size", str(size)]
    if name == "cube_memory":
        argv += ["--dates", str(dates), "--how", "mean", "median", "--scheduler", "threads"]
    if name in ("codecs", "stac_median", "http_latency"):  # the run's own cached series (--small: not full-size)
        argv += ["--dates", str(dates)]
    print(f"# {name}: python -m benchmarks.{name} {' '.join(argv)}", file=sys.stderr, flush=True)
    try:
        module.main(argv)
    except (Exception, SystemExit) as err:  # someone else's benchmark must not sink this run
        print(json.dumps({"pipeline": name, "status": "error", "reason": f"{type(err).__name__}: {err}"[:300]}))


def plan(
    only: list[str], schedulers: list[str], repeat: int, impls_override: list[str] | None = None
) -> list[tuple[str, str, str, int]]:
    """The interleaved order of (pipeline, impl, scheduler, repeat)."""
    order = []
    for name in only:
        impls = PIPELINES[name]
        if impls and impls_override:
            impls = tuple(i for i in impls_override if i != "bound")
        if not impls:  # one implementation, no dask scheduler involved
            impl = "pyr" if name == "read_cube_1000" else "bound"
            order += [(name, impl, "threads", r) for r in range(repeat)]
            continue
        for sched in schedulers:
            for r in range(repeat):
                row = ["bound", *impls]
                if r % 2:
                    row.reverse()
                order += [(name, impl, sched, r) for impl in row]
    return order


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="2048 x 2048, 4 dates (a couple of minutes)")
    p.add_argument("--data", help="use the COGs in DIR (sorted *.tif) instead of generating the series")
    p.add_argument("--only", nargs="+", choices=[*PIPELINES, *EXTERNAL], help="pipelines to run")
    p.add_argument(
        "--impls",
        nargs="+",
        help="implementations to run instead of the default set (bound always runs); "
        "pyr-N means chunks=N, pyr+cache64 / +readN / +pertaskN / +v3 apply an experiment "
        "(benchmarks/pipelines_pyr_experiments.py)",
    )
    p.add_argument(
        "--schedulers",
        default="threads",
        help="comma list of threads, processes (one warmed pool given to dask), processes-fresh (dask's new pool "
        "per compute), distributed (a LocalCluster of 2 worker processes), distributed-unqueued (the same with "
        "distributed.scheduler.worker-saturation: inf)",
    )
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--timeout", type=float, help="seconds per run (default 180 small, 300 full)")
    p.add_argument("--size", type=int, help="override the raster side")
    p.add_argument("--dates", type=int, help="override the number of dates")
    p.add_argument(
        "--results", default=str(RESULTS), help="folder for the JSON-lines log (default: benchmarks/results)"
    )
    p.add_argument("--chart", help="where to write the PNG chart (default: ratios.png in the results folder)")
    p.add_argument("--profile", metavar="DIR", help="record each run with py-spy (collapsed stacks) into DIR")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        job = Job(**json.loads(args.worker))
        job = Job(**{**asdict(job), "paths": tuple(job.paths)})
        print(json.dumps(worker(job)), flush=True)
        return 0

    from benchmarks import report
    from benchmarks._data import series

    size = args.size or (2048 if args.small else 10980)
    dates = args.dates or (4 if args.small else 10)
    timeout = args.timeout or (180.0 if args.small else 300.0)
    schedulers = [s.strip() for s in args.schedulers.split(",") if s.strip()]
    for s in schedulers:
        if s not in SCHEDULERS:
            p.error(f"unknown scheduler {s!r}; expected some of {', '.join(SCHEDULERS)}")
    only = args.only or list(DEFAULT_ONLY)
    external = [name for name in only if name in EXTERNAL]
    only = [name for name in only if name not in EXTERNAL]
    if args.data:
        paths = sorted(str(x) for x in Path(args.data).glob("*.tif"))
        if not paths:
            p.error(f"--data {args.data}: no *.tif files")
        origin = f"--data {args.data}"
        size = args.size or _side(paths[0])
    else:
        t0 = time.perf_counter()
        paths, origin = series(size=size, dates=dates)
        print(f"# data: {len(paths)} COGs from {origin} ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
    nodata = _nodata(paths[0])
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    chart = args.chart or str(results / "ratios.png")
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = results / f"{stamp}{'-small' if args.small else ''}.jsonl"
    records: list[dict[str, Any]] = []
    failed: set[tuple[str, str, str]] = set()
    file_bytes = os.path.getsize(paths[0])
    tile_bytes = _tile_bytes(paths[0]) if "http" in only else 0
    server = None
    base_url = ""
    counter = None
    if "http" in only:
        root, names = _http_root(paths)
        server = _serve(root)
        base_url, counter = server.__enter__()
    small_cog = str(HERE / ".cache")  # placeholder, replaced below when needed
    if "read_cube_1000" in only:
        small_cog = series(size=512, dates=1)[0][0]
    try:
        with tempfile.TemporaryDirectory(prefix="pyr-bench-", dir=os.environ.get("PYR_BENCH_TMP")) as tmp:
            for name, impl, sched, r in plan(only, schedulers, args.repeat, args.impls):
                if (name, impl, sched) in failed:
                    continue
                out = tempfile.mkdtemp(dir=tmp)
                extra: dict[str, Any] = {}
                job_paths = paths if name in ("mean", "median", "count", "reproject") else paths[:1]
                if name == "read_cube_1000":
                    job_paths = _many_sources(small_cog, 1000)
                if name == "http":
                    from pyr import cloud_env

                    extra = {"urls": [f"{base_url}/{n}" for n in names[:1]], "env": dict(cloud_env())}
                    assert counter is not None
                    counter.reset()
                job = Job(name, impl, sched, tuple(job_paths), out, nodata, size, extra)
                rec = _run_worker(job, timeout, args.profile)
                rec.update(repeat=r, size=size, dates=len(job_paths))
                if name == "http" and counter is not None:
                    rec.update(
                        http_bytes=counter.bytes,
                        http_requests=counter.requests,
                        file_bytes=file_bytes,
                        tile_bytes=tile_bytes,
                        bytes_ratio=round(counter.bytes / file_bytes, 4),
                        bytes_ratio_tiles=round(counter.bytes / tile_bytes, 4),
                    )
                if rec["status"] != "ok":
                    failed.add((name, impl, sched))
                print(json.dumps(rec), flush=True)
                records.append(rec)
                with open(log_path, "a") as f:
                    f.write(json.dumps(rec) + "\n")
                subprocess.run(["rm", "-rf", out], check=False)
    finally:
        if server is not None:
            server.__exit__(None, None, None)
    for name in external:
        _run_external(name, size, dates, args.data)
    print(f"# results: {log_path}", file=sys.stderr)
    print(report.table(records))
    try:
        report.chart(records, chart)
        print(f"# chart: {chart}", file=sys.stderr)
    except Exception as err:  # the table matters more than the picture
        print(f"# chart not written: {err}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
