"""Combinators: residual, highway, repeat, parallel.

They take sub-networks (`BODY` arguments, passed unevaluated) and are rewritten by
elaboration into plain ops through their `expand` rule, which receives the elaborator,
the bound arguments, the incoming tensor and a fresh naming scope, and returns the IR
value that the combinator produces. They never reach the IR themselves.
"""

from __future__ import annotations

from typing import Any

from ..errors import Loc
from .registry import AXIS, BODY, NUMBER, POS_INT, Arg, OpDef, choice, register

MAX_REPEAT = 10_000  # copies; a bound on what one line of a spec can make


def _need_input(el: Any, x: str | None, name: str, loc: Loc | None) -> str:
    if x is None:
        raise el.fail(
            f"{name} has no input here", loc, f"start the pipeline with a tensor: x -> {name}(...)"
        )
    return x


def _residual(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "residual", loc)
    body = args["body"]
    out = el.apply(body.expr, x, body.env, scope)
    return el.emit("residual_add", (x, out), {}, loc, scope, "add")


def _highway(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "highway", loc)
    body = args["body"]
    h = el.apply(body.expr, x, body.env, scope)
    return el.emit("highway_gate", (x, h), {"gate_bias": args["gate_bias"]}, loc, scope, "gate")


def _repeat(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "repeat", loc)
    n, body = args["n"], args["body"]
    if n > MAX_REPEAT:
        raise el.fail(f"repeat({n}, ...) is more than {MAX_REPEAT} copies", loc)
    for i in range(n):
        x = el.apply(body.expr, x, body.env, scope.child(str(i)))
    return x


def _parallel(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "parallel", loc)
    branches = args["*"]
    if len(branches) < 2:
        raise el.fail(
            f"parallel needs at least 2 branches, got {len(branches)}",
            loc,
            "parallel(dense(64), dense(64) -> relu, merge=concat)",
        )
    outs = tuple(el.apply(b.expr, x, b.env, scope.child(str(i))) for i, b in enumerate(branches))
    if args["merge"] == "add":
        return el.emit("add", outs, {}, loc, scope, "add")
    return el.emit("concat", outs, {"axis": args["axis"]}, loc, scope, "concat")


register(
    OpDef(
        "residual",
        args=(Arg("body", BODY),),
        kind="combinator",
        expand=_residual,
        category="combinator",
        doc="x + body(x); the shapes must agree.",
    )
)
register(
    OpDef(
        "highway",
        args=(Arg("body", BODY), Arg("gate_bias", NUMBER, 0.0)),
        kind="combinator",
        expand=_highway,
        category="combinator",
        doc="T(x) ⊙ body(x) + (1 - T(x)) ⊙ x, T(x) = sigmoid(W_T x + b_T).",
    )
)
register(
    OpDef(
        "repeat",
        args=(Arg("n", POS_INT), Arg("body", BODY)),
        kind="combinator",
        expand=_repeat,
        category="combinator",
        doc="body applied n times, each with its own weights.",
    )
)
register(
    OpDef(
        "parallel",
        args=(Arg("merge", choice("concat", "add"), "concat"), Arg("axis", AXIS, -1)),
        varargs=Arg("branches", BODY),
        kind="combinator",
        expand=_parallel,
        category="combinator",
        doc="Branches on the same input, merged by concat or add.",
    )
)
