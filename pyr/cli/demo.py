"""``pyr demo``: the reference workflow end to end on a synthetic Sentinel-2-like tile series."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pyr._imports import ensure
from pyr.errors import InvalidArgument, PyrError

NAME = "demo"
DEFAULT_SIZE = 4096
DEFAULT_DATES = 6
DEFAULT_WORKERS = 2
HELP = "run the whole reference workflow on a generated Sentinel-2-like series (the main job)"
DESCRIPTION = """\
Generate (once; cached in DIR/scenes) a series of synthetic Sentinel-2 L2A
B04 COGs -- uint16, nodata 0, EPSG:32631, 10 m, DEFLATE, tiled, overviews,
fields, forests, lakes, clouds and a swath edge -- then run pyr's reference
workflow on them, printing each step with its time and throughput:

   1. generate the series (pyr.testing.synth.make_series)
   2. open one date lazily (pyr.read, chunks aligned to the COG tiles)
   3. rescale it to reflectance (pyr.rescale: * 1e-4, clipped to 0..1)
   4. write it to Zarr in parallel (write_zarr(compute=False) + compute)
   5. read the store back and check it equals the source
   6. build a lazy cube over all dates (pyr.read_cube)
   7. temporal mean and median (pyr.reduce_time), written as COGs (write_tiff)
   8. write the cube to a CF Zarr store (write_zarr)
   9. open that store with xarray + rioxarray (when installed) and check CRS,
      transform and times
  10. PNG quicklooks of the temporal mean, the median and one date (with
      axes and a colour bar when matplotlib is installed, else plain grey)
  11. the series on a user grid in another CRS and resolution (EPSG:3035,
      30 m: pyr.GeoBox.from_bbox, pyr.read_cube(geobox=...)), its temporal
      median written as a COG, and a quicklook of it

Throughput is uncompressed megabytes processed per second. A progress bar
shows every long computation. The first run spends most of its time
generating the series; later runs reuse it. --size 10980 --dates 10 is a full
Sentinel-2 tile series (minutes). Only pyr's required packages are needed:
without xarray step 9 is skipped, and without matplotlib the pictures are
plain greyscale.

With --stac: the series and an SCL-like quality band are served as a STAC
API on loopback and read back with a search, read_stac, a cloud mask and a
temporal median (needs pystac-client: pip install 'pyr[stac]').

examples:
  pyr demo
  pyr demo --stac --size 1024
  pyr demo --size 10980 --dates 10 --out /data/pyr-demo --scheduler distributed
"""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``pyr demo``."""
    parser.add_argument(
        "--size",
        type=_positive,
        default=DEFAULT_SIZE,
        metavar="N",
        help=f"tile side in pixels (default {DEFAULT_SIZE}; 10980 is a full Sentinel-2 tile)",
    )
    parser.add_argument(
        "--dates",
        type=_positive,
        default=DEFAULT_DATES,
        metavar="K",
        help=f"dates, 5 days apart (default {DEFAULT_DATES})",
    )
    parser.add_argument(
        "--out",
        default="pyr-demo",
        metavar="DIR",
        help="folder for the series (cached) and outputs (default ./pyr-demo)",
    )
    parser.add_argument(
        "--scheduler",
        choices=("threads", "processes", "distributed"),
        default="threads",
        help="dask's threads (default), processes, or a distributed LocalCluster",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        default=DEFAULT_WORKERS,
        metavar="W",
        help=f"threads, processes or cluster workers (default {DEFAULT_WORKERS})",
    )
    parser.add_argument("--seed", type=int, default=0, help="the synthetic landscape and weather (default 0)")
    parser.add_argument(
        "--stac",
        action="store_true",
        help="instead: serve the series as a STAC API on loopback, then search -> read_stac -> mask -> median",
    )


@contextlib.contextmanager
def use_scheduler(name: str, workers: int) -> Iterator[str]:
    """Make ``name`` dask's scheduler for the block; yields a description of it."""
    ensure("dask")
    import dask

    if name == "threads":
        with dask.config.set(scheduler=name, num_workers=workers):
            yield f"dask threads ({workers} workers)"
        return
    if name == "processes":  # one pool for every step, not a new one (and its start-up) per compute
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context(dask.config.get("multiprocessing.context", "spawn"))
        with (
            ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
            dask.config.set(scheduler="processes", pool=pool),
        ):
            yield f"dask processes ({workers} worker processes)"
        return
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InvalidArgument(
            "--scheduler distributed needs the 'distributed' package (pip install pyr[distributed])."
        ) from None
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR
        ) as cluster,  # fmt: skip
        Client(cluster) as client,
    ):
        yield f"distributed LocalCluster ({workers} worker processes, scheduler {client.scheduler.address})"


