"""``write_tiff`` (placeholder)."""

from __future__ import annotations

from typing import Any

__all__ = ["write_tiff"]


def write_tiff(raster: Any, path: Any, **kwargs: Any) -> Any:
    """Not built yet."""
    raise NotImplementedError("write_tiff is not built yet")
