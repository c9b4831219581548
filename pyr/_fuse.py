"""Fuse each output task with the tasks only it needs, so workers never ship pixels.

A pyr write graph ends in one task per output chunk (``write_chunk``). The
tasks that produce that chunk's pixels (the reads of every date, the kernel,
the reduction) are needed by that write task alone. Fusing them into it
makes one task per output chunk that reads, computes and writes in whatever
process runs it: no pixel crosses a process boundary, on the ``processes``
scheduler (which otherwise returns every intermediate block to the parent
process) or on a ``distributed`` cluster (which otherwise may move blocks
between workers). Shared tasks (the store's ``init``, an in-memory array
embedded in the graph) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["fuse_exclusive_ancestors"]


def fuse_exclusive_ancestors(graph: Mapping[Any, Any], roots: Iterable[Any]) -> dict[Any, Any]:
    """Return ``graph`` with each root fused with its exclusive ancestors.

    An ancestor is exclusive to a root when every task that depends on it is
    the root or another exclusive ancestor of that root. Roots keep their
    keys; the fused tasks disappear from the graph.
    """
    from dask._task_spec import DependenciesMapping, Task, convert_legacy_graph
    from dask.core import reverse_dict

    dsk: dict[Any, Any] = convert_legacy_graph(dict(graph))
    dependencies = DependenciesMapping(dsk)
    dependents = reverse_dict({k: set(v) for k, v in dependencies.items()})
    for root in roots:
        group = _exclusive(root, dependencies, dependents)
        if len(group) == 1:
            continue
        order = _toposort(group, dependencies)
        fused = Task.fuse(*(dsk[k] for k in order), key=root)
        for key in group:
            if key != root:
                del dsk[key]
        dsk[root] = fused
    return dsk


def _exclusive(root: Any, dependencies: Mapping[Any, Any], dependents: Mapping[Any, Any]) -> set[Any]:
    """The root and every ancestor whose dependents are all in the group (a fixpoint)."""
    group = {root}
    changed = True
    while changed:
        changed = False
        for key in list(group):
            for dep in dependencies.get(key, ()):
                if dep not in group and dep in dependencies and set(dependents.get(dep, ())) <= group:
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
