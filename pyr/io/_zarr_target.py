"""Where a Zarr store lives (:class:`Target`) and per-thread cached array handles.

Tasks carry a picklable ``Target`` (URL + storage options), never an open
store; each process and thread opens the arrays it writes or reads once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from pyr._cache import ThreadCache
from pyr._imports import ensure
from pyr._malloc import tune_once as tune_malloc_once
from pyr.errors import InvalidArgument
from pyr.io import _zarr_direct
from pyr.io.sources import display_name

__all__ = ["Target", "cached_array", "flatten_keys", "read_chunk"]

_WRITE_ARRAYS = ThreadCache(maxsize=32)
_READ_ARRAYS = ThreadCache(maxsize=32)


@attrs.frozen(repr=False)
class Target:
    """Where a store lives: a path or fsspec URL plus storage options (picklable)."""

    url: str
    # compared and hashed by repr: options may nest dicts (s3fs's client_kwargs)
    storage_options: tuple[tuple[str, Any], ...] = attrs.field(default=(), eq=repr)
    store: Any = attrs.field(default=None, eq=False)  # an in-process zarr store object
    # with ``store``: a prefix inside it where the group lives ("" = the store's root); used
    # to stage a replacement (mode="w") beside the old store's objects
    path: str = ""

    @classmethod
    def of(cls, store: Any, storage_options: Mapping[str, Any] | None) -> Target:
        """Normalise ``store`` (path, URL or zarr store) and its options."""
        if isinstance(store, str | os.PathLike):
            url = os.fspath(store)
            if "://" not in url:
                url = os.path.abspath(url)
            return cls(url, tuple(sorted((storage_options or {}).items())))
        if storage_options:
            raise InvalidArgument("storage_options only apply when the store is a path or URL.")
        return cls(f"<{type(store).__name__}>", (), store)

    @property
    def is_local(self) -> bool:
        """Whether the target is a local directory."""
        return self.store is None and "://" not in self.url

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """A zarr store object for this target."""
        ensure("zarr")
        if self.store is not None:
            if self.path:
                from zarr.storage import StorePath

                return StorePath(self.store, self.path)
            return self.store
        if self.is_local:
            from zarr.storage import LocalStore

            return LocalStore(self.url, read_only=read_only)
        from zarr.storage import FsspecStore

        return FsspecStore.from_url(self.url, storage_options=dict(self.storage_options), read_only=read_only)

    def exists(self) -> bool:
        """Whether anything is stored at the target."""
        if self.store is not None:
            ensure("zarr")
            import zarr

            try:
                zarr.open_group(self.store, mode="r")
            except Exception:
                return False
            return True
        if self.is_local:
            return os.path.exists(self.url)
        fs, path = self.fs()
        return bool(fs.exists(path)) and bool(fs.ls(path)) if fs.isdir(path) else bool(fs.exists(path))

    def fs(self) -> tuple[Any, str]:
        """The fsspec filesystem of a URL target and the store's path in it (no trailing slash)."""
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url, **dict(self.storage_options))
        return fs, str(path).rstrip("/")

    def __repr__(self) -> str:  # storage options may hold credentials: never shown
        return f"Target({display_name(self.url)!r})"

    def __dask_tokenize__(self) -> object:
        store = id(self.store) if self.store is not None else None
        return ("pyr.Target", self.url, repr(self.storage_options), store, self.path)


def cached_array(target: Target, name: str, fingerprint: str) -> Any:
    """The calling thread's handle on the data array (opened once per process, thread and write).

    ``fingerprint`` (the write graph's name) keys the cache, so a handle opened
    for an earlier write is never reused after ``mode="w"`` replaced the array.
    """
    ensure("zarr")
    import zarr

    return _WRITE_ARRAYS.get(
        (target, name, fingerprint), lambda: zarr.open_array(target.zarr_store(), path=name, mode="r+")
    )


def read_chunk(target: Target, name: str, region: tuple[slice, ...], fingerprint: str = "") -> np.ndarray:
    """Read one region of the data array (a task of a lazy ``read_zarr``).

    ``fingerprint`` (a token of the array's metadata) keys
    the handle cache, so a handle opened before the array was resized or
    replaced (``mode="a"``/``"w"``) is never reused with stale metadata.
    """
    tune_malloc_once()
    if target.is_local:
        block = _zarr_direct.read_region(target.url, name, region, fingerprint)
        if block is not None:
            return block
    ensure("zarr")
    import zarr

    arr = _READ_ARRAYS.get(
        (target, name, fingerprint),
        lambda: zarr.open_array(target.zarr_store(read_only=True), path=name, mode="r"),
    )
    return np.asarray(arr[region])


def flatten_keys(keys: Any) -> list[Any]:
    if isinstance(keys, list):
        return [k for sub in keys for k in flatten_keys(sub)]
    return [keys]
