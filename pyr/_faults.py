"""Named steps of pyr's write protocols, so tests can stop a process at each one.

Every step of a write, replace or append that changes storage calls
:func:`step` with a stable name (``"zarr.write:publish"``, ...) just before it
acts. Outside tests this costs one dictionary lookup. Two environment variables,
read at each call, turn it into a test seam:

``PYR_FAULT_TRACE=<file>``
    append each step's name (one per line) to ``<file>``: a run of the whole
    protocol lists its steps in order.
``PYR_FAULT_AT=<name>`` or ``<name>#<k>``
    end the process at once (``os._exit``, no cleanup, as a kill would) when the
    step ``<name>`` is reached (its ``k``-th time in this process, 1-based; the
    first by default).

The crash tests (``tests/crash/``) run a write in a child process once with
``PYR_FAULT_TRACE`` to learn its steps, then once per step with ``PYR_FAULT_AT``,
and check what every reader sees afterwards.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

__all__ = ["EXIT_CODE", "step"]

#: The exit status of a process stopped by ``PYR_FAULT_AT``.
EXIT_CODE = 77

_seen: Counter[str] = Counter()
_lock = threading.Lock()


def step(name: str) -> None:
    """Mark that the protocol step ``name`` is about to act (see the module docstring)."""
    trace = os.environ.get("PYR_FAULT_TRACE")
    at = os.environ.get("PYR_FAULT_AT")
    if not trace and not at:
        return
    with _lock:
        _seen[name] += 1
        count = _seen[name]
        if trace:
            with open(trace, "a", encoding="utf-8") as f:
                f.write(f"{name}\n")
    if at:
        target, _, k = at.partition("#")
        if target == name and count == (int(k) if k else 1):
            os._exit(EXIT_CODE)
