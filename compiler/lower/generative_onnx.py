"""The ONNX rules of generative pieces and more normalization (see onnx_ops.py and
onnx.py's `Emit`).

- groupnorm: ONNX's GroupNormalization exists only from opset 18, with a per-group scale
  in 18 and a per-channel one in 21, so it is built from ops every opset has: x reshaped
  to [B, G, C/G·L], InstanceNormalization (one mean and variance per sample and group,
  unit scale), reshaped back, then γ and β per channel as torch.nn.GroupNorm applies them.
- drop_path (stochastic_depth): the identity at inference, an `Identity` node.
- gaussian_sample: μ (an `Identity`) by default; with `sample=true` a fresh draw
  μ + exp(½·logvar)·ε with ε from RandomNormalLike on every run, unseeded, so two runs
  of the model differ (and `dlc compile --verify` cannot compare it with torch).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .onnx_ops import Rule

if TYPE_CHECKING:
    from .onnx import Emit


def _groupnorm(e: Emit) -> str:
    t, groups, affine = e.types[0], e.attr("groups"), e.attr("affine")
    c = t.shape[1]
    assert isinstance(c, int), "shape inference guarantees a concrete channel count"
    grouped = e.op("Reshape", e.x, e.ints([0, groups, -1]), tag="grouped")
    ones, zeros = e.const([1.0] * groups, "ones"), e.const([0.0] * groups, "zeros")
    normed = e.op("InstanceNormalization", grouped, ones, zeros, epsilon=e.attr("eps"))
    shape = e.op("Shape", e.x, tag="shape")
    back = e.op("Reshape", normed, shape, out=not affine, tag="ungrouped")
    e.declare(back, e.type)  # a shape read at run time: inference cannot see the dims
    if not affine:
        return back
    scale, shift = e.weight("weight"), e.weight("bias")
    if t.rank > 2:  # [C] → [C, 1, ..., 1], to broadcast over the positions
        per_channel = e.ints([c] + [1] * (t.rank - 2), "per_channel")
        scale = e.op("Reshape", scale, per_channel, tag="scale")
        shift = e.op("Reshape", shift, per_channel, tag="shift")
    return e.op("Add", e.op("Mul", back, scale), shift, out=True)


def _gaussian_sample(e: Emit) -> str:
    mu, logvar = e.inputs
    if not e.attr("sample"):
        return e.op("Identity", mu, out=True)
    eps = e.op("RandomNormalLike", mu, tag="eps")
    std = e.op("Exp", e.op("Mul", logvar, e.const(0.5, "half")), tag="std")
    return e.op("Add", mu, e.op("Mul", std, eps), out=True)


ONNX_RULES: dict[str, Rule] = {
    "groupnorm": _groupnorm,
    "drop_path": lambda e: e.op("Identity", e.x, out=True),
    "gaussian_sample": _gaussian_sample,
}
