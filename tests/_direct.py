"""A spy on pyr's whole-chunk Zarr path (``pyr.io.zarr.chunks``), shared by the Zarr tests."""

from __future__ import annotations

from pyr.io.zarr import chunks as _zarr_direct


def spy_direct(monkeypatch, name):
    """Record, per call of ``_zarr_direct.<name>``, whether it did the work (None/False: zarr-python did)."""
    calls = []
    real = getattr(_zarr_direct, name)

    def spy(*args):
        out = real(*args)
        calls.append(out is not None and out is not False)
        return out

    monkeypatch.setattr(_zarr_direct, name, spy)
    return calls
