"""The torch rules of the merges and of tensor arithmetic: `a + b` for two inputs, the
helpers of modules.py for more, and torch's elementwise functions with a number for the
ops with a constant (`torch.mul(x, 0.5)`: no module, no parameter)."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule, fn
from . import modules


def chain(pair: Callable[[Any, Any], Any], many: Callable[..., Any]) -> Rule:
    """`a + b` for two inputs, add(a, b, c, ...) for more."""
    return lambda node, ins: Lowered(fn=pair if len(ins) == 2 else many)


def with_scalar(f: Callable[..., Any]) -> Rule:
    """f(x, c) with the node's constant c."""
    return lambda node, ins: Lowered(fn=f, call_args=(node.attr("scalar"),))


def _concat(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=modules.cat, call_kwargs={"dim": node.attr("axis")})


TORCH_RULES: dict[str, Rule] = {
    "add": chain(operator.add, modules.add),
    "mul": chain(operator.mul, modules.mul),
    "sub": fn(torch.sub),
    "div": fn(torch.div),
    "concat": _concat,
    "add_scalar": with_scalar(torch.add),
    "sub_scalar": with_scalar(torch.sub),
    "rsub_scalar": with_scalar(torch.rsub),  # c - x
    "mul_scalar": with_scalar(torch.mul),
    "div_scalar": with_scalar(torch.div),
    "rdiv_scalar": with_scalar(modules.rdiv),  # c / x
    "neg": fn(torch.neg),
}
