"""A store under an fsspec URL (``s3://``, ``gs://``, ``memory://``, ...): object by object, no rename.

Each object is put whole (an object store never shows half an object).
:meth:`~FsspecStorage.claim` is a conditional write where the filesystem makes
one (s3fs: ``If-None-Match: *``) and a check, then a write, elsewhere. A
prefix cannot be renamed, so this backend has no atomic publish: the
protocols write the root metadata last instead (docs/design.md says which
promises differ).
"""

from __future__ import annotations

from typing import Any

import attrs

from pyr.io.gdal.sources import display_name
from pyr.io.storage.base import Storage

__all__ = ["FsspecStorage"]


@attrs.frozen(repr=False)
class FsspecStorage(Storage):
    """A store at the fsspec URL ``address`` with ``storage_options`` (never shown)."""

    address: str
    # compared and hashed by repr: options may nest dicts (s3fs's client_kwargs)
    storage_options: tuple[tuple[str, Any], ...] = attrs.field(default=(), eq=repr)

    @property
    def url(self) -> str:
        """See :meth:`Storage.url`."""
        return display_name(self.address)

    @property
    def name(self) -> str:
        """See :meth:`Storage.name`."""
        return self.address.rstrip("/").rsplit("/", 1)[-1]

    def fs(self) -> tuple[Any, str]:
        """The fsspec filesystem and the store's path in it (no trailing slash)."""
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.address, **dict(self.storage_options))
        return fs, str(path).rstrip("/")

    def _path(self, key: str) -> tuple[Any, str]:
        fs, root = self.fs()
        return fs, f"{root}/{key}" if key else root

    def get(self, key: str) -> bytes | None:
        """See :meth:`Storage.get`."""
        fs, path = self._path(key)
        try:
            return bytes(fs.cat_file(path))
        except (FileNotFoundError, IsADirectoryError):
            return None

    def put(self, key: str, data: bytes) -> None:
        """See :meth:`Storage.put`."""
        fs, path = self._path(key)
        fs.pipe_file(path, data)

    def put_many(self, objects: dict[str, bytes]) -> None:
        """Put several objects at once (concurrently where the filesystem can: s3fs)."""
        fs, root = self.fs()
        if objects:
            fs.pipe({f"{root}/{k}": v for k, v in objects.items()})

    def copy_from(self, other: Storage, keys: list[str]) -> None:
        """Copy objects server-side when ``other`` is on the same filesystem (S3's CopyObject)."""
        if not isinstance(other, FsspecStorage) or other.storage_options != self.storage_options or not keys:
            super().copy_from(other, keys)
            return
        fs, dst = self.fs()
        src = other.fs()[1]
        fs.copy([f"{src}/{k}" for k in keys], [f"{dst}/{k}" for k in keys])

    def claim(self, key: str, data: bytes) -> bool:
        """See :meth:`Storage.claim`."""
        fs, path = self._path(key)
        try:
            fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return False
        except TypeError:  # a pipe_file without fsspec's mode= (older or third-party filesystems)
            if fs.exists(path):
                return False
            fs.pipe_file(path, data)
        return True

    def remove(self, key: str = "") -> None:
        """See :meth:`Storage.remove`."""
        fs, path = self._path(key)
        try:
            if fs.isdir(path):
                fs.rm(path, recursive=True)
            elif fs.exists(path):
                fs.rm_file(path)
        except FileNotFoundError:
            pass
        if not key:
            fs.invalidate_cache(path)

    def list_keys(self) -> list[str]:
        """See :meth:`Storage.list_keys`."""
        fs, root = self.fs()
        if not fs.isdir(root):
            return []
        return [f[len(root) + 1 :] for f in fs.find(root) if f.startswith(root + "/")]

    def exists(self) -> bool:
        """See :meth:`Storage.exists`."""
        fs, root = self.fs()
        if fs.isdir(root):
            return bool(fs.ls(root))
        return bool(fs.exists(root))

    def beside(self, suffix: str) -> FsspecStorage:
        """See :meth:`Storage.beside`."""
        return FsspecStorage(self.address.rstrip("/") + suffix, self.storage_options)

    def besides(self, suffix: str) -> list[Storage]:
        """See :meth:`Storage.besides`."""
        fs, root = self.fs()
        parent, _, base = root.rpartition("/")
        try:
            names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(parent, detail=False)]
        except FileNotFoundError:
            return []
        return [self.beside(n[len(base) :]) for n in sorted(set(names)) if n.startswith(base + suffix)]

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """See :meth:`Storage.zarr_store`."""
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self.address, storage_options=dict(self.storage_options), read_only=read_only)

    def __dask_tokenize__(self) -> object:
        return ("pyr.FsspecStorage", self.address, repr(self.storage_options))
