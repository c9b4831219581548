"""``compute``: run a lazy Raster, Cube or Delayed with dask's current scheduler.

A lazy ``Raster``/``Cube`` is assembled block by block into one numpy array
(:mod:`pyr._assemble`), so the calling process holds the result and a few
blocks, on every scheduler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, overload

import attrs

from pyr._assemble import assemble, run
from pyr._curry import _Curried
from pyr._lazy import is_lazy
from pyr.cube import Cube
from pyr.raster import Raster

if TYPE_CHECKING:
    from collections.abc import Callable

    from dask.delayed import Delayed

__all__ = ["ComputeStep", "compute"]


class ComputeStep(Protocol):
    """``compute`` with its options given: a ``Raster`` gives a ``Raster``, a ``Cube`` a ``Cube``."""

    @overload
    def __call__(self, obj: Raster, /) -> Raster: ...
    @overload
    def __call__(self, obj: Cube, /) -> Cube: ...
    @overload
    def __call__(self, obj: object, /) -> Any: ...


class _Compute(Protocol):
    """The static type of :func:`compute`, curried."""

    @overload
    def __call__(self, obj: Raster, /, *, progress: bool = ...) -> Raster: ...
    @overload
    def __call__(self, obj: Cube, /, *, progress: bool = ...) -> Cube: ...
    @overload
    def __call__(self, obj: object, /, *, progress: bool = ...) -> Any: ...
    @overload
    def __call__(self, *, progress: bool = ...) -> ComputeStep: ...


def _curried_compute(func: Callable[..., Any]) -> _Compute:
    curry: _Compute = _Curried(func)
    return curry


@_curried_compute
def compute(obj: Raster | Cube | Delayed, *, progress: bool = False) -> Any:
    """Compute a lazy ``Raster``/``Cube`` (to an eager one) or a ``Delayed`` (to its value).

    Runs on dask's current scheduler: the threads, processes or synchronous
    scheduler, or the active ``distributed`` client. Eager inputs are returned
    as they are. A lazy ``Raster``/``Cube`` is copied into one numpy array
    block by block as the blocks are computed, so the calling process holds
    about the result and a few blocks (never every block beside the result).

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
        return attrs.evolve(obj, data=assemble(obj.data, progress))
    return run(obj, progress)
