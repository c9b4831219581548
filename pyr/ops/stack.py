"""``stack`` (placeholder until the cube work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["stack"]


def stack(rasters: Any, *, times: Any = None) -> Any:
    """Not built yet."""
    raise NotImplementedError("stack is not built yet")
