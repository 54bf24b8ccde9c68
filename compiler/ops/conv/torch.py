"""The torch rules of convolution and pooling (see lower/lowered.py).

Convolutions and windowed pooling are the torch.nn modules of the same name, built with
the node's window (ops/conv/__init__.py), so their state_dict is nn.Conv2d's (a causal
conv1d is modules.py's nn.Conv1d that pads on the left first; with weight_norm=true each
is modules.py's subclass that torch's weight_norm wraps as it is built); adaptive
pooling is nn.Adaptive*Pool*d; global pooling is a helper of modules.py, upsampling
nn.Upsample.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule, channels
from . import adaptive_sizes, modules, per_axis, upsample_scales, window

_CONV: dict[int, type[nn.Module]] = {1: nn.Conv1d, 2: nn.Conv2d}
_POOL: dict[tuple[str, int], type[nn.Module]] = {
    ("max", 1): nn.MaxPool1d,
    ("max", 2): nn.MaxPool2d,
    ("avg", 1): nn.AvgPool1d,
    ("avg", 2): nn.AvgPool2d,
}
_ADAPTIVE: dict[tuple[str, int], type[nn.Module]] = {
    ("avg", 1): nn.AdaptiveAvgPool1d,
    ("avg", 2): nn.AdaptiveAvgPool2d,
    ("max", 2): nn.AdaptiveMaxPool2d,
}

# the same convolutions with weight_norm=true
_NORMED: dict[type[nn.Module], type[nn.Module]] = {
    nn.Conv1d: modules.WeightNormConv1d,
    nn.Conv2d: modules.WeightNormConv2d,
    nn.ConvTranspose2d: modules.WeightNormConvTranspose2d,
    modules.CausalConv1d: modules.WeightNormCausalConv1d,
}


def _module(node: Node, cls: type[nn.Module]) -> type[nn.Module]:
    """The conv node's module class: `cls`, or its subclass that weight_norm wraps."""
    return _NORMED[cls] if node.attr("weight_norm") else cls


def _conv(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    n = ins[0].rank - 2
    w = window(node, n)
    if node.attr("padding") == "causal":
        kwargs = {"stride": w.stride, "dilation": w.dilation, "groups": node.attr("groups"),
                  "bias": node.attr("bias")}  # fmt: skip
        args = (channels(ins), node.attr("filters"), w.kernel)
        return Lowered(_module(node, modules.CausalConv1d), args, kwargs)
    padding: Any = "same" if node.attr("padding") == "same" else w.before
    kwargs = {"stride": w.stride, "padding": padding, "dilation": w.dilation,
              "groups": node.attr("groups"), "bias": node.attr("bias")}  # fmt: skip
    return Lowered(_module(node, _CONV[n]), (channels(ins), node.attr("filters"), w.kernel), kwargs)


def _conv_transpose(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    w = window(node, 2)
    kwargs = {"stride": w.stride, "padding": w.before,
              "output_padding": per_axis(node, "output_padding", 2),
              "groups": node.attr("groups"), "bias": node.attr("bias"),
              "dilation": w.dilation}  # fmt: skip
    module = _module(node, nn.ConvTranspose2d)
    return Lowered(module, (channels(ins), node.attr("filters"), w.kernel), kwargs)


def _pool(kind: str) -> Rule:
    def rule(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
        n = ins[0].rank - 2
        w = window(node, n)
        kwargs: dict[str, Any] = {"stride": w.stride, "padding": w.before}
        # only where not torch's default, so that model.py reads as it did before the
        # options existed
        if node.attr("ceil_mode"):
            kwargs["ceil_mode"] = True
        if kind == "avg" and not node.attr("count_include_pad"):
            kwargs["count_include_pad"] = False
        return Lowered(_POOL[kind, n], (w.kernel,), kwargs)

    return rule


def _adaptive(kind: str) -> Rule:
    def rule(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
        n = ins[0].rank - 2
        return Lowered(_ADAPTIVE[kind, n], (adaptive_sizes(node, n),))

    return rule


def _upsample(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    scales = tuple(float(s) for s in upsample_scales(node, ins[0].rank))
    mode = node.attr("mode")
    corners = {"align_corners": False} if mode == "bilinear" else {}
    return Lowered(nn.Upsample, (), {"scale_factor": scales, "mode": mode, **corners})


TORCH_RULES: dict[str, Rule] = {
    "conv1d": _conv,
    "conv2d": _conv,
    "conv_transpose2d": _conv_transpose,
    "maxpool1d": _pool("max"),
    "maxpool2d": _pool("max"),
    "avgpool1d": _pool("avg"),
    "avgpool2d": _pool("avg"),
    "adaptive_avgpool1d": _adaptive("avg"),
    "adaptive_avgpool2d": _adaptive("avg"),
    "adaptive_maxpool2d": _adaptive("max"),
    "global_avgpool": lambda node, ins: Lowered(fn=modules.global_avgpool),
    "global_maxpool": lambda node, ins: Lowered(fn=modules.global_maxpool),
    "upsample": _upsample,
}
