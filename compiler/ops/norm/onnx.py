"""The ONNX rules of normalization and regularization.

- batchnorm, layernorm: BatchNormalization and LayerNormalization with the node's eps.
- rmsnorm: RMSNormalization from opset 23, before it x / √(mean(x²) + eps) · γ in plain
  ops (ReduceMean over the last axis); eps none is torch's, the dtype's machine epsilon.
- groupnorm: ONNX's GroupNormalization exists only from opset 18, with a per-group scale
  in 18 and a per-channel one in 21, so it is built from ops every opset has: x reshaped
  to [B, G, C/G·L], InstanceNormalization (one mean and variance per sample and group,
  unit scale), reshaped back, then γ and β per channel as torch.nn.GroupNorm applies them.
- drop_path (stochastic_depth): the identity at inference, an `Identity` node.
- dropout is no node at all at inference (its OpDef's `inference_identity`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def affine(e: Emit, n: int) -> tuple[str, str]:
    """The scale and shift of a norm layer: its weights, or constant ones and zeros."""
    if e.attr("affine"):
        return e.weight("weight"), e.weight("bias")
    return e.const([1.0] * n, "ones"), e.const([0.0] * n, "zeros")


def layernorm(e: Emit, x: str, scale: str, shift: str, eps: float, out: bool) -> str:
    """LayerNormalization of `x` over its last axis."""
    return e.op("LayerNormalization", x, scale, shift, axis=-1, epsilon=eps, out=out)


def _batchnorm(e: Emit) -> str:
    c = e.types[0].shape[1]
    assert isinstance(c, int), "shape inference guarantees a concrete channel count"
    scale, shift = affine(e, c)
    mean, var = e.weight("running_mean"), e.weight("running_var")
    return e.op("BatchNormalization", e.x, scale, shift, mean, var, epsilon=e.attr("eps"), out=True)


def _layernorm(e: Emit) -> str:
    f = e.types[0].shape[-1]
    assert isinstance(f, int), "shape inference guarantees a concrete feature axis"
    scale, shift = affine(e, f)
    return layernorm(e, e.x, scale, shift, e.attr("eps"), out=True)


def _rmsnorm(e: Emit) -> str:
    f = e.types[0].shape[-1]
    assert isinstance(f, int), "shape inference guarantees a concrete feature axis"
    eps = e.attr("eps")
    eps = float(np.finfo(e.dtype).eps) if eps is None else eps
    scale = e.weight("weight") if e.attr("affine") else None
    if e.opset >= 23:
        ones = scale if scale is not None else e.const([1.0] * f, "ones")
        return e.op("RMSNormalization", e.x, ones, axis=-1, epsilon=eps, out=True)
    mean = e.reduce("ReduceMean", e.op("Mul", e.x, e.x, tag="square"), [-1], keepdims=True)
    rms = e.op("Sqrt", e.op("Add", mean, e.const(eps, "eps")), tag="rms")
    normed = e.op("Div", e.x, rms, out=scale is None)
    return normed if scale is None else e.op("Mul", normed, scale, out=True)


def _groupnorm(e: Emit) -> str:
    t, groups, affine_ = e.types[0], e.attr("groups"), e.attr("affine")
    c = t.shape[1]
    assert isinstance(c, int), "shape inference guarantees a concrete channel count"
    grouped = e.op("Reshape", e.x, e.ints([0, groups, -1]), tag="grouped")
    ones, zeros = e.const([1.0] * groups, "ones"), e.const([0.0] * groups, "zeros")
    normed = e.op("InstanceNormalization", grouped, ones, zeros, epsilon=e.attr("eps"))
    shape = e.op("Shape", e.x, tag="shape")
    back = e.op("Reshape", normed, shape, out=not affine_, tag="ungrouped")
    e.declare(back, e.type)  # a shape read at run time: inference cannot see the dims
    if not affine_:
        return back
    scale, shift = e.weight("weight"), e.weight("bias")
    if t.rank > 2:  # [C] → [C, 1, ..., 1], to broadcast over the positions
        per_channel = e.ints([c] + [1] * (t.rank - 2), "per_channel")
        scale = e.op("Reshape", scale, per_channel, tag="scale")
        shift = e.op("Reshape", shift, per_channel, tag="shift")
    return e.op("Add", e.op("Mul", back, scale), shift, out=True)


ONNX_RULES: dict[str, Rule] = {
    "drop_path": lambda e: e.op("Identity", e.x, out=True),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "rmsnorm": _rmsnorm,
    "groupnorm": _groupnorm,
}
