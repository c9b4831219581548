"""A cloud-masked temporal median from STAC items: pyr's ``read_stac`` beside ``odc.stac.load``.

``python -m benchmarks.stac_median [--size 10980] [--dates 10] [--impls pyr odc-stac] [--repeat 1]
[--chunks 1024] [--workers 2]``

Input: the cached synthetic series of ``benchmarks._data.series`` (B04, 10 m) and
its SCL-like band (``pyr.testing.synth_scl``, 20 m), published as STAC items
with the projection and raster extensions (``pyr.testing.stac_items``; local
hrefs). Both implementations get the same item dicts and the same grid (the
items' own: EPSG:32631, 10 m) and chunks, group by solar day, and compute the
same thing: red reflectance (``* 1e-4``), cells where the SCL is 3, 8, 9 or
10 or the red is nodata masked, the median over time, written to a Zarr
store. pyr: ``read_stac(scaled=True)`` + ``read_stac`` of the SCL on its grid
+ a masking kernel (``pyr.mask`` when present) + ``reduce_time`` +
``write_zarr``. odc-stac: ``odc.stac.load`` of both bands, masking with
xarray (``where``/``isin``), ``median("time")`` and ``to_zarr``. Each run
is a fresh child process whose process tree's resident memory is sampled
(psutil, every 50 ms); one JSON line per run: wall and CPU seconds, peak RSS, and a
checksum of the stored median (the two must agree).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLOUDY = [3, 8, 9, 10]


def items_for(paths: list[str], *, size: int, seed: int, block: int) -> list[dict[str, Any]]:
    from pyr.testing.stac_items import stac_item
    from pyr.testing.synth_scl import make_scl_series

    scl = make_scl_series(paths, size=size, seed=seed, block=block)
    out = []
    for k, (red, qa) in enumerate(zip(paths, scl, strict=True)):
        when = f"2024-01-{1 + k:02d}T10:30:00Z" if k < 28 else f"2024-02-{k - 27:02d}T10:30:00Z"
        out.append(stac_item(f"S2_{k:03d}", when, {"red": red, "scl": qa}, factors={"red": (1e-4, 0.0)}))
    return out


def _pyr(items: list[dict[str, Any]], out: str, chunks: int) -> tuple[Any, float]:
    import numpy as np

    import pyr

    red = pyr.read_stac(items, bands=["red"], scaled=True, chunks=chunks)
    scl = pyr.read_stac(items, bands=["scl"], geobox=red.geobox, chunks=chunks)
    mask = getattr(pyr, "mask", None)
    if mask is not None:
        clear = mask(red, scl, values=CLOUDY)
    else:
        clear = pyr.map_blocks(lambda r, q: np.where(np.isin(q, CLOUDY), np.float32(np.nan), r), red, scl)
    pyr.write_zarr(pyr.reduce_time(clear, "median"), out)
    return red.geobox, 0.0


def _odc(items: list[dict[str, Any]], out: str, chunks: int, geobox: Any) -> None:
    import numpy as np
    import odc.stac
    import pystac
    from odc.geo.geobox import GeoBox

    grid = GeoBox(geobox.shape, geobox.transform, geobox.crs.to_wkt())
    stac_items = [pystac.Item.from_dict(i) for i in items]
    ds = odc.stac.load(
        stac_items, bands=["red", "scl"], geobox=grid, chunks={"x": chunks, "y": chunks}, groupby="solar_day"
    )
    red = ds["red"].where(ds["red"] != 0).astype("float32") * np.float32(1e-4)
    clear = red.where(~ds["scl"].isin(CLOUDY))
    median = clear.median("time").chunk({"x": chunks, "y": chunks})  # regular chunks, as Zarr needs
    median.to_dataset(name="median").to_zarr(out, mode="w")


def child(job: dict[str, Any]) -> dict[str, Any]:
    """One run in this fresh process."""
    import dask
    import numpy as np
    import zarr

    import pyr

    dask.config.set(scheduler="threads", num_workers=job["workers"])
    from benchmarks.memory import PeakRSS, mb, tree_cpu

    items = job["items"]
    cpu0 = tree_cpu()
    out = str(Path(job["out"]) / f"{job['impl']}.zarr")
    with PeakRSS() as peak:
        t0 = time.perf_counter()
        if job["impl"] == "pyr":
            _pyr(items, out, job["chunks"])
        else:
            geobox = pyr.read_stac(items, bands=["red"]).geobox  # the same grid (the items' own)
            _odc(items, out, job["chunks"], geobox)
        wall = time.perf_counter() - t0
    cpu = tree_cpu() - cpu0
    group = zarr.open_group(out, mode="r")
    name = next(n for n in ("median", "data", "band_data") if n in group)
    values = np.asarray(group[name][...], dtype="float64")
    return {
        "wall_s": round(wall, 3),
        "cpu_s": round(cpu, 2),
        "peak_rss_mib": mb(peak.peak),
        "baseline_rss_mib": mb(peak.baseline),
        "checksum": float(f"{np.nansum(values):.7g}"),
        "valid_cells": int(np.isfinite(values).sum()),
    }


def run(job: dict[str, Any]) -> dict[str, Any]:
    from benchmarks.memory import PeakRSS, mb

    cmd = [sys.executable, "-m", "benchmarks.stac_median", "--child", json.dumps(job)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    with PeakRSS(pid=proc.pid) as peak:
        stdout, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"run failed ({proc.returncode}): {job['impl']}")
    result = json.loads(stdout.strip().splitlines()[-1])
    keep = ("impl", "size", "dates", "chunks", "workers")
    return {"bench": "stac_median", **{k: job[k] for k in keep}, **result, "process_peak_rss_mib": mb(peak.peak)}


def _has_odc_stac() -> bool:
    try:
        import odc.stac  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10980)
    parser.add_argument("--dates", type=int, default=10)
    parser.add_argument("--block", type=int, default=1024)
    parser.add_argument("--chunks", type=int, default=1024)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--impls", nargs="+", default=["pyr", "odc-stac"], choices=["pyr", "odc-stac"])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    impls = list(args.impls)
    if "odc-stac" in impls and not _has_odc_stac():
        print(json.dumps({"bench": "stac_median", "impl": "odc-stac", "status": "skipped", "reason": "no odc-stac"}))
        impls.remove("odc-stac")
    from benchmarks._data import series

    paths, _ = series(size=args.size, dates=args.dates, block=args.block)
    items = items_for(paths, size=args.size, seed=0, block=args.block)
    for r in range(args.repeat):
        order = impls if r % 2 == 0 else impls[::-1]
        for impl in order:
            (HERE / ".cache").mkdir(exist_ok=True)
            with tempfile.TemporaryDirectory(dir=HERE / ".cache") as out:
                job = {
                    "impl": impl,
                    "size": args.size,
                    "dates": args.dates,
                    "chunks": args.chunks,
                    "workers": args.workers,
                    "items": items,
                    "out": out,
                }
                record = run(job)
                record["machine_cores"] = os.cpu_count()
                print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
