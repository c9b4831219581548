"""Fuse each output task with the tasks only it needs, so workers never ship pixels.

A pyr write graph (``write_zarr``, its ``mode="a"`` appends, a lazy
``write_tiff``) ends in one task per output chunk that writes it. The
tasks that produce that chunk's pixels (the reads of every date, the kernel,
the reduction) are needed by that write task alone. Fusing them into it
makes one task per output chunk that reads, computes and writes in whatever
process runs it: no pixel crosses a process boundary, on the ``processes``
scheduler (which otherwise returns every intermediate block to the parent
process) or on a ``distributed`` cluster (which otherwise may move blocks
between workers). Shared tasks (the store's ``init``, an in-memory array
embedded in the graph) are left as they are.

On a ``distributed`` cluster each task also costs the scheduler and the
worker bookkeeping, which the cluster's own cores pay (measured in
docs/benchmarks.md, "The LocalCluster, warm, per task").
:func:`group_tasks` puts several of those fused chunk tasks into one task
that runs them in turn.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyr._cluster import cluster_threads
from pyr._imports import ensure
from pyr.errors import InvalidArgument

__all__ = ["chunks_per_task", "fuse_exclusive_ancestors", "fuse_writes", "group_tasks"]


def fuse_writes(
    graph: Mapping[Any, Any], writes: list[Any], data: Any, group_name: str, *, keep: Iterable[Any] = ()
) -> tuple[dict[Any, Any], list[Any]]:
    """A writer's graph with each write task fused with what only it needs, grouped on a cluster.

    ``writes`` are the keys of the one-chunk write tasks of ``data`` (a dask
    array). Returns the new graph (task-spec form) and the keys the final
    task should wait on: ``writes`` themselves, or the keys of the grouped
    tasks (:func:`chunks_per_task` chunks each) that replaced them. The
    write tasks' values are dropped by grouping: pass what the final task
    needs as arguments, not as their values. ``keep``: keys never fused
    away (the final task, added afterwards, depends on them too).
    """
    fused = fuse_exclusive_ancestors(graph, writes, keep=keep)
    per_task = chunks_per_task(data)
    if per_task > 1:
        return fused, group_tasks(fused, writes, per_task, group_name)
    return fused, list(writes)


#: Output bytes one grouped write task carries on a cluster: four 1024 x 1024 float32 chunks.
TASK_BYTES = 16 * 2**20
#: The fewest write tasks per worker thread that grouping leaves, so that no thread waits at the end.
MIN_TASKS_PER_THREAD = 4


def chunks_per_task(data: Any) -> int:
    """How many output chunks of ``data`` one write task writes (dask config ``pyr.chunks-per-task``).

    ``"auto"`` (the default) writes one chunk per task on the local
    schedulers, where a task costs microseconds. On a ``distributed``
    cluster (a client active when the graph is built), where every task
    costs the scheduler and a worker bookkeeping (measurements above), it
    groups chunks up to :data:`TASK_BYTES` of output per task while leaving
    at least :data:`MIN_TASKS_PER_THREAD` tasks per worker thread. An
    integer fixes it.
    """
    ensure("dask")
    import dask.config

    setting = dask.config.get("pyr.chunks-per-task", "auto")
    if setting != "auto":
        if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
            raise InvalidArgument(f"dask config pyr.chunks-per-task={setting!r}: expected 'auto' or an integer >= 1.")
        return int(setting)
    threads = cluster_threads(data)
    if not threads:  # a local scheduler, or a cluster with no workers yet: nothing to size by
        return 1
    chunk_bytes: int = max(1, math.prod(data.chunksize) * data.dtype.itemsize)
    nchunks: int = math.prod(data.numblocks)
    return max(1, min(TASK_BYTES // chunk_bytes, nchunks // (MIN_TASKS_PER_THREAD * threads)))


def fuse_exclusive_ancestors(
    graph: Mapping[Any, Any], roots: Iterable[Any], *, keep: Iterable[Any] = ()
) -> dict[Any, Any]:
    """Return ``graph`` with each root fused with its exclusive ancestors.

    An ancestor is exclusive to a root when every task that depends on it is
    the root or another exclusive ancestor of that root. Roots keep their
    keys; the fused tasks disappear from the graph. Keys in ``keep`` are
    never fused (something outside ``graph`` will depend on them).
    """
    ensure("dask")
    from dask._task_spec import DependenciesMapping, Task, convert_legacy_graph
    from dask.core import reverse_dict

    dsk: dict[Any, Any] = convert_legacy_graph(dict(graph))
    dependencies = DependenciesMapping(dsk)
    dependents = reverse_dict({k: set(v) for k, v in dependencies.items()})
    kept = set(keep)
    for root in roots:
        group = _exclusive(root, dependencies, dependents, kept)
        if len(group) == 1:
            continue
        order = _toposort(group, dependencies)
        fused = Task.fuse(*(dsk[k] for k in order), key=root)
        for key in group:
            if key != root:
                del dsk[key]
        dsk[root] = fused
    return dsk


def group_tasks(graph: dict[Any, Any], keys: Sequence[Any], size: int, name: str) -> list[Any]:
    """Replace ``keys`` in ``graph`` by tasks ``(name, i)`` that each run ``size`` of them in turn.

    ``graph`` is changed in place (it must be in dask's task-spec form, as
    :func:`fuse_exclusive_ancestors` returns it); the new keys are returned,
    in order. Nothing may depend on the replaced keys except what the caller
    rewires to the new ones. Each grouped task's value is the number of tasks
    it ran; the values of the tasks it runs are held until it ends, so group
    only tasks whose values are small (pyr's chunk writes return ``None``).
    """
    ensure("dask")
    from dask._task_spec import Task

    if size < 1:
        raise ValueError(f"size={size}: expected at least 1")
    groups = []
    for i, start in enumerate(range(0, len(keys), size)):
        key = (name, i)
        graph[key] = Task(key, _ran, *(graph.pop(k) for k in keys[start : start + size]))
        groups.append(key)
    return groups


def _ran(*results: Any) -> int:
    return len(results)


def _exclusive(
    root: Any,
    dependencies: Mapping[Any, Any],
    dependents: Mapping[Any, Any],
    keep: frozenset[Any] | set[Any] = frozenset(),
) -> set[Any]:
    """The root and every ancestor not in ``keep`` whose dependents are all in the group (a fixpoint)."""
    group = {root}
    changed = True
    while changed:
        changed = False
        for key in list(group):
            for dep in dependencies.get(key, ()):
                if (
                    dep not in group
                    and dep not in keep
                    and dep in dependencies
                    and set(dependents.get(dep, ())) <= group
                ):
                    group.add(dep)
                    changed = True
    return group


def _toposort(group: set[Any], dependencies: Mapping[Any, Any]) -> list[Any]:
    order: list[Any] = []
    seen: set[Any] = set()

    def visit(key: Any) -> None:
        stack = [(key, False)]
        while stack:
            k, done = stack.pop()
            if done:
                order.append(k)
                continue
            if k in seen:
                continue
            seen.add(k)
            stack.append((k, True))
            stack.extend((d, False) for d in dependencies.get(k, ()) if d in group and d not in seen)

    for key in group:
        visit(key)
    return order
