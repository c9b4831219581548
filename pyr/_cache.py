"""A bounded cache per process and per thread, for handles that must not be shared.

Open files, GDAL datasets and zarr arrays are opened by the task that needs
them and reused by later tasks of the same thread; another thread opens its
own, and a forked child starts empty (the cache is keyed by process id).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["ThreadCache"]


class ThreadCache:
    """``get(key, open_)``: this thread's value for ``key``, opened on first use."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._local = threading.local()

    def _items(self) -> dict[Hashable, Any]:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.items = {}
            local.pid = os.getpid()
        items: dict[Hashable, Any] = local.items
        return items

    def get(self, key: Hashable, open_: Callable[[], Any]) -> Any:
        """The cached value for ``key``, or ``open_()`` stored under it (oldest evicted)."""
        items = self._items()
        if key in items:
            return items[key]
        value = items[key] = open_()
        while len(items) > self.maxsize:
            items.pop(next(iter(items)))
        return value
