"""Ops that combine tensors: add, mul (with broadcasting), concat."""

from __future__ import annotations

from ...dims import Dim, dims_equal
from ...ir import TensorType
from ..common import norm_axis, numel, shapes_equal
from ..registry import AXIS, TENSOR, Arg, OpCtx, OpDef, register
from .examples import EXAMPLES


def broadcast(ctx: OpCtx) -> TensorType:
    """numpy broadcasting over all inputs, exact on symbolic dims."""
    rank = max(t.rank for t in ctx.inputs)
    out: list[Dim] = []
    for axis in range(-rank, 0):
        dim: Dim = 1
        for t in ctx.inputs:
            d = t.shape[axis] if -axis <= t.rank else 1
            if d == 1:
                continue
            if dim != 1 and not dims_equal(dim, d):
                shapes = " and ".join(str(t) for t in ctx.inputs)
                raise ctx.fail(
                    f"{ctx.node.op} cannot combine {shapes}: axis {axis} differs",
                    "the shapes must match (or be 1) on every axis",
                )
            dim = d
        out.append(dim)
    return TensorType(tuple(out), ctx.x.dtype)


def _elementwise_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return (len(ctx.inputs) - 1) * numel(out)


for _name, _what in (("add", "sum"), ("mul", "product")):
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            varargs=Arg("inputs", TENSOR),
            arity=(2, None),
            shape=broadcast,
            flops=_elementwise_flops,
            category="merge",
            int_inputs=True,
            doc=f"The elementwise {_what} of two or more tensors (numpy broadcasting).",
        )
    )


def _concat_shape(ctx: OpCtx) -> TensorType:
    rank = ctx.x.rank
    axis = norm_axis(ctx, ctx["axis"], rank)
    for t in ctx.inputs:
        if not shapes_equal(t, ctx.x, skip_axis=axis):
            shapes = ", ".join(str(t) for t in ctx.inputs)
            raise ctx.fail(
                f"concat on axis {ctx['axis']} needs equal shapes elsewhere, got {shapes}",
                "only the concatenated axis may differ",
            )
    total: Dim = 0
    for t in ctx.inputs:
        total = total + t.shape[axis]
    return TensorType(ctx.x.shape[:axis] + (total,) + ctx.x.shape[axis + 1 :], ctx.x.dtype)


register(
    OpDef(
        "concat",
        examples=EXAMPLES.get("concat", ()),
        args=(Arg("axis", AXIS, -1),),
        varargs=Arg("inputs", TENSOR),
        arity=(2, None),
        shape=_concat_shape,
        category="merge",
        int_inputs=True,
        doc="Join tensors along an axis (default the last, the features).",
    )
)
