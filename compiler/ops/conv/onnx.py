"""The ONNX rules of convolution and pooling (see lower/onnx.py's `Emit`).

Each op is the ONNX op of the same meaning with torch's conventions made explicit:
`pads` from the node's window (ops/conv/__init__.py; `same` is padded as torch pads it, the odd
one after), AveragePool with `count_include_pad=1` (torch's default, not ONNX's),
Resize with half_pixel coordinates for bilinear and asymmetric + floor for nearest (what
F.interpolate does with align_corners=False). Weights keep torch's layout, which is
ONNX's: Conv [M, C/group, *k], ConvTranspose [C, M/group, *k].
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from . import Window, per_axis, upsample_scales, window

if TYPE_CHECKING:
    from ...lower.onnx import Emit, Rule


def _window(e: Emit) -> Window:
    return window(e.node, e.types[0].rank - 2)


def _pads(w: Window) -> list[int]:
    """ONNX's `pads`: every axis's begin, then every axis's end."""
    return [b for b, _ in w.pads] + [e for _, e in w.pads]


def _geometry(w: Window) -> dict[str, Any]:
    return {"kernel_shape": list(w.kernel), "strides": list(w.stride), "pads": _pads(w)}


def _weights(e: Emit) -> list[str]:
    return [e.weight("weight")] + ([e.weight("bias")] if e.attr("bias") else [])


def _conv(e: Emit) -> str:
    w = _window(e)
    return e.op("Conv", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                group=e.attr("groups"), out=True)  # fmt: skip


def _conv_transpose(e: Emit) -> str:
    w = _window(e)
    extra = list(per_axis(e.node, "output_padding", 2))
    return e.op("ConvTranspose", e.x, *_weights(e), **_geometry(w), dilations=list(w.dilation),
                output_padding=extra, group=e.attr("groups"), out=True)  # fmt: skip


def _maxpool(e: Emit) -> str:
    return e.op("MaxPool", e.x, **_geometry(_window(e)), out=True)


def _avgpool(e: Emit) -> str:
    return e.op("AveragePool", e.x, **_geometry(_window(e)), count_include_pad=1, out=True)


def _global(op_type: str) -> Rule:
    """A reduction over the spatial axes 2.. without keepdims: [B, C] directly, where
    Global*Pool would keep [B, C, 1, ...] (and onnx's reference GlobalMaxPool reduces the
    wrong axes below rank 4)."""

    def rule(e: Emit) -> str:
        axes = range(2, e.types[0].rank)
        return e.reduce(op_type, e.x, axes, keepdims=False, out=True)

    return rule


def _upsample(e: Emit) -> str:
    rank = e.types[0].rank
    factors = [1.0, 1.0] + [float(s) for s in upsample_scales(e.node, rank)]
    # Resize takes float32 scales whatever the data's type
    scales = e.const(factors, "scales", np.float32)
    if e.attr("mode") == "bilinear":
        modes = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    else:
        modes = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric",
                 "nearest_mode": "floor"}  # fmt: skip
    return e.op("Resize", e.x, "", scales, **modes, out=True)


ONNX_RULES: dict[str, Rule] = {
    "conv1d": _conv,
    "conv2d": _conv,
    "conv_transpose2d": _conv_transpose,
    "maxpool1d": _maxpool,
    "maxpool2d": _maxpool,
    "avgpool1d": _avgpool,
    "avgpool2d": _avgpool,
    "global_avgpool": _global("ReduceMean"),
    "global_maxpool": _global("ReduceMax"),
    "upsample": _upsample,
}