class _Steps:
    """Prints numbered steps with their time and throughput."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.n = 0
        self.t_start = time.perf_counter()

    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[dict[str, Any]]:
        self.n += 1
        print(f"[{self.n}/{self.total}] {title}", flush=True)
        info: dict[str, Any] = {}
        t0 = time.perf_counter()
        yield info
        dt = time.perf_counter() - t0
        parts = [f"{dt:.2f} s"]
        if info.get("bytes"):
            parts.append(f"{info['bytes'] / 1e6 / max(dt, 1e-9):,.0f} MB/s ({info['bytes'] / 1e6:,.0f} MB)")
        if info.get("note"):
            parts.append(str(info["note"]))
        print("      -> " + ", ".join(parts), flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t_start


def _all_done(*_: Any) -> None:
    """Joins several write tasks into one (module level: it must pickle for worker processes)."""


def _cube(paths: list[Path], chunks: int) -> tuple[Any, str]:
    from pyr import read, read_cube, stack
    from pyr.testing.synth import times_of

    times = times_of(paths)
    try:
        return read_cube(paths, times=times, chunks=chunks), "pyr.read_cube"
    except NotImplementedError:
        rasters = [read(p, chunks=chunks) for p in paths]
        return stack(rasters, times=np.array(times, dtype="datetime64[ns]")), "pyr.stack of lazy reads"


def _xarray_check(store: Path, cube: Any) -> list[str]:
    try:
        import rioxarray  # noqa: F401  (registers the .rio accessor)
        import xarray as xr
    except ImportError:
        return ["xarray/rioxarray not installed: skipped"]
    ds = xr.open_zarr(store)
    name = next(iter(ds.data_vars))
    arr = ds[name]
    crs = arr.rio.crs
    transform = arr.rio.transform()
    times = arr["time"].values
    problems = []
    if crs is None or crs.to_epsg() != cube.geobox.epsg:
        problems.append(f"CRS {crs} instead of EPSG:{cube.geobox.epsg}")
    if not transform.almost_equals(cube.geobox.transform):
        problems.append(f"transform {tuple(transform)[:6]} instead of {tuple(cube.geobox.transform)[:6]}")
    if not np.array_equal(times.astype("datetime64[ns]"), cube.times.astype("datetime64[ns]")):
        problems.append("times differ")
    if problems:
        raise PyrError(f"xarray reads {str(store)!r} differently from pyr: {'; '.join(problems)}.")
    encoded, decoded = arr.rio.encoded_nodata, arr.rio.nodata
    nodata = f"{encoded} (xarray decodes it to {decoded})" if encoded is not None else f"{decoded}"
    t = transform
    return [
        f"xarray.open_zarr: variable {name!r}, dims {dict(arr.sizes)}",
        f"time: {np.datetime_as_string(times[0], unit='D')} .. {np.datetime_as_string(times[-1], unit='D')}"
        f" ({len(times)} dates)",
        f"rioxarray: crs {crs}, nodata {nodata}, transform ({t.a:g}, {t.b:g}, {t.c:.1f}, {t.d:g}, {t.e:g}, {t.f:.1f})",
        "CRS, transform and times match pyr's",
    ]


def run(args: argparse.Namespace) -> int:
    """Run the demo; returns 0, or raises on the first failure."""
    if getattr(args, "stac", False):
        from pyr.cli._demo_stac import run_stac

        return run_stac(args)
    ensure("dask.array")
    import dask.array as da

    from pyr import compute, read, read_zarr, reduce_time, rescale, write_tiff, write_zarr
    from pyr.cli import quicklook
    from pyr.testing.synth import make_series

    if args.size < 64:
        raise InvalidArgument(f"--size {args.size}: expected at least 64 pixels.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    block = 1024 if args.size >= 8192 else 512 if args.size >= 2048 else 256
    chunks = 2048 if args.size >= 8192 else 1024 if args.size >= 2048 else block
    steps = _Steps(11)
    with use_scheduler(args.scheduler, args.workers) as where:
        print(f"pyr demo: {args.dates} dates of {args.size} x {args.size} px (EPSG:32631, 10 m) in {out}")
        print(f"scheduler: {where}; chunks {chunks} x {chunks}; throughput = uncompressed MB processed per second")
        date_bytes = args.size * args.size * 2

        with steps.step(f"generate the series (pyr.testing.synth.make_series, block {block}) in {out / 'scenes'}") as s:
            folder = out / "scenes"
            before = {p.name: p.stat().st_mtime_ns for p in folder.glob("B04_*.tif")} if folder.is_dir() else {}
            paths = make_series(folder, size=args.size, dates=args.dates, seed=args.seed, block=block)
            made = [p for p in paths if before.get(p.name) != p.stat().st_mtime_ns]
            s["bytes"] = date_bytes * len(made)
            on_disk = sum(p.stat().st_size for p in paths) / 1e6
            s["note"] = f"{len(made)} written, {len(paths) - len(made)} cached, {on_disk:,.0f} MB of COGs"

        with steps.step(f"open {paths[0].name} lazily (pyr.read, chunks={chunks})") as s:
            raster = read(paths[0], chunks=chunks)
            s["note"] = f"{raster!r}; header only, no pixel read"

        with steps.step("rescale to reflectance (pyr.rescale scale=1e-4, clip=(0, 1), float32)") as s:
            refl = rescale(raster, scale=1e-4, clip=(0.0, 1.0))
            s["note"] = f"lazy: {refl.data.npartitions} chunks, nothing computed"

        store = out / "date.zarr"
        with steps.step(f"write_zarr(compute=False) -> {store.name}, then compute in parallel") as s:
            job = write_zarr(refl, store, compute=False, mode="w")
            compute(job, progress=True)
            s["bytes"] = date_bytes
            s["note"] = f"{refl.data.npartitions} chunks written by {where.split(' (')[0]}"

        with steps.step(f"read {store.name} back (pyr.read_zarr) and compare with the source") as s:
            back = read_zarr(store)
            if (
                back.geobox != refl.geobox
                or back.bands != refl.bands
                or back.nodata is None
                or not np.isnan(back.nodata)
            ):
                raise PyrError(f"{str(store)!r} came back with a different grid, bands or nodata: {back!r}")
            same = (back.data == refl.data) | (da.isnan(back.data) & da.isnan(refl.data))
            if not bool(compute(same.all(), progress=True)):
                raise PyrError(f"{str(store)!r} holds different values than the rescaled source.")
            s["bytes"] = date_bytes * 3  # the tif again and the float32 store
            s["note"] = "same grid, CRS, nodata and values"

        with steps.step(f"build a lazy cube over {len(paths)} dates") as s:
            cube, how = _cube(paths, chunks)
            s["note"] = f"{how}: {cube!r}"

        with steps.step("temporal mean and median (pyr.reduce_time) -> mean.tif, median.tif (COG)") as s:
            mean, median = reduce_time(cube, "mean"), reduce_time(cube, "median")
            # deflate level 1: twice as fast as GDAL's default 6 for a few percent more bytes
            jobs = [
                write_tiff(r, out / f"{n}.tif", level=1, compute=False) for r, n in ((mean, "mean"), (median, "median"))
            ]
            from dask.delayed import delayed

            compute(delayed(_all_done, pure=True)(*jobs), progress=True)
            s["bytes"] = date_bytes * len(paths)
            s["note"] = "cube read once for both"

        cube_store = out / "cube.zarr"
        with steps.step(f"write the cube to {cube_store.name} (CF Zarr v2, write_zarr)") as s:
            compute(write_zarr(cube, cube_store, compute=False, mode="w"), progress=True)
            s["bytes"] = date_bytes * len(paths)
            s["note"] = f"{cube.data.npartitions} chunks"

        with steps.step(f"open {cube_store.name} with xarray + rioxarray") as s:
            lines = _xarray_check(cube_store, cube)
            s["note"] = lines[-1]
            for line in lines[:-1]:
                print(f"      {line}")

        from pyr.cli._plot import has_matplotlib

        kind = "georeferenced" if has_matplotlib() else "plain greyscale: matplotlib is not installed"
        with steps.step(f"PNG quicklooks ({kind}; from overviews)") as s:
            pictures = []
            span = f"{len(paths)} dates, {paths[0].stem[4:]}..{paths[-1].stem[4:]}"
            looks = [
                (out / "mean.tif", out / "mean.png", f"temporal mean of {span} (pyr.reduce_time)"),
                (out / "median.tif", out / "median.png", f"temporal median of {span} (pyr.reduce_time)"),
                (paths[0], out / "date.png", f"one date: {paths[0].name}"),
            ]
            for src, png, title in looks:
                opts = argparse.Namespace(
                    band="1", overview=None, time=0, cmap="gray", aws_unsigned=False, aws_region=None
                )
                (w, h), _, level = quicklook.draw(str(src), str(png), opts, heading=title)
                pictures.append(f"{png.name} ({w} x {h}, {level})")
            s["note"] = "; ".join(pictures)

        from pyr.cli._demo_grid import grid_step

        written = grid_step(steps, paths, out)

    print(
        f"done in {steps.elapsed():.1f} s: outputs in {out}: "
        f"date.zarr, cube.zarr, mean.tif, median.tif, mean.png, median.png, date.png, {', '.join(written)}"
    )
    sys.stdout.flush()
    return 0
