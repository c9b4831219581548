"""Print, as markdown, what every reader sees when each write protocol is killed at each step.

``python -m tests.crash.report`` (from the repository root) runs every
scenario of :mod:`.scenarios` on a local disk and the Zarr ones on moto's S3
server too, and prints one table per place: kill point, what pyr, plain
xarray and GDAL saw, how the rerun went and (locally) whether the promises
held. ``--only TEXT`` keeps the scenarios whose name contains TEXT;
``--where local`` or ``--where s3`` keeps one place.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from .harness import READERS, KillResult, NoSteps, Place, Scenario, local_promise, run_scenario
from .scenarios import TIFF, ZARR

__all__ = ["main", "s3_place", "table"]


def _servers() -> Any:
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where servers.py lives
    if here not in sys.path:
        sys.path.insert(0, here)
    import servers

    return servers


def s3_place(endpoint: str, bucket: str) -> Place:
    """A bucket on the moto server, with the s3fs options and the GDAL (/vsis3/) settings that reach it."""
    srv = _servers()
    gdal = {
        "AWS_S3_ENDPOINT": endpoint,
        "AWS_HTTPS": "NO",
        "AWS_VIRTUAL_HOSTING": "FALSE",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": srv.KEY_ID,
        "AWS_SECRET_ACCESS_KEY": srv.SECRET,
        "GDAL_HTTP_MAX_RETRY": "1",
    }
    return Place(f"s3://{bucket}", srv.storage_options(endpoint), gdal, scheduler="sync")


def _short(seen: str) -> str:
    head, _, rest = seen.partition(":")
    word = head.split(" ")[0]
    if word == "fails":
        return f"fails ({rest.strip().split(':')[0]})"
    if word == "wrong":
        return f"wrong ({rest.strip().rsplit(', ', 1)[-1]})"
    return word


def _rerun(res: KillResult) -> str:
    if res.rerun_error:
        return "fails: " + res.rerun_error.split(":")[0].strip("( ")
    if set(res.rerun_seen.values()) != {"new"}:
        return "ok, but reads " + ", ".join(f"{r} {_short(s)}" for r, s in res.rerun_seen.items())
    return "ok, staging left" if res.leftovers else "ok"


def table(results: Iterable[KillResult], *, promise: bool = False) -> str:
    """A markdown table of kill results (``promise``: add whether the local promises held)."""
    head = ["protocol", "killed before", *READERS, "rerun"] + (["promises"] if promise else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for res in results:
        cells = [res.scenario, f"`{res.point}`", *(_short(res.seen[r]) if r in res.seen else "n/a" for r in READERS)]
        cells.append(_rerun(res))
        if promise:
            cells.append("kept" if not local_promise(res) else "**broken**")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _run(scenarios: Iterable[Scenario], place: Place) -> Iterator[KillResult | str]:
    for sc in scenarios:
        try:
            yield from run_scenario(sc, place)
        except NoSteps:
            yield f"{sc.name}: names no step (nothing to kill)"


def _print(title: str, rows: list[KillResult | str], *, promise: bool) -> None:
    print(f"\n### {title}\n")
    print(table([r for r in rows if isinstance(r, KillResult)], promise=promise))
    for row in rows:
        if isinstance(row, str):
            print(f"\n- {row}")


@contextmanager
def _moto() -> Iterator[str]:
    srv = _servers()
    with srv.offline_aws(), srv.moto_s3() as endpoint:
        yield endpoint


def main(argv: list[str] | None = None) -> None:
    """Run the scenarios and print the tables (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.crash.report", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="keep scenarios whose name contains this")
    parser.add_argument("--where", choices=["local", "s3", "both"], default="both")
    args = parser.parse_args(argv)
    keep = [sc for sc in (*ZARR, *TIFF) if args.only in sc.name]
    if args.where in ("local", "both"):
        with tempfile.TemporaryDirectory(prefix="pyr-crash-") as tmp:
            _print("Local disk", list(_run(keep, Place(tmp))), promise=True)
    zarr = [sc for sc in keep if sc.kind == "zarr"]
    if args.where in ("s3", "both") and zarr:
        with _moto() as endpoint:
            bucket = f"pyr-crash-{uuid.uuid4().hex[:8]}"
            _servers().s3_client(endpoint).create_bucket(Bucket=bucket)
            _print("S3 (moto)", list(_run(zarr, s3_place(endpoint, bucket))), promise=False)


if __name__ == "__main__":
    main()
