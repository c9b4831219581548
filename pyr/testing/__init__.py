"""Test helpers for pyr and for code built on it: value assertions and hypothesis strategies.

``pyr.testing.strategies`` needs ``hypothesis`` (imported only there).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from pyr._imports import ensure
from pyr._lazy import to_numpy
from pyr._nodata import same_nodata
from pyr.cube import Cube
from pyr.raster import Raster

__all__ = ["CountingScheduler", "assert_raster_equal", "raise_if_dask_computes"]


def assert_raster_equal(
    actual: Raster | Cube,
    expected: Raster | Cube,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    check_dtype: bool = True,
) -> None:
    """Assert two rasters (or cubes) have the same grid, metadata and values.

    Lazy data is computed. NaN equals NaN, and NaN nodata equals NaN nodata.
    ``rtol``/``atol`` allow float tolerance (for reductions); the default is exact.
    """
    assert type(actual) is type(expected), f"type {type(actual).__name__} != {type(expected).__name__}"
    assert actual.geobox == expected.geobox, f"geobox {actual.geobox!r} != {expected.geobox!r}"
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    if check_dtype:
        assert actual.dtype == expected.dtype, f"dtype {actual.dtype} != {expected.dtype}"
    assert same_nodata(actual.nodata, expected.nodata), f"nodata {actual.nodata!r} != {expected.nodata!r}"
    assert actual.bands == expected.bands, f"bands {actual.bands} != {expected.bands}"
    assert actual.scales == expected.scales, f"scales {actual.scales} != {expected.scales}"
    assert actual.offsets == expected.offsets, f"offsets {actual.offsets} != {expected.offsets}"
    if isinstance(actual, Cube) and isinstance(expected, Cube):
        if actual.times is None or expected.times is None:
            assert actual.times is None, "times: expected None"
            assert expected.times is None, "times: got None"
        else:
            np.testing.assert_array_equal(actual.times, expected.times, err_msg="times differ")
    a, e = to_numpy(actual.data), to_numpy(expected.data)
    if rtol or atol:
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(a, e, strict=False)


class CountingScheduler:
    """A dask scheduler that counts computes and fails after ``max_computes`` of them.

    It runs graphs with dask's synchronous scheduler; :func:`raise_if_dask_computes`
    installs one.
    """

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Count this compute, fail past the limit, else run it synchronously."""
        ensure("dask")
        from dask.local import get_sync

        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many dask computations were triggered: {self.total_computes} (allowed {self.max_computes})."
            )
        return get_sync(dsk, keys, **kwargs)


@contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Fail if code inside the block computes dask graphs more than ``max_computes`` times.

    The way to prove an operation is lazy (as xarray's test helper of that name).

    Examples
    --------
    >>> import dask.array as da
    >>> with raise_if_dask_computes():
    ...     x = da.ones(4) + 1  # building a graph computes nothing
    """
    ensure("dask")
    import dask

    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler
