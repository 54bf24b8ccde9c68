"""Ops that combine tensors: add, sub, mul, div (numpy broadcasting), concat; and the
internal ops that tensor arithmetic with a constant elaborates to (scalar.py)."""

from __future__ import annotations

from ...dims import Dim
from ...ir import TensorType
from ..common import norm_axis, numel, shapes_equal
from ..registry import AXIS, TENSOR, Arg, OpCtx, OpDef, register
from . import scalar  # noqa: F401  (registers the ops with a constant operand)
from .examples import ERRORS, EXAMPLES
from .rules import SYMBOLS, broadcast, no_int_division


def _div_shape(ctx: OpCtx) -> TensorType:
    out = broadcast(ctx)
    no_int_division(ctx)
    return out


def _elementwise_flops(ctx: OpCtx, out: TensorType) -> Dim:
    return (len(ctx.inputs) - 1) * numel(out)


for _name, _what in (("add", "sum"), ("mul", "product")):
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            errors=ERRORS.get(_name, ()),
            varargs=Arg("inputs", TENSOR),
            arity=(2, None),
            shape=broadcast,
            flops=_elementwise_flops,
            category="merge",
            int_inputs=True,
            doc=f"The elementwise {_what} of two or more tensors (numpy broadcasting); "
            f"`a {SYMBOLS[_name]} b` in a spec.",
        )
    )

for _name, _what, _shape in (("sub", "difference", broadcast), ("div", "quotient", _div_shape)):
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            errors=ERRORS.get(_name, ()),
            varargs=Arg("inputs", TENSOR),
            arity=2,
            shape=_shape,
            flops=_elementwise_flops,
            category="merge",
            int_inputs=True,  # int tensors subtract; `/` of ints is its own error
            doc=f"The elementwise {_what} a {SYMBOLS[_name]} b of two tensors (numpy "
            f"broadcasting); `a {SYMBOLS[_name]} b` in a spec.",
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
