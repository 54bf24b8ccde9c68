"""Ops that combine tensors: add, mul (with broadcasting), concat, and the internal ops
that `residual` and `highway` expand to.
"""

from __future__ import annotations

from ..dims import Dim, dims_equal, format_shape
from ..ir import InitSpec, ParamSpec, TensorType
from .common import GLOROT_UNIFORM, ZEROS, norm_axis, numel, shapes_equal
from .linear import features
from .registry import AXIS, NUMBER, TENSOR, Arg, OpCtx, OpDef, register


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
            varargs=Arg("inputs", TENSOR),
            arity=(2, None),
            shape=broadcast,
            flops=_elementwise_flops,
            category="merge",
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
        args=(Arg("axis", AXIS, -1),),
        varargs=Arg("inputs", TENSOR),
        arity=(2, None),
        shape=_concat_shape,
        category="merge",
        doc="Join tensors along an axis (default the last, the features).",
    )
)


def _residual_shape(ctx: OpCtx) -> TensorType:
    x, body = ctx.inputs
    if not shapes_equal(x, body):
        raise ctx.fail(
            f"residual adds {x} to its body's {body}; keep the width or project x",
            f"the body must return {format_shape(x.shape)}: end it with a layer of that "
            "width, or write the projection as a graph node",
        )
    return x


register(
    OpDef(
        "residual_add",
        arity=2,
        shape=_residual_shape,
        flops=lambda ctx, out: numel(out),
        category="merge",
        internal=True,
        doc="x + body(x), the end of a residual connection (shapes must be equal).",
    )
)


def _highway_shape(ctx: OpCtx) -> TensorType:
    x, h = ctx.inputs
    if not shapes_equal(x, h):
        raise ctx.fail(
            f"highway mixes x {x} with its body's {h}; they must have the same shape",
            "keep the width in the body (the gate interpolates between the two)",
        )
    features(ctx, "features for the gate")
    return x


def _highway_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    f = features(ctx)
    gate_bias = ctx["gate_bias"]
    bias = ZEROS if gate_bias == 0 else InitSpec("constant", (("value", gate_bias),))
    return (ParamSpec("weight", (f, f), GLOROT_UNIFORM), ParamSpec("bias", (f,), bias))


register(
    OpDef(
        "highway_gate",
        args=(Arg("gate_bias", NUMBER, 0.0),),
        arity=2,
        shape=_highway_shape,
        params=_highway_params,
        flops=lambda ctx, out: (2 * features(ctx) + 8) * numel(out),
        category="merge",
        internal=True,
        doc="T ⊙ h + (1 - T) ⊙ x with the gate T = sigmoid(W_T x + b_T).",
    )
)
