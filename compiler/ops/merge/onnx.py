"""The ONNX rules of the merges and of tensor arithmetic, and `chain`, which the
combinators' residual_add uses. A constant operand is a scalar initializer in the tensor's
dtype (`{node}.__scalar`), so `x * 0.5` is one Mul."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def chain(op_type: str) -> Rule:
    """((a ∘ b) ∘ c) ..., left to right like Python's a + b + c."""

    def rule(e: Emit) -> str:
        acc = e.inputs[0]
        for i, other in enumerate(e.inputs[1:], start=2):
            acc = e.op(op_type, acc, other, out=i == len(e.inputs))
        return acc

    return rule


def with_scalar(op_type: str, left: bool = False) -> Rule:
    """x ∘ c, or c ∘ x if `left`, for the node's constant c."""

    def rule(e: Emit) -> str:
        c = e.const(e.attr("scalar"), "scalar")
        return e.op(op_type, *((c, e.x) if left else (e.x, c)), out=True)

    return rule


ONNX_RULES: dict[str, Rule] = {
    "add": chain("Add"),
    "mul": chain("Mul"),
    "sub": chain("Sub"),
    "div": chain("Div"),
    "concat": lambda e: e.op("Concat", *e.inputs, axis=e.attr("axis"), out=True),
    "add_scalar": with_scalar("Add"),
    "sub_scalar": with_scalar("Sub"),
    "rsub_scalar": with_scalar("Sub", left=True),
    "mul_scalar": with_scalar("Mul"),
    "div_scalar": with_scalar("Div"),
    "rdiv_scalar": with_scalar("Div", left=True),
    "neg": lambda e: e.op("Neg", e.x, out=True),
}
