"""``compute``: run a lazy Raster, Cube or Delayed with dask's current scheduler."""

from __future__ import annotations

import sys
from typing import Any

import attrs

from pyr._cluster import active_client
from pyr._curry import curried
from pyr._imports import ensure
from pyr._lazy import is_lazy
from pyr.cube import Cube
from pyr.raster import Raster

__all__ = ["compute"]


def _run(target: Any, progress: bool) -> Any:
    client = active_client(target)
    if client is not None:
        future = client.compute(target)
        if progress:
            from distributed import progress as show_progress

            show_progress(future, notebook=False)  # blocks until done, drawing a text bar
        return future.result()
    ensure("dask")
    from dask.base import compute as dask_compute

    if not progress:
        (value,) = dask_compute(target)
        return value
    from dask.diagnostics.progress import ProgressBar

    with ProgressBar(minimum=0, dt=0.2, out=sys.stdout):
        (value,) = dask_compute(target)
    return value


@curried
def compute(obj: Any, *, progress: bool = False) -> Any:
    """Compute a lazy ``Raster``/``Cube`` (to an eager one) or a ``Delayed`` (to its value).

    Runs on dask's current scheduler: the threads, processes or synchronous
    scheduler, or the active ``distributed`` client. Eager inputs are returned
    as they are.

    Parameters
    ----------
    obj
        A ``Raster``, ``Cube``, dask collection or ``Delayed``.
    progress
        Show a progress bar on standard output: dask's own bar for a local
        scheduler, the distributed client's text bar on a cluster.

    Examples
    --------
    >>> import dask.array as da
    >>> from pyr import GeoBox, Raster, compute
    >>> gb = GeoBox.from_bounds((0, 0, 40, 20), 10, "EPSG:32631")
    >>> lazy = Raster(da.ones((1, 2, 4), dtype="uint8", chunks=2), gb)
    >>> compute(lazy).is_lazy
    False
    """
    if isinstance(obj, Raster | Cube):
        if not is_lazy(obj.data):
            return obj
        return attrs.evolve(obj, data=_run(obj.data, progress))
    return _run(obj, progress)
