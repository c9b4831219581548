"""Staging folders that know whether a live process still uses them.

A writer holds a shared ``flock`` on ``<folder>/.pyr-live`` for as long as it
uses the folder (:func:`hold`). The kernel drops the lock when the process
ends, however it ends, so a folder whose lock can be taken exclusively has no
live user: a killed write's leftovers. :func:`reap` removes such folders
beside an output; :func:`hold` removes its own folder on the way out unless
another live writer holds it too (two writes of the same data share one).

Removal happens with the exclusive lock held, and a writer that got its
shared lock checks that the lock file is still the one at the folder's path
(a reaper may have removed the folder meanwhile), so a live writer never
loses its folder. On Windows (no ``flock``) nothing is ever reaped.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

from pyr._faults import step

_FLOCK: bool = sys.platform != "win32"
if sys.platform != "win32":
    import fcntl

__all__ = ["hold", "reap"]

LOCK = ".pyr-live"


def _same(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def _lock_shared(folder: Path) -> int | None:
    """Create ``folder`` if needed and hold a shared lock on it; the lock's fd (None without fcntl)."""
    while True:
        folder.mkdir(exist_ok=True)
        if not _FLOCK:  # pragma: no cover - not POSIX
            return None
        try:
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            continue  # removed between the mkdir and the open: start again
        try:
            fcntl.flock(fd, fcntl.LOCK_SH)
            if _same(fd, folder / LOCK):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the folder was removed while we waited for the lock: start again


def _take_if_free(folder: Path) -> int | None:
    """An exclusive lock on ``folder`` if no live process holds it (its fd), else None."""
    if not _FLOCK:  # pragma: no cover - not POSIX
        return None
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same(fd, folder / LOCK):
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def hold(folder: Path, *, remove: str | None) -> Iterator[Path]:
    """Use ``folder`` (created if missing) while the block runs, marked live.

    With ``remove`` (the name of a :func:`pyr._faults.step`), the folder is
    removed on the way out, unless another live writer holds it.
    """
    fd = _lock_shared(folder)
    try:
        yield folder
    finally:
        try:
            if remove is not None and fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only if no one else holds it
                except BlockingIOError:
                    pass
                else:
                    step(remove)
                    shutil.rmtree(folder, ignore_errors=True)
        finally:
            if fd is not None:
                os.close(fd)


def reap(parent: Path, pattern: re.Pattern[str], step_name: str) -> None:
    """Remove the folders in ``parent`` named by ``pattern`` that no live process holds."""
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        fd = _take_if_free(folder)
        if fd is None:
            continue
        try:
            step(step_name)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
