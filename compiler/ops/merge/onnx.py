"""The ONNX rules of the merges, and `chain`, which the combinators' residual_add uses."""

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


ONNX_RULES: dict[str, Rule] = {
    "add": chain("Add"),
    "mul": chain("Mul"),
    "concat": lambda e: e.op("Concat", *e.inputs, axis=e.attr("axis"), out=True),
}
