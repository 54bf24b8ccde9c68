"""The torch rules of the merges: `a + b` for two inputs, the helpers of modules.py for more."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule
from . import modules


def chain(pair: Callable[[Any, Any], Any], many: Callable[..., Any]) -> Rule:
    """`a + b` for two inputs, add(a, b, c, ...) for more."""
    return lambda node, ins: Lowered(fn=pair if len(ins) == 2 else many)


def _concat(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=modules.cat, call_kwargs={"dim": node.attr("axis")})


TORCH_RULES: dict[str, Rule] = {
    "add": chain(operator.add, modules.add),
    "mul": chain(operator.mul, modules.mul),
    "concat": _concat,
}
