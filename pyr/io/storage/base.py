"""The storage layer under pyr's writers: one small protocol, one module per backend.

A :class:`Storage` is where one store lives (a local directory, a prefix of
an fsspec filesystem, a prefix inside a zarr store object). It is a small,
picklable value (tasks carry it, never an open handle) offering the few
operations the write protocols (``pyr.io.zarr.protocol``) need, each on keys
relative to the store (``"band_data/.zarray"``; ``""`` is the place itself):
:meth:`~Storage.get`, :meth:`~Storage.put` (whole or not at all where the
backend can), :meth:`~Storage.claim` (create only if absent),
:meth:`~Storage.remove`, :meth:`~Storage.list_keys`, the places beside it
(:meth:`~Storage.beside`, for staging and locks) and :meth:`~Storage.publish`
(move a staged store into place).

Each backend declares what it guarantees (as zarr-python's ``Store`` declares
``supports_writes`` and the like), and the protocols choose their steps by
those declarations, never by the kind of backend:

``atomic_publish``
    :meth:`~Storage.publish` swaps a whole staged store into place in one
    step (a local rename); else it copies object by object, root metadata last.
``atomic_claim``
    :meth:`~Storage.claim` is atomic: of two claims of one key, one fails.
"""

from __future__ import annotations

import abc
import os
import socket
import zlib
from typing import Any, ClassVar

__all__ = ["ROOT_METADATA", "Storage", "owner_alive", "owner_tag"]

#: A Zarr group's own metadata objects: a reader opens a group only through one of them,
#: so the protocols write them last (and a copy puts them last).
ROOT_METADATA = (".zattrs", ".zgroup", ".zmetadata", "zarr.json")


class Storage(abc.ABC):
    """Where one store lives, and the operations the write protocols need (see the module docstring)."""

    #: ``publish`` swaps a whole staged store into place in one atomic step.
    atomic_publish: ClassVar[bool] = False
    #: ``claim`` is atomic (two claims of one key: one of them fails).
    atomic_claim: ClassVar[bool] = False

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The place, as shown in messages (no credentials)."""

    @property
    def local_path(self) -> str | None:
        """The local directory of the store, when it is one (chunk I/O then bypasses zarr-python)."""
        return None

    @abc.abstractmethod
    def get(self, key: str) -> bytes | None:
        """The object at ``key``, or ``None``."""

    @abc.abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write the object at ``key`` (whole or not at all where the backend can)."""

    @abc.abstractmethod
    def claim(self, key: str, data: bytes) -> bool:
        """Create the object at ``key`` only if there is none; whether it was created."""

    @abc.abstractmethod
    def remove(self, key: str = "") -> None:
        """Remove ``key`` and everything under it (``""``: the whole store); nothing there is fine."""

    @abc.abstractmethod
    def list_keys(self) -> list[str]:
        """Every object key under the store."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """Whether anything is stored at this place."""

    @abc.abstractmethod
    def beside(self, suffix: str) -> Storage:
        """The place named like this one plus ``suffix`` (a staging store, a lock)."""

    @abc.abstractmethod
    def besides(self, suffix: str) -> list[Storage]:
        """The places that exist named like this one plus ``suffix`` plus anything."""

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """The last part of this place's name (``besides`` finds places by it)."""

    @abc.abstractmethod
    def zarr_store(self, *, read_only: bool = False) -> Any:
        """A zarr-python store object for this place."""

    def has_group(self) -> bool:
        """Whether a Zarr group's root metadata is here (readers open a store only through it)."""
        return any(self.get(k) is not None for k in (".zgroup", ".zmetadata", "zarr.json"))

    def copy_from(self, other: Storage, keys: list[str]) -> None:
        """Copy the objects ``keys`` of ``other`` here, in order, each put whole."""
        for key in keys:
            data = other.get(key)
            if data is not None:
                self.put(key, data)

    def publish(self, staged: Storage, *, replace: bool) -> bool:
        """Move the complete store at ``staged`` here in one step (backends with ``atomic_publish``).

        ``replace=False`` moves it only if nothing is here and returns whether
        it did; ``replace=True`` exchanges the two, so the old store ends at
        ``staged`` (for the caller to remove) and there is never a moment
        with no store here. Backends without ``atomic_publish`` cannot: the
        protocols copy object by object instead.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot publish a store in one step")

    def __repr__(self) -> str:  # options may hold credentials: never shown
        return f"{type(self).__name__}({self.url!r})"


# --- owners of staging places and claims --------------------------------------------
#
# The one answer to "may the writer that made this staging place or claim still run?",
# for every writer (write_zarr's protocols, write_tiff's staging folders) and every backend:
# the owner is named in the place's name or the claim's content, so it works where nothing
# can be locked (object stores) as well as on a local disk.


def owner_tag() -> str:
    """The owner tag of this process, ``<host hash>-<pid>``: put in the names of its staging places and claims."""
    host = zlib.crc32(socket.gethostname().encode()) & 0xFFFFFFFF
    return f"{host:08x}-{os.getpid()}"


def owner_alive(tag: str) -> bool:
    """Whether the process that made a staging place or claim tagged ``tag`` may still run.

    ``tag`` begins with an :func:`owner_tag`; anything may follow it after a
    ``-`` (a write's id). A process on this host is looked up by its pid
    (this process is alive); one on another host is taken to be alive
    (nothing here can tell), so only leftovers of this host's dead processes
    are ever removed. A pid reused since only keeps a leftover longer.
    """
    host, _, rest = tag.strip().partition("-")
    pid = rest.partition("-")[0]
    if host != owner_tag().split("-")[0] or not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: another user's process
        return True
    return True
