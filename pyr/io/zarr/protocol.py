"""The write (``mode="w-"``) and replace (``mode="w"``) protocols, written once against the storage layer.

Each step that changes storage is announced to :func:`pyr._faults.step` as
``zarr.<protocol>:<step>`` (``write`` for ``"w-"``, ``replace`` for ``"w"``)
just before it acts; docs/design.md tabulates what a reader sees and what a
rerun does after a crash at each one. A write is the task graph
``begin`` -> one ``chunk`` task per output chunk -> ``finish``.

Where the storage publishes atomically (a local directory), the whole store
is staged beside its place (``<store>.pyr-staging-<owner>-<id>``) and
published by one rename: a new store only if nothing is there, a
replacement by exchanging the two directories (then the old copy is
removed)::

    write:   clean, stage, chunk..., metadata, publish
    replace: clean, stage, chunk..., metadata, publish, cleanup

Elsewhere (object stores, zarr store objects) nothing can be renamed: a new
store is written in place under a claim beside it
(``<store>.pyr-write``), its root metadata last; a replacement is staged
beside the old store, then copied into place, root metadata last::

    write:   clean, claim, stage, chunk..., publish, release
    replace: clean, stage, chunk..., metadata, unpublish, remove, copy, publish, cleanup

``clean`` removes what dead runs of the same store left (staging places and
claims whose owner process, on this host, no longer runs), so a rerun after
a crash starts clean and leaves nothing behind once it has published.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any

import attrs

from pyr import _faults
from pyr.errors import StoreExists, WriteError
from pyr.io.storage import ROOT_METADATA, LocalStorage, Storage, owner_alive, owner_tag
from pyr.io.storage.zarrstore import ZarrStoreStorage
from pyr.io.zarr.layout import StoreFiles

__all__ = [
    "CLAIM",
    "RUN_MARKER",
    "STAGING",
    "WritePlan",
    "begin_write",
    "clean_leftovers",
    "finish_write",
    "plan_write",
]

#: Beside a store: ``<store>.pyr-staging-<owner>-<id>``, a store being staged.
STAGING = ".pyr-staging-"
#: Beside a store written in place: ``<store>.pyr-write``, the claim of the write creating it.
CLAIM = ".pyr-write"
#: Inside a staged store: the run that staged it (removed before it is published).
RUN_MARKER = ".pyr-run"


@attrs.frozen
class WritePlan:
    """Where one write puts its store (picklable; made when the graph is built)."""

    final: Storage  # where the store ends up
    staged: Storage  # where its chunks are written (``final`` itself for a write in place)
    protocol: str  # "write" (mode="w-") or "replace" (mode="w")
    tag: str  # the owner tag and id of this write (names its staging place and claim)
    in_place: bool = False  # no staging: the chunks go straight to ``final``

    def step(self, name: str) -> None:
        """Announce the step ``zarr.<protocol>:<name>`` (see :mod:`pyr._faults`)."""
        _faults.step(f"zarr.{self.protocol}:{name}")


def plan_write(final: Storage, mode: str) -> WritePlan:
    """The plan of a write of ``final`` with ``mode`` ``"w-"`` or ``"w"``."""
    protocol = "write" if mode == "w-" else "replace"
    tag = f"{owner_tag()}-{uuid.uuid4().hex[:8]}"
    cannot_stage = isinstance(final, ZarrStoreStorage) and not final.can_remove
    if cannot_stage or (protocol == "write" and not final.atomic_publish):
        return WritePlan(final, final, protocol, tag, in_place=True)
    return WritePlan(final, final.beside(STAGING + tag), protocol, tag)


def clean_leftovers(final: Storage) -> None:
    """Remove the staging places and claims that dead runs left beside ``final``.

    A staging place names its owner (``<store>.pyr-staging-<host>-<pid>-<id>``),
    a claim holds it (``<host>-<pid>-<id>-<run>``): :func:`owner_alive` decides.
    """
    for place in final.besides(STAGING):
        if not owner_alive(place.name[len(final.name) + len(STAGING) :]):
            place.remove()
    claim = final.beside(CLAIM)
    held = claim.get("")
    if held is not None and not owner_alive(held.decode(errors="replace")):
        if not final.has_group():  # a partial store a dead run left: never published
            final.remove()
        claim.remove()


def _exists(plan: WritePlan) -> StoreExists:
    return StoreExists(f"{plan.final.url!r} already exists (mode='w-'); pass mode='w' to replace it.")


def begin_write(plan: WritePlan, files: StoreFiles) -> str:
    """Start a write: remove dead runs' leftovers, claim (in place) or stage, write the array metadata.

    Returns this run's id, which :func:`finish_write` checks: a second
    computation of the same graph started meanwhile (same staging place)
    makes the first one fail rather than publish chunks it did not write.
    """
    run = f"{plan.tag}-{uuid.uuid4().hex[:8]}"
    plan.step("clean")
    clean_leftovers(plan.final)
    if plan.protocol == "write" and plan.final.exists():
        raise _exists(plan)
    if plan.in_place and plan.protocol == "write":
        plan.step("claim")
        if not plan.final.beside(CLAIM).claim("", run.encode()):
            raise StoreExists(
                f"{plan.final.url!r} already exists (mode='w-'): another write is creating it "
                f"(its claim: {plan.final.beside(CLAIM).url!r})."
            )
        if plan.final.exists():  # created between the check and the claim
            plan.final.beside(CLAIM).remove()
            raise _exists(plan)
    plan.step("stage")
    if not plan.in_place:
        plan.staged.remove()  # a second computation of the same graph starts it afresh
    elif plan.protocol == "replace":
        for key in ROOT_METADATA:  # a store object that cannot stage: replaced in place, unpublished first
            plan.final.remove(key)
        plan.final.remove()
    try:
        for key, data in files.arrays:
            plan.staged.put(key, data)
        if not plan.in_place:
            plan.staged.put(RUN_MARKER, run.encode())
    except (FileNotFoundError, NotADirectoryError) as err:
        raise WriteError(f"Cannot create {plan.staged.url!r}: {err}") from None
    return run


def _check_run(plan: WritePlan, staged: Storage, run: str) -> None:
    """Refuse to publish unless ``staged`` (or the claim of a write in place) still holds run ``run``."""
    if plan.in_place and plan.protocol == "replace":
        return  # a store object that cannot stage has nothing to check
    found = plan.final.beside(CLAIM).get("") if plan.in_place else staged.get(RUN_MARKER)
    if found is None or found.decode(errors="replace") != run:
        raise WriteError(
            f"{plan.final.url!r} was started afresh by another write of the same data while this one ran "
            "(the two share a staging place); nothing was published by this one. "
            "Write a store from one place at a time."
        )


def finish_write(plan: WritePlan, files: StoreFiles, _after: Any = None, run: str = "") -> None:
    """Publish the store whose chunks are all written (the last task of a write)."""
    staged = plan.staged
    if isinstance(staged, LocalStorage):
        # renamed to a name only this run knows, so no other run touches it between the check and the publish
        private = LocalStorage(f"{staged.path}-{run.rsplit('-', 1)[-1]}")
        with contextlib.suppress(FileNotFoundError):  # else another run took it: the check below says so
            os.rename(staged.path, private.path)
        staged = private
    try:
        _check_run(plan, staged, run)
    except WriteError:
        if staged != plan.staged:
            staged.remove()
        raise
    if plan.in_place:
        plan.step("publish")
        for key, data in files.root:
            plan.final.put(key, data)
        if plan.protocol == "write":
            plan.step("release")
            plan.final.beside(CLAIM).remove()
        return
    plan.step("metadata")
    staged.remove(RUN_MARKER)
    for key, data in files.root:
        staged.put(key, data)
    if plan.final.atomic_publish:
        plan.step("publish")
        if not plan.final.publish(staged, replace=plan.protocol == "replace"):
            staged.remove()
            raise StoreExists(f"{plan.final.url!r} already exists (mode='w-'): another write created it first.")
        if plan.protocol == "replace":
            plan.step("cleanup")
            staged.remove()  # the old store, swapped out
        return
    _copy_into_place(plan, staged)


def _copy_into_place(plan: WritePlan, staged: Storage) -> None:
    """Replace the store at ``plan.final`` by the complete one at ``staged`` (no rename: object by object)."""
    final = plan.final
    every = staged.list_keys()
    keys = [k for k in every if k not in ROOT_METADATA]
    plan.step("unpublish")  # from here the old store no longer opens; the new one is complete at ``staged``
    for key in ROOT_METADATA:
        final.remove(key)
    plan.step("remove")
    final.remove()
    plan.step("copy")
    final.copy_from(staged, keys)
    plan.step("publish")
    for key in ROOT_METADATA:  # one at a time, in order
        if key in every:
            final.copy_from(staged, [key])
    plan.step("cleanup")
    staged.remove()
