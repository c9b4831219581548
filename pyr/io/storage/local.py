"""A store in a local directory: atomic puts (temporary file, then rename) and an atomic publish.

Publishing renames the staged directory into place with Linux's
``renameat2``: ``RENAME_NOREPLACE`` for a new store (of two, one fails),
``RENAME_EXCHANGE`` to replace one (the old store and the new swap places in
one step, so the path always holds a complete store). Where ``renameat2`` is
missing (another OS, an old C library, a filesystem without it) a plain
rename does it: a new store is then moved over the empty directory claimed
for it, and a replaced one is moved aside first (a moment with no store at
the path; docs/design.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import os
import shutil
import uuid
from typing import Any, ClassVar

import attrs

from pyr.io.storage.base import Storage

__all__ = ["LocalStorage", "rename_exchange", "rename_noreplace"]

_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2() -> Any:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _renameat2()


def _rename2(src: str, dst: str, flags: int) -> bool:
    """``renameat2(src, dst, flags)``; ``False`` when the system cannot (then the caller falls back)."""
    if _RENAMEAT2 is None:
        return False
    if _RENAMEAT2(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), dst)


def rename_noreplace(src: str, dst: str) -> bool:
    """Move ``src`` to ``dst`` only if nothing is at ``dst``; whether it moved."""
    try:
        if _rename2(src, dst, _RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    try:  # fallback: claim dst as an empty directory, then rename over it
        os.mkdir(dst)
    except FileExistsError:
        return False
    os.rename(src, dst)
    return True


def rename_exchange(src: str, dst: str) -> None:
    """Swap ``src`` and ``dst`` (both exist); the fallback moves ``dst`` aside first, then moves ``src`` in."""
    if _rename2(src, dst, _RENAME_EXCHANGE):
        return
    aside = f"{src}.{uuid.uuid4().hex[:8]}"
    os.rename(dst, aside)
    os.rename(src, dst)
    os.rename(aside, src)


@attrs.frozen(repr=False)
class LocalStorage(Storage):
    """A store in the local directory ``path`` (absolute)."""

    path: str

    atomic_publish: ClassVar[bool] = True
    atomic_claim: ClassVar[bool] = True

    @property
    def url(self) -> str:
        """See :meth:`Storage.url`."""
        return self.path

    @property
    def local_path(self) -> str | None:
        """See :meth:`Storage.local_path`."""
        return self.path

    @property
    def name(self) -> str:
        """See :meth:`Storage.name`."""
        return os.path.basename(self.path)

    def _file(self, key: str) -> str:
        return os.path.join(self.path, *key.split("/")) if key else self.path

    def get(self, key: str) -> bytes | None:
        """See :meth:`Storage.get`."""
        try:
            with open(self._file(key), "rb") as f:
                return f.read()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def put(self, key: str, data: bytes) -> None:
        """See :meth:`Storage.put`."""
        put_file(self._file(key), data)

    def claim(self, key: str, data: bytes) -> bool:
        """See :meth:`Storage.claim`."""
        path = self._file(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return True

    def remove(self, key: str = "") -> None:
        """See :meth:`Storage.remove`."""
        path = self._file(key)
        if os.path.isdir(path) and not os.path.islink(path):
            # renamed to a name of its own first (atomic), so the removal never reaches into
            # a directory another write moved to this path meanwhile
            trash = f"{path}.pyr-trash-{uuid.uuid4().hex[:12]}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:
                return
            shutil.rmtree(trash, ignore_errors=True)
            return
        with contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.remove(path)

    def list_keys(self) -> list[str]:
        """See :meth:`Storage.list_keys`."""
        out = []
        for base, _, files in os.walk(self.path):
            rel = os.path.relpath(base, self.path)
            for f in files:
                out.append(f if rel == "." else f"{rel.replace(os.sep, '/')}/{f}")
        return out

    def exists(self) -> bool:
        """See :meth:`Storage.exists`."""
        return os.path.lexists(self.path)

    def beside(self, suffix: str) -> LocalStorage:
        """See :meth:`Storage.beside`."""
        return LocalStorage(self.path + suffix)

    def besides(self, suffix: str) -> list[Storage]:
        """See :meth:`Storage.besides`."""
        return [LocalStorage(p) for p in sorted(glob.glob(glob.escape(self.path + suffix) + "*"))]

    def publish(self, staged: Storage, *, replace: bool) -> bool:
        """See :meth:`Storage.publish`."""
        assert isinstance(staged, LocalStorage)
        if not replace:
            return rename_noreplace(staged.path, self.path)
        if not rename_noreplace(staged.path, self.path):
            rename_exchange(staged.path, self.path)
        return True

    def zarr_store(self, *, read_only: bool = False) -> Any:
        """See :meth:`Storage.zarr_store`."""
        from zarr.storage import LocalStore

        return LocalStore(self.path, read_only=read_only)

    def __dask_tokenize__(self) -> object:
        return ("pyr.LocalStorage", self.path)


def put_file(path: str, data: Any) -> None:
    """Write ``data`` to ``path`` whole or not at all (a temporary name, then a rename)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{uuid.uuid4().hex}.partial"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
