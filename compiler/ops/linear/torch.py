"""The torch rule of dense: nn.Linear, a TiedLinear that reads the tied embedding's
table where it lives (the node's `weights_of` edge), or with weight_norm=true nn.Linear
wrapped by torch's weight_norm (WeightNormLinear)."""

from __future__ import annotations

from torch import nn

from ...ir import Node, TensorType
from ...lower.lowered import Attr, Lowered, Rule, features
from .modules import TiedLinear, WeightNormLinear


def _dense(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    bias = {"bias": node.attr("bias")}
    if node.weights_of:  # the weight is the embedding module's own, read where it lives
        (tied,) = node.weights_of
        return Lowered(TiedLinear, (node.attr("units"),), bias, call_args=(Attr(f"{tied}.weight"),))
    linear = WeightNormLinear if node.attr("weight_norm") else nn.Linear
    return Lowered(linear, (features(ins), node.attr("units")), bias)


TORCH_RULES: dict[str, Rule] = {"dense": _dense}
