"""First imports of dask and zarr that are safe when threads make them at once.

pyr imports dask and zarr lazily (``import pyr`` stays light), inside the
functions that need them. CPython's import system fails when one thread
imports a package while another imports one of its submodules: each waits
for a module the other holds, the deadlock detector hands one of them a
partially initialized module, and the call raises ``ImportError: cannot
import name ... from partially initialized module`` (seen with dask, dask.array
and zarr when several threads make their first ``pyr.read`` calls at once;
tests/test_threads_first_use.py). So before any such import, pyr calls :func:`ensure` with
the package it belongs to; the first call imports the whole package in one
thread, under one lock, and later calls cost a set lookup.

>>> ensure("dask.array")
>>> import sys
>>> "dask.array" in sys.modules
True
"""

from __future__ import annotations

import importlib
import os
import threading

__all__ = ["ensure"]

_done: set[str] = set()
_lock = threading.RLock()


def ensure(*packages: str) -> None:
    """Import each of ``packages`` (whole) once per process, one thread at a time."""
    for name in packages:
        if name not in _done:
            _load(name)


def _load(name: str) -> None:
    with _lock:
        if name not in _done:
            importlib.import_module(name)
            _done.add(name)


def _reset_lock() -> None:  # a fork while another thread held the lock must not leave it held
    global _lock
    _lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock)
