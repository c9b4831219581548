"""``compute``: run a lazy Raster, Cube or Delayed with dask's current scheduler."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import attrs

from pyr.cube import Cube
from pyr.raster import Raster, is_dask

__all__ = ["compute"]


def _progress_context() -> Any:
    try:
        from distributed import get_client

        get_client()
    except (ImportError, ValueError):
        from dask.diagnostics.progress import ProgressBar

        return ProgressBar(minimum=0.5)
    return None


def compute(obj: Any, *, progress: bool = False) -> Any:
    """Compute a lazy ``Raster``/``Cube`` (to an eager one) or a ``Delayed`` (to its value).

    Eager inputs are returned as they are. ``progress=True`` shows dask's
    progress bar locally, or the distributed client's progress on a cluster.
    """
    if isinstance(obj, Raster | Cube):
        if not is_dask(obj.data):
            return obj
        target = obj.data
    else:
        target = obj
    from dask.base import compute as dask_compute

    ctx = _progress_context() if progress else nullcontext()
    if ctx is None:  # a distributed client is active
        from distributed import get_client
        from distributed import progress as dprogress

        future = get_client().compute(target)
        dprogress(future)
        value = future.result()
    else:
        with ctx:
            (value,) = dask_compute(target)
    if isinstance(obj, Raster | Cube):
        return attrs.evolve(obj, data=value)
    return value
