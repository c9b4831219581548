"""Silence a known warning around a call, from any number of threads at once.

``warnings.catch_warnings`` saves and restores the process-wide filter list,
so two threads inside it at once restore each other's state: a filter leaks
out for good, or another thread's call warns after all (seen with pyr's
dataset opens in threads: after concurrent reads the process kept an
``ignore NotGeoreferencedWarning`` filter). :func:`quiet` instead installs
one filter when the first thread enters and removes it when the last one
leaves; while any thread is inside, the warning is ignored in the whole
process (the only way the warnings module allows).

>>> import warnings
>>> n = len(warnings.filters)
>>> with quiet(UserWarning, "pyr doctest"):
...     warnings.warn("pyr doctest: silenced", UserWarning)
>>> len(warnings.filters) == n
True
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["quiet"]

_lock = threading.Lock()
_users: dict[tuple[type[Warning], str], int] = {}  # threads inside, by (category, message)
_added: set[tuple[type[Warning], str]] = set()  # the filters quiet() put in (not the user's own)


@contextmanager
def quiet(category: type[Warning], message: str = "") -> Iterator[None]:
    """Ignore warnings of ``category`` whose text starts with ``message`` while inside."""
    key = (category, message)
    with _lock:
        if not _users.get(key) and _find(category, message) is None:  # the user may ignore it already
            warnings.filterwarnings("ignore", message=message, category=category)
            _added.add(key)
        _users[key] = _users.get(key, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _users[key] -= 1
            if not _users[key]:
                del _users[key]
                if key in _added:
                    _added.discard(key)
                    _remove(category, message)


def _find(category: type[Warning], message: str) -> int | None:
    """Where the filter ``quiet(category, message)`` puts in is in ``warnings.filters``, if there."""
    for i, (action, msg, cat, module, lineno) in enumerate(warnings.filters):
        pattern = getattr(msg, "pattern", msg) or ""
        if action == "ignore" and cat is category and pattern == message and module is None and lineno == 0:
            return i
    return None


def _remove(category: type[Warning], message: str) -> None:
    i = _find(category, message)
    if i is not None:
        filters: list[Any] = warnings.filters  # type: ignore[assignment]  # typeshed: a Sequence; it is a list
        del filters[i]
        mutated = getattr(warnings, "_filters_mutated", None)  # invalidate the "already seen" caches
        if mutated is not None:
            mutated()
