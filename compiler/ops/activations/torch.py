"""The torch rules of the activations: torch functions, nn.PReLU (its slopes are a
weight), and the functions of modules.py."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule, attrs_fn, fn
from . import modules


def _prelu(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    # No `init`: nn.PReLU's is a number, not a scheme; the weights are loaded later.
    return Lowered(nn.PReLU, (), {"num_parameters": node.attr("num_parameters")})


def _soboleva(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=modules.soboleva_tanh, call_args=tuple(node.attr(k) for k in "abcd"))


def _softplus(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=F.softplus, call_kwargs={"beta": node.attr("beta")})


def _clamp(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    # only the bounds given, so that model.py reads torch.clamp(x, max=6.0)
    bounds = {k: node.attr(k) for k in ("min", "max") if node.attr(k) is not None}
    return Lowered(fn=torch.clamp, call_kwargs=bounds)


TORCH_RULES: dict[str, Rule] = {
    "identity": lambda node, ins: Lowered(passthrough=True),
    "step": fn(modules.step),
    "sigmoid": fn(torch.sigmoid),
    "tanh": fn(torch.tanh),
    "lecun_tanh": fn(modules.lecun_tanh),
    "soboleva_tanh": _soboleva,
    "relu": fn(torch.relu),
    "leaky_relu": attrs_fn(F.leaky_relu, negative_slope="slope"),
    "prelu": _prelu,
    "gelu": attrs_fn(F.gelu, approximate="approximate"),
    "elu": attrs_fn(F.elu, alpha="alpha"),
    "selu": fn(F.selu),
    "silu": fn(F.silu),
    "gaussian": fn(modules.gaussian),
    "softplus": _softplus,
    "hardtanh": attrs_fn(F.hardtanh, min_val="min", max_val="max"),
    "relu6": fn(F.relu6),
    "hardsigmoid": fn(F.hardsigmoid),
    "hardswish": fn(F.hardswish),
    "mish": fn(F.mish),
    "clamp": _clamp,
    "softmax": attrs_fn(torch.softmax, dim="axis"),
    "log_softmax": attrs_fn(torch.log_softmax, dim="axis"),
    "maxout": attrs_fn(modules.maxout, pieces="pieces"),
}
