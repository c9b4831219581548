"""``read_cube`` (placeholder until the cube work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["read_cube"]


def read_cube(sources: Any, **kwargs: Any) -> Any:
    """Not built yet."""
    raise NotImplementedError("read_cube is not built yet")
