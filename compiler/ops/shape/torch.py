"""The torch rules of the layout ops: torch.flatten, torch.reshape, Tensor.permute, the
indexing of modules.py's slice_axis, and F.pad."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ...dims import dims_equal, is_sym
from ...errors import ShapeError
from ...ir import Node, TensorType
from ...lower.lowered import Lowered, Rule, Size, attrs_fn
from . import modules


def _reshape(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    """A target shape with ints, -1 and symbolic dims; each symbolic dim is read off the
    input (`x.size(i)`) where an input axis has it, else it becomes the one -1."""
    target, x = list(node.attr("shape")), ins[0]
    free = -1 not in target
    for i, d in enumerate(target):
        if not is_sym(d):
            continue
        axis = next((a for a, xd in enumerate(x.shape) if dims_equal(xd, d)), None)
        if axis is not None:
            target[i] = Size(axis)
        elif free:
            target[i], free = -1, False
        else:
            raise ShapeError(
                f"reshape to {node.attr('shape')} cannot be lowered: more than one dim "
                "is neither a number nor an input dim",
                node.loc,
                "write -1 for the dim to infer",
            )
    return Lowered(fn=torch.reshape, call_args=(tuple(target),))


def _permute(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(method="permute", call_args=tuple(node.attr("dims")))


def _slice(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    args = (node.attr("start"), node.attr("stop"), node.attr("axis") % ins[0].rank)
    return Lowered(fn=modules.slice_axis, call_args=args + (node.attr("step"),))


def _pad(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(
        fn=F.pad, call_args=(node.attr("pads"),), call_kwargs={"value": node.attr("value")}
    )


TORCH_RULES: dict[str, Rule] = {
    "flatten": attrs_fn(torch.flatten, start_dim="start", end_dim="end"),
    "reshape": _reshape,
    "permute": _permute,
    "slice": _slice,
    "pad": _pad,
}
