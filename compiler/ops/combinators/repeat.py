"""`repeat(n, body)`: n copies of a body, each with its own weights, and its index form
`repeat(n, i -> body)`, where each copy sees its number i = 0 .. n-1 in its arguments:

    repeat(3, i -> stage(64 * 2**i, stride=2))     stages of 64, 128 and 256 channels

The rule that makes `i` the index. Repeat's body (after following the block arguments
and string params that name it) is a pipeline of two or more terms whose first term is a
bare name. That name keeps whatever meaning it has in a layer position today:

- an input, a graph node or a block's `x`: the pipeline starts from that tensor;
- an op or a block: `relu -> dense(4)` is relu, then dense;
- a param or a block argument that holds a layer (`act: relu`): that layer.

A name that means none of these is the index: an integer in the body's arithmetic, in the
arguments of the ops and block calls in it and in nested repeats (`repeat(2, i ->
repeat(3, j -> dense(8 * (i + j + 1))))`); the blocks the body calls see it only through
their arguments. The index is an error, located at it, where it would hide a name the body
may use: a param or a block argument that holds a value, the index of an enclosing
repeat, a symbolic dim of the inputs, or `true`/`false`/`none`/`null`. An index that the
body never uses is an error too: a name close to an op (`rleu -> dense(4)`) is reported
as the unknown op it was before indices existed, any other as an unused index.

A mistake in one copy (`dense(8 - 4 * i)` with i = 2) gets the note `in repeat copy
i = 2`, with the block calls around it (values.py's call notes). Copies are named
`repeat.0`, `repeat.1`, ... as without an index; `repeat(0, ...)` is the identity, its
body checked for the rule above but not elaborated.
"""

from __future__ import annotations

from typing import Any

from ...errors import DlcError, Loc, did_you_mean
from ...scope import CONSTANTS, Env, IndexEnv, Thunk
from ...syntax import BinOp, Expr, ListExpr, Name, Neg, Num, Pipe, Str, references
from ..registry import lookup, public_names

MAX_REPEAT = 10_000  # copies; a bound on what one line of a spec can make
MAX_HOPS = 32  # block arguments and string params followed to find a repeat's body


def expand_repeat(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    if x is None:
        raise el.fail(
            "repeat has no input here", loc, "start the pipeline with a tensor: x -> repeat(...)"
        )
    n, body = args["n"], args["body"]
    if n > MAX_REPEAT:
        raise el.fail(f"repeat({n}, ...) is more than {MAX_REPEAT} copies", loc)
    indexed = _indexed_body(el, body)
    if indexed is None:
        for i in range(n):
            x = el.apply(body.expr, x, body.env, scope.child(str(i)))
        return x
    index, expr, body_env = indexed
    for i in range(n):
        with el.in_copy(index, i, loc):
            copy_env = IndexEnv({index: i}, body_env.tensors, body_env)
            x = el.apply(expr, x, copy_env, scope.child(str(i)))
    return x


def _indexed_body(el: Any, body: Thunk) -> tuple[str, Expr, Env] | None:
    """The index name, the body without it and the body's environment, if the body
    binds an index; None if it does not (raises if it names one wrongly)."""
    expr, env = _resolve(el, body.expr, body.env)
    if not isinstance(expr, Pipe) or not isinstance(expr.stages[0], Name):
        return None
    first = expr.stages[0]
    name = first.id
    if env.tensor(name) is not None or name in el.blocks or lookup(name) is not None:
        return None
    found, const = env.const(name)
    if found and not _holds_value(el, const, name):
        return None  # a param or an argument that holds a layer: `act -> dense(4)`
    clash = _clash(el, name, env) if found else None
    if clash is None and name in el.dim_names:
        clash = "a symbolic dim of the inputs"
    if clash is None and name in CONSTANTS:
        clash = "a constant"
    if clash is not None:
        raise el.fail(
            f"repeat's index '{name}' is also {clash}",
            first.loc,
            "name the index something else, as in repeat(3, k -> dense(8 * 2**k))",
        )
    rest = expr.stages[1:]
    if not any(r.id == name for stage in rest for r in references(stage)):
        if did_you_mean(name, set(el.blocks) | set(env.tensors), public_names()):
            raise el.unknown_name(name, first.loc, env, layer=True)
        raise el.fail(
            f"repeat's index '{name}' is not used in its body",
            first.loc,
            f"'{name}' is no op, block, node or param, so it names the copy's index: use it "
            f"in an argument, as in repeat(3, {name} -> dense(8 * 2**{name})), or drop "
            f"'{name} ->'",
        )
    return name, rest[0] if len(rest) == 1 else expr._replace(stages=rest), env


def _resolve(el: Any, expr: Expr, env: Env) -> tuple[Expr, Env]:
    """The expression a body names through block arguments and string params (`wrap(f):
    [repeat(3, f)]` called as `wrap(i -> dense(8 * 2**i))`); the body itself otherwise."""
    for _ in range(MAX_HOPS):
        if not isinstance(expr, Name) or env.tensor(expr.id) is not None:
            break
        found, const = env.const(expr.id)
        if found and isinstance(const, Thunk):
            expr, env = const.expr, const.env
        elif found and isinstance(const, str) and expr.id in el.param_defs:
            # A syntax error is reported from here, as a layer would report it.
            expr, env = el.parse_param(expr.id), el.global_env
        else:
            break
    return expr, env


def _holds_value(el: Any, const: Any, name: str) -> bool:
    """Whether a param's or a block argument's value is a value (a number, a list, free
    text, a dim) rather than a layer, following the names it is written as."""
    for _ in range(MAX_HOPS):
        if isinstance(const, Thunk):
            expr, env = const.expr, const.env
        elif isinstance(const, str) and name in el.param_defs:
            text = el.param_defs[name].text
            if text is None:
                return True
            try:  # not el.parse_param: a failure here is no error, so it is not kept
                expr, env = text.parse(), el.global_env
            except DlcError:
                return True  # free text
        else:
            return True  # a number, a boolean, none or a list
        if isinstance(expr, Num | Str | ListExpr | Neg):
            return True
        if isinstance(expr, BinOp):
            return expr.op != "+"  # `a + b` may add two layers' results
        if not isinstance(expr, Name):
            return False  # a call or a pipeline: a layer
        name = expr.id
        found, const = env.const(name)
        if not found:
            return name in el.dim_names or name in CONSTANTS
    return False


def _clash(el: Any, name: str, env: Env) -> str:
    """What the name that an index would hide is: where it is bound in `env`'s chain."""
    link: Env | None = env
    while link is not None and name not in link.consts:
        link = link.parent
    if isinstance(link, IndexEnv):
        return "the index of an enclosing repeat"
    if link is not None and link.consts is el.global_env.consts:
        return f"a param (defined at {el.param_defs[name].loc})"
    return "an argument of the block"
