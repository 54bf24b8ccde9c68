"""The ops of tensor arithmetic with a constant: `x * 0.5`, `1 - x`, `x / t`, `-x`.

Elaboration (tensor_arith.py) makes them from an arithmetic expression with one tensor
operand and one constant one (a number, a param, arithmetic over those), so they are
internal: a spec writes the operator, never the op. The constant is the attribute
`scalar`, kept as written (an int stays an int), so the IR reads `mul_scalar(%x;
scalar=0.5)`; `rsub_scalar` and `rdiv_scalar` are the constant on the left (`1 - x`,
`2 / x`), like Python's __rsub__ and __rtruediv__. The lowerings are torch's elementwise
functions with a number and ONNX's Add/Sub/Mul/Div with a scalar initializer.

Dtypes follow torch where it keeps a tensor's dtype: a float tensor with any number stays
float (the number takes its dtype), an int tensor with an int stays int. Where torch would
promote, that is an error rather than a conversion the spec does not show: an int tensor
with a float constant, and `/` on an int tensor (true division; ONNX's Div truncates).
"""

from __future__ import annotations

import math
from typing import Any

from ...dtypes import INT_DTYPES
from ...ir import TensorType
from ..common import per_element
from ..registry import Arg, ArgType, ArgTypeError, OpCtx, OpDef, register
from .examples import EXAMPLES
from .rules import no_bool, no_int_division

# op: (the operator, the constant on the left)
SCALAR_OPS = {
    "add_scalar": ("+", False),
    "sub_scalar": ("-", False),
    "rsub_scalar": ("-", True),
    "mul_scalar": ("*", False),
    "div_scalar": ("/", False),
    "rdiv_scalar": ("/", True),
}
INT_RANGES = {"int64": (-(2**63), 2**63 - 1), "int32": (-(2**31), 2**31 - 1)}


def _number(v: Any) -> int | float:
    """A finite int or float, kept as it is (the dtype rules tell 2 from 2.0)."""
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ArgTypeError(f"expected a finite number, got {v!r}")
    return v


SCALAR = ArgType("a finite number", _number)


def _scalar_shape(ctx: OpCtx) -> TensorType:
    symbol, _ = SCALAR_OPS[ctx.node.op]
    no_bool(ctx, symbol)
    s, t, name = ctx["scalar"], ctx.x, ctx.node.inputs[0]
    if symbol == "/":
        no_int_division(ctx)
    if t.dtype in INT_DTYPES:
        if isinstance(s, float):
            raise ctx.fail(
                f"'{symbol}' of the {t.dtype} tensor '{name}' and the float {s!r} would make "
                "a float tensor (torch's type promotion)",
                "dlc converts no dtypes: write an integer, or embed the ids first",
            )
        lo, hi = INT_RANGES[t.dtype]
        if not lo <= s <= hi:
            raise ctx.fail(f"the constant {s} does not fit the {t.dtype} tensor '{name}'")
    return t


for _name, (_symbol, _left) in SCALAR_OPS.items():
    _expr = f"c {_symbol} x" if _left else f"x {_symbol} c"
    register(
        OpDef(
            _name,
            examples=EXAMPLES.get(_name, ()),
            args=(Arg("scalar", SCALAR, doc="the constant c"),),
            shape=_scalar_shape,
            flops=per_element(1),
            category="merge",
            int_inputs=True,
            internal=True,
            doc=f"{_expr} elementwise, for a tensor x and a constant c (`{_expr}` in a spec).",
        )
    )


def _neg_shape(ctx: OpCtx) -> TensorType:
    no_bool(ctx, "-")
    return ctx.x


register(
    OpDef(
        "neg",
        examples=EXAMPLES.get("neg", ()),
        shape=_neg_shape,
        flops=per_element(1),
        category="merge",
        int_inputs=True,
        internal=True,
        doc="-x elementwise (`-x` in a spec).",
    )
)
