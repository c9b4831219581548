"""``pyr demo --stac``: the demo's series served as a STAC API on loopback, then search -> cloud-free median.

The generated B04 series (10 m) gets an SCL-like quality band (20 m, from
the generator's own clouds: :mod:`pyr.testing.synth_scl`); both are
published as STAC items with the projection and raster extensions by a
STAC API on 127.0.0.1 (:class:`pyr.testing.stac_api.StacApi`). Then, each
step printed with its time: ``pystac_client`` searches it, ``read_stac``
builds lazy cubes of the red band (scaled to reflectance) and of the SCL
band on the same grid, the cloud and shadow classes are masked, the
temporal median is taken and written to Zarr, and a PNG quicklook of it is
drawn.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pyr.errors import InvalidArgument, PyrError

__all__ = ["run_stac"]

COLLECTION = "pyr-demo-s2"


def _items(b04: list[Path], scl: list[Path]) -> list[dict[str, Any]]:
    from pyr.testing.stac_items import stac_item
    from pyr.testing.synth import times_of

    items = []
    for time, red, qa in zip(times_of(b04), b04, scl, strict=True):
        stamp = time.strftime("%Y%m%d")
        items.append(
            stac_item(
                f"S2_PYR_{stamp}",
                time.strftime("%Y-%m-%dT10:30:00Z"),
                {"red": red.resolve(), "scl": qa.resolve()},
                collection=COLLECTION,
                factors={"red": (1e-4, 0.0)},
            )
        )
    return items


def run_stac(args: argparse.Namespace) -> int:
    """Run the ``--stac`` demo (the scheduler, size, dates and out folder of ``args``)."""
    try:
        import pystac_client
    except ImportError:
        raise InvalidArgument(
            "pyr demo --stac needs pystac-client (pip install 'pyr[stac]'); plain `pyr demo` runs without it."
        ) from None
    from pyr import compute, mask, read_stac, reduce_time, write_zarr
    from pyr.cli import quicklook
    from pyr.cli.demo import _Steps, use_scheduler
    from pyr.testing.stac_api import StacApi
    from pyr.testing.synth import make_series
    from pyr.testing.synth_scl import CLOUDY, make_scl_series

    if args.size < 64:
        raise InvalidArgument(f"--size {args.size}: expected at least 64 pixels.")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    block = 512 if args.size >= 2048 else 256
    steps = _Steps(7)
    with use_scheduler(args.scheduler, args.workers) as where:
        print(f"pyr demo --stac: {args.dates} dates of {args.size} x {args.size} px (EPSG:32631) in {out}")
        print(f"scheduler: {where}")
        with steps.step(f"generate the series and its SCL band (20 m) in {out / 'scenes'}") as s:
            b04 = make_series(out / "scenes", size=args.size, dates=args.dates, seed=args.seed, block=block)
            scl = make_scl_series(b04, size=args.size, seed=args.seed, block=block)
            s["note"] = f"{len(b04)} B04 (10 m) + {len(scl)} SCL (20 m) COGs"
        with (
            StacApi(_items(b04, scl), title="pyr demo") as api,
            steps.step(f"serve them as a STAC API on {api.url} and search it (pystac_client)") as s,
        ):
            client = pystac_client.Client.open(api.url)
            search = client.search(collections=[COLLECTION], datetime="2000-01-01/2100-01-01", limit=4)
            items = list(search.items_as_dicts())
            s["note"] = f"{len(items)} items in {api.searches} page(s); assets red (10 m), scl (20 m)"
        with steps.step("read_stac: red scaled to reflectance, scl on the same grid (lazy)") as s:
            red = read_stac(items, bands=["red"], scaled=True, chunks=block * 2)
            qa = read_stac(items, bands=["scl"], geobox=red.geobox, chunks=block * 2)
            s["note"] = f"{red!r}; no file opened"
        with steps.step("mask SCL classes 3, 8, 9, 10 (cloud shadow, clouds, cirrus) to NaN") as s:
            clear = mask(red, qa, values=list(CLOUDY))
            s["note"] = "lazy"
        with steps.step("temporal median of the cloud-free cube (pyr.reduce_time)") as s:
            median = reduce_time(clear, "median")
            s["note"] = f"lazy: {median.data.npartitions} chunks"
        store = out / "stac_median.zarr"
        with steps.step(f"compute and write {store.name} (write_zarr)") as s:
            compute(write_zarr(median, store, compute=False, mode="w"), progress=True)
            s["bytes"] = args.size * args.size * 2 * len(items) * 5 // 4  # B04 plus the quarter-size SCL
        with steps.step("PNG quicklook of the cloud-free median") as s:
            png = out / "stac_median.png"
            opts = argparse.Namespace(band="1", overview=None, time=0, cmap="gray", aws_unsigned=False, aws_region=None)
            (w, h), _, _ = quicklook.draw(str(store), str(png), opts, heading="cloud-free median (read_stac + mask)")
            s["note"] = f"{png.name} ({w} x {h})"
    if not store.exists():
        raise PyrError(f"{str(store)!r} was not written.")
    print(f"done in {steps.elapsed():.1f} s: outputs in {out}: stac_median.zarr, stac_median.png")
    return 0
