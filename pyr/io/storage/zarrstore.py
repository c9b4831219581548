"""A store inside a zarr-python store object (``zarr.storage.MemoryStore``, ``LocalStore``, ...).

Everything goes through the store's own async API (run by zarr-python's
event loop). Places "beside" the store are prefixes inside the same store
object (``.pyr-staging-...``), which readers of the root group never list
as members (pyr writes consolidated metadata). No rename and no
conditional write: no atomic publish, no atomic claim.
"""

from __future__ import annotations

from typing import Any

import attrs

from pyr.io.storage.base import Storage

__all__ = ["ZarrStoreStorage"]


@attrs.frozen(repr=False)
class ZarrStoreStorage(Storage):
    """The prefix ``prefix`` (``""``: the root) of the zarr store object ``store``."""

    store: Any = attrs.field(eq=False)
    prefix: str = ""

    @property
    def url(self) -> str:
        """See :meth:`Storage.url`."""
        return f"<{type(self.store).__name__}>" + (f"/{self.prefix}" if self.prefix else "")

    @property
    def name(self) -> str:
        """See :meth:`Storage.name`."""
        return self.prefix

    def _key(self, key: str) -> str:
        return "/".join(p for p in (self.prefix, key) if p)

    def _run(self, coro: Any) -> Any:
        from zarr.core.sync import sync

        return sync(coro)

    def get(self, key: str) -> bytes | None:
        """See :meth:`Storage.get`."""
        from zarr.core.buffer import default_buffer_prototype

        value = self._run(self.store.get(self._key(key), prototype=default_buffer_prototype()))
        return None if value is None else bytes(value.to_bytes())

    def put(self, key: str, data: bytes) -> None:
        """See :meth:`Storage.put`."""
        from zarr.core.buffer import default_buffer_prototype

        self._run(self.store.set(self._key(key), default_buffer_prototype().buffer.from_bytes(data)))

    def claim(self, key: str, data: bytes) -> bool:
        """See :meth:`Storage.claim`."""
        if self.get(key) is not None:
            return False
        self.put(key, data)
        return True

    @property
    def can_remove(self) -> bool:
        """Whether the store object can list and delete (zarr's ``supports_listing``, ``supports_deletes``)."""
        return bool(getattr(self.store, "supports_listing", False) and getattr(self.store, "supports_deletes", False))

    def remove(self, key: str = "") -> None:
        """See :meth:`Storage.remove`."""
        full = self._key(key)

        async def go() -> None:
            if full:
                await self.store.delete(full)
            async for k in self.store.list_prefix(f"{full}/" if full else ""):
                if full or not k.startswith(".pyr-"):
                    await self.store.delete(k)

        if self.can_remove:
            self._run(go())

    def list_keys(self) -> list[str]:
        """See :meth:`Storage.list_keys`."""
        base = f"{self.prefix}/" if self.prefix else ""

        async def go() -> list[str]:
            return [k[len(base) :] async for k in self.store.list_prefix(base)]

        found: list[str] = self._run(go())
        return [k for k in found if self.prefix or not k.startswith(".pyr-")]

    def exists(self) -> bool:
        """See :meth:`Storage.exists`."""
        return bool(self.list_keys()) if self.can_remove else self.has_group()

    def beside(self, suffix: str) -> ZarrStoreStorage:
        """See :meth:`Storage.beside`."""
        return ZarrStoreStorage(self.store, self.prefix + suffix)

    def besides(self, suffix: str) -> list[Storage]:
        """See :meth:`Storage.besides`."""
        if not self.can_remove:
            return []
        start = self.beside(suffix).prefix

        async def go() -> list[str]:
            return [k async for k in self.store.list_prefix(start)]

        names = sorted({k.split("/", 1)[0] for k in self._run(go())})
        return [ZarrStoreStorage(self.store, n) for n in names]

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """See :meth:`Storage.zarr_store`."""
        if self.prefix:
            from zarr.storage import StorePath

            return StorePath(self.store, self.prefix)
        return self.store

    def __dask_tokenize__(self) -> object:
        return ("pyr.ZarrStoreStorage", id(self.store), self.prefix)
