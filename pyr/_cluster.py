"""What dask would run a graph on: the active ``distributed`` client, if any, and its size."""

from __future__ import annotations

import sys
from typing import Any

from pyr._imports import ensure

__all__ = ["active_client", "cluster_threads"]


def active_client(collection: Any) -> Any:
    """The distributed ``Client`` dask would run ``collection`` on, or ``None`` for a local scheduler.

    Never imports ``distributed``: without it imported no client can exist.
    """
    if "distributed" not in sys.modules:
        return None
    ensure("dask")
    from dask.base import get_scheduler

    try:
        scheduler = get_scheduler(collections=[collection])
    except RuntimeError:  # an asynchronous client: dask cannot run on it from synchronous code
        return None
    owner = getattr(scheduler, "__self__", None)
    from distributed import Client

    return owner if isinstance(owner, Client) else None


def cluster_threads(collection: Any) -> int | None:
    """The worker threads of the cluster ``collection`` would run on; ``None`` off a cluster.

    Also ``None`` for an asynchronous client, which :func:`active_client` does
    not return (dask cannot run a graph on it from synchronous code).
    """
    client = active_client(collection)
    if client is None:
        return None
    return int(sum(client.nthreads().values()))
