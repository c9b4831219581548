"""xarray interop (placeholder)."""

from __future__ import annotations

from typing import Any

__all__ = ["from_xarray", "to_xarray"]


def to_xarray(obj: Any) -> Any:
    """Not built yet."""
    raise NotImplementedError("to_xarray is not built yet")


def from_xarray(da: Any) -> Any:
    """Not built yet."""
    raise NotImplementedError("from_xarray is not built yet")
