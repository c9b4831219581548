"""Local staging folders that name their owner, removed once it is dead.

A staging folder's name ends with the owner tag of the process that made
the write (``...<host>-<pid>.pyr-tmp``, :func:`pyr.io.storage.owner_tag`),
and whether that writer still runs is asked of
:func:`pyr.io.storage.owner_alive`: the one liveness rule of every pyr
writer (the Zarr protocols name their staging places and claims the same
way). :func:`reap` removes the folders whose owner is dead; a live owner's
folder is never removed by another process, whatever its tasks are doing.

Within the owner process, :func:`hold` counts the users of a folder (two
writes of the same data in two threads share one): the folder is created by
the first and removed by the last that asks for it. Each run assembles its
file in a folder of its own inside (:func:`run_folder`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from pyr._faults import step
from pyr.io.storage import owner_alive

__all__ = ["folder", "hold", "reap", "run_folder"]

_LOCK = threading.Lock()
_USERS: dict[Path, int] = {}


@contextlib.contextmanager
def hold(folder: Path, *, remove: str | None) -> Iterator[Path]:
    """Use ``folder`` (created if missing) while the block runs.

    With ``remove`` (the name of a :func:`pyr._faults.step`), the folder is
    removed on the way out, unless another user in this process holds it.
    """
    with _LOCK:
        folder.mkdir(exist_ok=True)
        _USERS[folder] = _USERS.get(folder, 0) + 1
    try:
        yield folder
    finally:
        with _LOCK:
            left = _USERS.pop(folder) - 1
            if left:
                _USERS[folder] = left
            elif remove is not None:
                step(remove)
                shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def run_folder(staging: Path, *, drop: str) -> Iterator[Path]:
    """A folder inside ``staging`` that only this run writes its whole files into; removed at the end.

    Two writes of the same raster to the same path in one process share
    ``staging``; their chunk files are the same bytes, but the whole files
    they assemble must not be: each run writes its own. ``drop`` names the
    :func:`pyr._faults.step` of the removal.
    """
    work = staging / f"run-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    try:
        yield work
    finally:
        step(drop)
        shutil.rmtree(work, ignore_errors=True)


def folder(path: Path, token: str, owner: str) -> Path:
    """The staging folder of a write of ``path``: ``.<name>.<token>.<owner>.pyr-tmp`` beside it."""
    return path.with_name(f".{path.name}.{token[:16]}.{owner}.pyr-tmp")


def reap(path: Path, step_name: str) -> None:
    """Remove the staging folders of writes of ``path`` (:func:`folder`) whose owner is dead."""
    owner = r"(?P<owner>[0-9a-f]{8}-[0-9]+)"
    pattern = re.compile(re.escape(f".{path.name}.") + r"[0-9a-f]{16}\." + owner + re.escape(".pyr-tmp"))
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_dir(follow_symlinks=False) or owner_alive(match["owner"]):
            continue
        step(step_name)
        shutil.rmtree(entry.path, ignore_errors=True)
