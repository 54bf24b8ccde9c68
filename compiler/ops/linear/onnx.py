"""The ONNX rule of dense, and `linear` (x Wᵀ + b), which other families' rules use."""

from __future__ import annotations

from typing import TYPE_CHECKING

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


def _dense(e: Emit) -> str:
    """x Wᵀ + b; with tie=emb, W is the initializer of emb's table (one copy in the model),
    the node that `weights_of` names."""
    b = e.weight("bias") if e.attr("bias") else None
    if e.node.weights_of:
        (tied,) = e.node.weights_of
        w = e.builder.weight(e.builder.graph.node(tied), "weight", e.dtype)
    else:
        w = e.weight("weight")
    return linear(e, e.x, e.types[0].rank, w, b, out=True)


ONNX_RULES: dict[str, Rule] = {"dense": _dense}
