"""Seconds to write a Zarr store to S3 and read it back, against moto's S3 server on loopback.

moto's standalone server runs in its own process (``python -m moto.server``),
so its work is not charged to the writer's interpreter. For each ``--side``
(a square float32 raster of random values, chunked 1024 x 1024; random
values barely compress, so every chunk is ~4 MiB on the wire), each repeat
writes with ``pyr.write_zarr(raster, "s3://...")`` on dask's threaded
scheduler (2 workers) and reads the store back (``read_zarr`` summed).
One JSON line per run::

    {"side": 1024, "chunks": 1, "repeat": 0, "write_s": ..., "read_s": ...}

Loopback S3 has no network latency, so the figures show the client-side cost
of a write (metadata objects, per-chunk encoding and hand-offs), not what a
real bucket adds.

Usage::

    python -m benchmarks.s3_write                      # sides 1024 and 4096, 4 repeats
    python -m benchmarks.s3_write --side 4096 --repeat 6
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from typing import Any

KEY_ID, SECRET = "pyr-bench-key", "pyr-bench-secret"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"moto's server did not listen on port {port} within {timeout} s")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.s3_write", description=__doc__.splitlines()[0])
    p.add_argument("--side", type=int, action="append", help="raster side in pixels (repeatable; default 1024, 4096)")
    p.add_argument("--repeat", type=int, default=4)
    args = p.parse_args(argv)

    import boto3
    import dask
    import dask.array as da
    import numpy as np

    import pyr

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port)
        endpoint = f"http://127.0.0.1:{port}"
        options: dict[str, Any] = {
            "key": KEY_ID,
            "secret": SECRET,
            "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"},
        }
        bucket = f"pyr-bench-{uuid.uuid4().hex[:8]}"
        boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET
        ).create_bucket(Bucket=bucket)
        dask.config.set(scheduler="threads", num_workers=2)
        rng = np.random.default_rng(0)
        for side in args.side or [1024, 4096]:
            values = rng.random((1, side, side), dtype="float32")
            raster = pyr.Raster(
                da.from_array(values, chunks=(1, 1024, 1024)),
                pyr.GeoBox.from_bounds((0, 0, side * 10, side * 10), 10, "EPSG:32631"),
            )
            for i in range(args.repeat):
                url = f"s3://{bucket}/side{side}-{i}.zarr"
                t0 = time.perf_counter()
                pyr.write_zarr(raster, url, storage_options=options)
                t1 = time.perf_counter()
                total = float(pyr.read_zarr(url, storage_options=options).data.sum(dtype="float64").compute())
                t2 = time.perf_counter()
                assert abs(total - float(values.sum(dtype="float64"))) < 1e-6 * max(1.0, abs(total))
                record = {
                    "side": side,
                    "chunks": raster.data.npartitions,
                    "repeat": i,
                    "write_s": round(t1 - t0, 3),
                    "read_s": round(t2 - t1, 3),
                }
                print(json.dumps(record), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
