"""The errors pyr raises.

Every error is a :class:`PyrError`; each concrete error also subclasses the
builtin it refines (``ReadError`` is an ``OSError``, ``InvalidArgument`` a
``ValueError``) so that code written against the builtins keeps working.
Messages name the file, URL or argument at fault.
"""

from __future__ import annotations

__all__ = [
    "GridMismatch",
    "IncompleteStore",
    "InvalidArgument",
    "PyrError",
    "ReadError",
    "StoreExists",
    "WriteError",
]


class PyrError(Exception):
    """Base class of every error raised by pyr."""


class InvalidArgument(PyrError, ValueError):
    """An argument (or a value being constructed) is not valid."""


class ReadError(PyrError, OSError):
    """A source is missing, unreadable, truncated or not a raster."""


class WriteError(PyrError, OSError):
    """Writing an output failed; nothing that looks complete was left."""


class GridMismatch(PyrError, ValueError):
    """Inputs that must share a grid, dtype, nodata or band set do not."""


class StoreExists(PyrError, FileExistsError):
    """The output store exists and the mode forbids replacing it."""


class IncompleteStore(PyrError, OSError):
    """A store was not marked complete: its writer failed or is still running."""
