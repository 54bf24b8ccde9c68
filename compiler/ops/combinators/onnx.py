"""The ONNX rules of the ops the combinators expand to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..linear.onnx import linear
from ..merge.onnx import chain

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _highway_gate(e: Emit) -> str:
    """x + T (h - x) with T = sigmoid(x Wᵀ + b): T h + (1 - T) x in three ops."""
    x, h = e.inputs
    gate = linear(e, x, e.types[0].rank, e.weight("weight"), e.weight("bias"), out=False)
    t = e.op("Sigmoid", gate)
    return e.op("Add", x, e.op("Mul", t, e.op("Sub", h, x)), out=True)


ONNX_RULES: dict[str, Rule] = {"residual_add": chain("Add"), "highway_gate": _highway_gate}
