"""``reduce_time`` (placeholder until the cube work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["reduce_time"]


def reduce_time(cube: Any, how: Any = "mean") -> Any:
    """Not built yet."""
    raise NotImplementedError("reduce_time is not built yet")
