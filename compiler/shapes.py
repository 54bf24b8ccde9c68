"""Static shape inference: every node's output type, parameters and FLOPs, before
anything runs.

Each node is checked by its op's shape rule on its inputs' types; symbolic dims stay
symbolic and arithmetic on them is exact (see dims.py). A node whose rule fails is
reported and its dependants are skipped, so each error printed is an independent one
and not the echo of an earlier mistake.
"""

from __future__ import annotations

from dataclasses import replace

from .dtypes import FLOAT_DTYPES
from .errors import Collector, Diagnostic, ShapeError
from .ir import Graph, InitSpec, Node, TensorType
from .ops import REGISTRY, OpCtx

MAX_PARAM_SIZE = 10**10  # elements in one weight: far beyond any model this tool trains


def infer_shapes(
    graph: Graph, default_init: InitSpec | None = None
) -> tuple[Graph, tuple[Diagnostic, ...]]:
    """The typed graph and its warnings; raises ShapeError listing every mismatch."""
    types: dict[str, TensorType | None] = {i.name: i.type for i in graph.inputs}
    errors = Collector(ShapeError)
    warnings: list[Diagnostic] = []
    typed: list[Node] = []
    done: dict[str, Node] = {}  # for rules that look up another node by name (tie=)
    for node in graph.nodes:
        done[node.name] = node  # untyped until its rule succeeds, below
        ins = [types[i] for i in node.inputs]
        if any(t is None for t in ins):
            types[node.name] = None  # depends on a node that failed: already reported
            typed.append(node)
            continue
        ctx = OpCtx(node, tuple(t for t in ins if t is not None), default_init, nodes=done)
        try:
            out = _check_node(ctx)
            params = REGISTRY[node.op].params(ctx, out)
            for p in params:
                if p.size > MAX_PARAM_SIZE:
                    raise ctx.fail(
                        f"{node.op}'s {p.name} would have {p.size:,} elements {list(p.shape)}",
                        f"dlc refuses weights above {MAX_PARAM_SIZE:,} elements: check the sizes",
                    )
            flops = REGISTRY[node.op].flops(ctx, out)
        except ShapeError as e:
            errors.extend(e)
            types[node.name] = None
            typed.append(node)
            continue
        warnings.extend(ctx.warnings)
        types[node.name] = out
        done[node.name] = node.typed(out, params, flops)
        typed.append(done[node.name])
    errors.raise_if_any()
    return replace(graph, nodes=tuple(typed)), tuple(warnings)


def _check_node(ctx: OpCtx) -> TensorType:
    opdef = REGISTRY[ctx.node.op]
    for t, name in zip(ctx.inputs, ctx.node.inputs, strict=True):
        if t.dtype not in FLOAT_DTYPES and not opdef.int_inputs:
            raise ctx.fail(
                f"{opdef.name} needs a floating-point input, but '{name}' is {t.dtype}",
                "integer inputs are token ids: start with embedding(vocab, dim)",
            )
    assert opdef.shape is not None
    return opdef.shape(ctx)
