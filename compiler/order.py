"""The order in which a graph body's named nodes are elaborated: each after the nodes it uses.

A graph body (`model: {h: x -> dense(64), y: h -> relu}`) may name its nodes in any order;
elaboration needs every node a node uses to be elaborated first, and a node that reaches
itself through others is an error, reported at the reference that closes the cycle.
"""

from __future__ import annotations

from .errors import Collector
from .syntax import Expr, references


def in_dependency_order(
    nodes: list[tuple[str, Expr]], errors: Collector
) -> tuple[list[tuple[str, Expr]], set[str]]:
    """Graph nodes sorted so each comes after the nodes it uses, and the nodes on a
    cycle (each cycle added to `errors`)."""
    exprs = dict(nodes)
    deps = {name: [r for r in references(e) if r.id in exprs] for name, e in nodes}
    order: list[tuple[str, Expr]] = []
    failed: set[str] = set()
    done: set[str] = set()
    for root, _ in nodes:
        if root in done:
            continue
        # Depth-first with an explicit stack: a graph may be thousands of nodes deep.
        path, stack = [root], [iter(deps[root])]
        while stack:
            ref = next(stack[-1], None)
            if ref is None:
                name = path.pop()
                stack.pop()
                done.add(name)
                order.append((name, exprs[name]))
            elif ref.id in path:
                cycle = path[path.index(ref.id) :] + [ref.id]
                errors.add(
                    f"the graph has a cycle: {' -> '.join(cycle)}",
                    ref.loc,
                    "a node may use inputs and other nodes, but not itself through them",
                )
                failed.update(path)
                done.update(path)
                path, stack = [], []
            elif ref.id not in done:
                path.append(ref.id)
                stack.append(iter(deps[ref.id]))
    return order, failed
