"""Appending dates to a cube store (placeholder until the cube work lands)."""

from __future__ import annotations

from typing import Any

__all__ = ["append_graph"]


def append_graph(obj: Any, target: Any, *, name: str, compute: bool) -> Any:
    """Append later dates of a cube to an existing cube store."""
    raise NotImplementedError("mode='a' is not built yet")
