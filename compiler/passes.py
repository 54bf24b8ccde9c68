"""Passes over the typed IR that both lowerings run.

`prune` is dead-code elimination: it keeps the nodes that the requested values need,
through their inputs and through the weights they read (`Node.weights_of`), as
`Graph.live` follows them. The torch and the ONNX lowering both start from it, so a node
that no output needs (one only an unrequested export output uses) is in neither.
"""

from __future__ import annotations

from dataclasses import replace

from .ir import Graph


def prune(graph: Graph, values: tuple[str, ...] | None = None) -> Graph:
    """The graph without the nodes that `values` (default: its outputs) do not need."""
    live = graph.live(values)
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.name in live))
