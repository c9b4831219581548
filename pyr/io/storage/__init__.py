"""Where outputs live: :func:`storage_of` turns a path, URL or zarr store into a :class:`Storage`."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pyr.errors import InvalidArgument
from pyr.io.storage.base import ROOT_METADATA, Storage, owner_alive, owner_tag
from pyr.io.storage.local import LocalStorage
from pyr.io.storage.objectstore import FsspecStorage
from pyr.io.storage.zarrstore import ZarrStoreStorage

__all__ = [
    "ROOT_METADATA",
    "FsspecStorage",
    "LocalStorage",
    "Storage",
    "ZarrStoreStorage",
    "check_local_path",
    "owner_alive",
    "owner_tag",
    "storage_of",
]


def storage_of(store: Any, storage_options: Mapping[str, Any] | None, *, argument: str = "store") -> Storage:
    """The :class:`Storage` of ``store`` (a path, an fsspec URL or a zarr store object), checked.

    Raises :class:`InvalidArgument` naming ``argument`` for anything else,
    and for ``storage_options`` given with a zarr store object.
    """
    if isinstance(store, Storage):
        return store
    if isinstance(store, str | os.PathLike):
        text = os.fspath(store)
        if not isinstance(text, str):
            raise InvalidArgument(f"{argument}={store!r}: expected a path as text, not bytes.")
        if text.startswith("file://"):
            text = text[len("file://") :]
        if "://" in text:
            return FsspecStorage(text, tuple(sorted((storage_options or {}).items())))
        return LocalStorage(check_local_path(text, argument))
    if _is_zarr_store(store):
        if storage_options:
            raise InvalidArgument("storage_options only apply when the store is a path or URL.")
        return ZarrStoreStorage(store)
    raise InvalidArgument(
        f"{argument}={store!r}: expected a path, an fsspec URL (s3://, memory://, ...) or a zarr store object, "
        f"not {type(store).__name__}."
    )


def _is_zarr_store(store: Any) -> bool:
    if store is None or isinstance(store, bool | int | float | bytes):
        return False
    from pyr._imports import ensure

    ensure("zarr")
    from zarr.abc.store import Store

    return isinstance(store, Store)


def check_local_path(text: str, argument: str = "store") -> str:
    """The absolute form of the store path ``text``; refuses a place a store must never replace.

    Refused (:class:`InvalidArgument`, before anything is touched): an empty
    path, a filesystem root, the home directory, and the current directory
    or any of its parents (``"."``, ``".."``, ...).
    """
    if not text.strip():
        raise InvalidArgument(f"{argument}={text!r}: an empty path; give the store's directory.")
    path = os.path.realpath(os.path.abspath(text))
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    why = None
    if os.path.dirname(path) == path:
        why = "a filesystem root"
    elif path == home:
        why = "the home directory"
    elif cwd == path or cwd.startswith(path.rstrip(os.sep) + os.sep):
        why = "the current directory or one of its parents"
    if why:
        raise InvalidArgument(f"{argument}={text!r} is {why}; a store there would replace it. Name a new directory.")
    return os.path.abspath(text)
