"""Tensor arithmetic in a layer position: `a * s`, `a - b`, `x * 0.5`, `1 - x`, `-x`.

The grammar parses `+ - * /` and unary minus the same everywhere; in a layer position
(elaborate.py's `apply`) an arithmetic expression means elementwise ops on tensors. Which
operands are tensors is decided from the names, before anything is elaborated
(`is_tensor`): inputs, graph nodes, layers (an op or block, applied to what flows in,
so `identity * sigmoid` in a stack is x·σ(x)) and arithmetic over any of those are
tensors; numbers, params, block arguments bound to numbers, and arithmetic over them are
constants. Then:

- two tensors: the elementwise op with numpy broadcasting, `add sub mul div` (a chain of
  `+` or of `*` over tensors only is one n-ary add or mul, as `a + b + c` always was);
- a tensor and a constant: an op with the constant as its `scalar` attribute
  (`mul_scalar(%x; scalar=0.5)`; `rsub_scalar` and `rdiv_scalar` for `1 - x`, `2 / x`);
  the constant is computed exactly at compile time (`x * (1 / d)`), and must be a finite
  number (dividing by 0 is an error at the 0);
- unary minus on a tensor: `neg`;
- constants only (`y: 2 * 3`), `// % **` on tensors, a layer with nothing to apply it to
  (`a * dense(4)` in a graph node): located errors with a hint.

The ops, their shape and dtype rules and lowerings are the merge family's
(ops/merge/: rules.py, scalar.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .arith import describe_value
from .dims import format_dim, is_sym
from .errors import DlcError, ElaborationError
from .ops.registry import lookup
from .scope import CONSTANTS, Env, Reported, Scope, Thunk, Word
from .syntax import BinOp, Call, Expr, Name, Neg, Pipe, as_call
from .values import call_text

if TYPE_CHECKING:
    from .elaborate import Elaborator

TENSOR_OPS = {"+": "add", "-": "sub", "*": "mul", "/": "div"}
MAX_CONSTANT = 2**63  # beyond int64, a constant has no exact dtype in torch or ONNX


def apply_arith(el: Elaborator, e: BinOp | Neg, x: str | None, env: Env, scope: Scope) -> str:
    """Elaborate tensor arithmetic applied to what flows in (`x`, None in a graph node)."""
    if isinstance(e, Neg):
        if not is_tensor(el, e.operand, env):
            raise _constants_only(el, e, env)
        v = _operand(el, e.operand, x, env, scope)
        return el.emit("neg", (v,), {}, e.loc, scope)
    left, right = is_tensor(el, e.left, env), is_tensor(el, e.right, env)
    if not (left or right):
        raise _constants_only(el, e, env)
    if e.op not in TENSOR_OPS:
        raise el.fail(
            f"'{e.op}' is not defined on tensors",
            e.loc,
            "tensor arithmetic has + - * / and unary minus"
            + ("; a square is x * x" if e.op == "**" else ""),
        )
    op = TENSOR_OPS[e.op]
    if left and right:
        terms = list(_chain(e)) if e.op in ("+", "*") else [e.left, e.right]
        if len(terms) > 2 and not all(is_tensor(el, t, env) for t in terms):
            terms = [e.left, e.right]  # a constant in the chain: one operator at a time
        values = tuple(_operand(el, t, x, env, scope) for t in terms)
        return el.emit(op, values, {}, e.loc, scope)
    tensor, const = (e.left, e.right) if left else (e.right, e.left)
    c = constant(el, const, env, divisor=e.op == "/" and left)
    v = _operand(el, tensor, x, env, scope)
    if right and e.op in ("-", "/"):
        op = "r" + op  # the constant on the left: 1 - x is rsub_scalar, 2 / x rdiv_scalar
    return el.emit(f"{op}_scalar", (v,), {"scalar": c}, e.loc, scope)


def is_tensor(el: Elaborator, e: Expr, env: Env) -> bool:
    """Whether `e` in a layer position is a tensor (else a constant); unknown names count
    as layers, so that the layer context reports them as it always does."""
    if isinstance(e, Call | Pipe):
        return True
    if isinstance(e, Neg):
        return is_tensor(el, e.operand, env)
    if isinstance(e, BinOp):
        return is_tensor(el, e.left, env) or is_tensor(el, e.right, env)
    if not isinstance(e, Name):
        return False  # a number, a string, a list
    if env.tensor(e.id) is not None:
        return True
    found, const = env.const(e.id)
    if found:
        if isinstance(const, Thunk):
            return is_tensor(el, const.expr, const.env)
        if isinstance(const, str) and e.id in el.param_defs:  # a param's text: a layer?
            try:
                expr = el.parse_param(e.id)
            except (DlcError, Reported):
                return False  # free text: a string constant, reported as one
            with el.in_param(e.id):
                return is_tensor(el, expr, el.global_env)
        return False
    return e.id not in el.dim_names and e.id not in CONSTANTS


def constant(el: Elaborator, e: Expr, env: Env, *, divisor: bool = False) -> int | float:
    """The value of a constant operand: a finite number, exact as arith.py computes it."""
    v = el.value(e, env)
    if isinstance(v, Word):
        raise el.unknown_name(v.text, v.loc, env, layer=False)
    if is_sym(v):
        raise el.fail(
            f"the symbolic dim {format_dim(v)} is not a constant: its size is known only "
            "when the model runs",
            e.loc,
            "tensor arithmetic takes numbers and params; give the size a value under params:",
        )
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise el.fail(
            f"tensor arithmetic takes a number here, got {describe_value(v)}",
            e.loc,
            "the other operand is a tensor: this one must be a tensor or a number",
        )
    if isinstance(v, float) and not math.isfinite(v):
        raise el.fail(f"the constant {v} is not a finite number", e.loc)
    if isinstance(v, int) and abs(v) >= MAX_CONSTANT:
        raise el.fail(f"the constant {v} is too large for a tensor's dtype", e.loc)
    if divisor and v == 0:
        raise el.fail("division by zero", e.loc, "divide by a nonzero number")
    return v


def _operand(el: Elaborator, e: Expr, x: str | None, env: Env, scope: Scope) -> str:
    """A tensor operand's IR value. A layer with nothing flowing in (a graph node's
    `a * dense(4)`) is reported here, where the arithmetic explains why it needs one."""
    if x is None and _layer_without_input(el, e, env):
        call = e if isinstance(e, Call) else as_call(e) if isinstance(e, Name) else None
        assert call is not None
        raise el.fail(
            f"{call.name} has no input here: the operands of tensor arithmetic are tensors",
            e.loc,
            f"apply it to a node or an input h first: (h -> {call_text(call)})",
        )
    return el.apply(e, x, env, scope)


def _layer_without_input(el: Elaborator, e: Expr, env: Env) -> bool:
    """An op or block call that apply_call would find nothing to apply to: not a
    combinator or a merge of tensor arguments, and not `softmax(h)` (which means h ->
    softmax)."""
    if isinstance(e, Name):
        if env.tensor(e.id) is not None or env.const(e.id)[0]:
            return False
        e = as_call(e)
    if not isinstance(e, Call):
        return False
    opdef = lookup(e.name)
    if opdef is None and e.name not in el.blocks:
        return False  # an unknown name: the layer context reports it
    if opdef is not None and (opdef.kind != "op" or opdef.varargs is not None):
        return False
    first = e.args[0] if e.args else None
    return not (isinstance(first, Name) and env.tensor(first.id) is not None)


def _constants_only(el: Elaborator, e: Expr, env: Env) -> ElaborationError:
    v: Any = el.value(e, env)
    what = describe_value(v) if not isinstance(v, Word) else "a constant"
    return el.fail(
        f"expected a layer or a tensor here, got {what} (arithmetic over constants only)",
        e.loc,
        "tensor arithmetic needs a tensor operand, an input or a node: x * 0.5",
    )


def _chain(e: Expr) -> Iterator[Expr]:
    """The operands of a chain of one operator: a + b + c -> a, b, c."""
    assert isinstance(e, BinOp)
    for side in (e.left, e.right):
        if isinstance(side, BinOp) and side.op == e.op:
            yield from _chain(side)
        else:
            yield side
