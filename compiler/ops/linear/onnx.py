"""The ONNX rule of dense, and `linear` (x Wᵀ + b) and `weight` (the weight, or
weight_norm's g·v/‖v‖), which other families' rules use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .weightnorm import G, V

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def linear(e: Emit, x: str, rank: int, w: str, b: str | None, out: bool) -> str:
    """x Wᵀ + b with W in torch's [out, in] layout: one Gemm on a matrix, else MatMul
    by the transposed weight (a Transpose of an initializer, which ORT folds) and Add."""
    if rank == 2:
        return e.op("Gemm", x, w, *([b] if b else []), transB=1, out=out)
    wt = e.op("Transpose", w, perm=[1, 0], tag="weight_t")
    y = e.op("MatMul", x, wt, out=out and b is None)
    return y if b is None else e.op("Add", y, b, out=out)


def weight(e: Emit, rank: int) -> str:
    """The node's weight (of `rank` axes): its initializer, or with weight_norm=true
    v·(g/‖v‖) from the initializers g and v, the norm over every axis but the first, in
    the order torch's _weight_norm computes it (onnxruntime folds it to a constant)."""
    if not e.attr("weight_norm"):
        return e.weight("weight")
    g, v = e.weight(G), e.weight(V)
    norm = e.reduce("ReduceL2", v, range(1, rank), keepdims=True)
    return e.op("Mul", v, e.op("Div", g, norm, tag="weight_scale"), tag="weight")


def _dense(e: Emit) -> str:
    """x Wᵀ + b; with tie=emb, W is the initializer of emb's table (one copy in the model),
    the node that `weights_of` names."""
    b = e.weight("bias") if e.attr("bias") else None
    if e.node.weights_of:
        (tied,) = e.node.weights_of
        w = e.builder.weight(e.builder.graph.node(tied), "weight", e.dtype)
    else:
        w = weight(e, 2)
    return linear(e, e.x, e.types[0].rank, w, b, out=True)


ONNX_RULES: dict[str, Rule] = {"dense": _dense}
