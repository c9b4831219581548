"""The thin currying layer over plain, typed implementations (toolz.curry)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import toolz

__all__ = ["curried"]


def curried(func: Callable[..., Any]) -> Any:
    """Curry ``func`` with :func:`toolz.curry` (data first, options keyword-only).

    Typed as ``Any`` on purpose: a partial call such as ``rescale(scale=1e-4)``
    is valid at run time, and a precise signature would make it a type error.
    """
    return toolz.curry(func)
