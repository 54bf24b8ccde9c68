"""Combinators: residual, highway, repeat, parallel, and stochastic_depth, and the
internal ops that residual and highway expand to (residual_add, highway_gate).

They take sub-networks (`BODY` arguments, passed unevaluated) and are rewritten by
elaboration into plain ops through their `expand` rule, which receives the elaborator,
the bound arguments, the incoming tensor and a fresh naming scope, and returns the IR
value that the combinator produces. They never reach the IR themselves.

`stochastic_depth(p)` drops a residual branch, so it is valid only as the last op of a
`residual(...)` body: `residual` keeps a record of the stochastic_depth ops elaborated
inside its body (`_DROPS`, per elaborator) and checks that the one it has is its
body's result; one elaborated outside any residual is an error where it is written.
`repeat` and its index form `repeat(n, i -> body)` are in repeat.py.
"""

from __future__ import annotations

from typing import Any
from weakref import WeakKeyDictionary

from ...dims import format_shape
from ...errors import Loc
from ...ir import InitSpec, ParamSpec, TensorType
from ..common import GLOROT_UNIFORM, ZEROS, numel, shapes_equal
from ..linear import features
from ..norm import DROP_PATH_ARGS
from ..registry import AXIS, BODY, NONNEG_INT, NUMBER, Arg, OpCtx, OpDef, choice, register
from .examples import ERRORS, EXAMPLES
from .repeat import expand_repeat


def _need_input(el: Any, x: str | None, name: str, loc: Loc | None) -> str:
    if x is None:
        raise el.fail(
            f"{name} has no input here", loc, f"start the pipeline with a tensor: x -> {name}(...)"
        )
    return x


# Per elaborator, a stack with one entry per residual body being elaborated: the
# indices (into el.nodes) of the stochastic_depth ops elaborated in it so far.
_DROPS: WeakKeyDictionary[Any, list[list[int]]] = WeakKeyDictionary()

_DROP_HINT = "write it last in the body: residual(dense(64) -> relu -> stochastic_depth(0.1))"


def _residual(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "residual", loc)
    body = args["body"]
    bodies = _DROPS.setdefault(el, [])
    bodies.append([])
    try:
        out = el.apply(body.expr, x, body.env, scope)
    finally:
        drops = bodies.pop()
    for i in drops:
        if el.nodes[i].name != out:
            raise el.fail(
                "stochastic_depth must be the last op of the residual body: it drops the "
                "whole branch before x is added",
                el.nodes[i].loc,
                _DROP_HINT,
            )
    return el.emit("residual_add", (x, out), {}, loc, scope, "add")


def _stochastic_depth(
    el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None
) -> str:
    if not _DROPS.get(el):
        raise el.fail(
            "stochastic_depth is valid only inside residual(...): it drops the residual "
            "branch, so that x passes alone",
            loc,
            _DROP_HINT,
        )
    x = _need_input(el, x, "stochastic_depth", loc)
    out = el.emit("drop_path", (x,), args, loc, scope, "drop_path")
    _DROPS[el][-1].append(len(el.nodes) - 1)
    return out


def _highway(el: Any, args: dict, x: str | None, env: Any, scope: Any, loc: Loc | None) -> str:
    x = _need_input(el, x, "highway", loc)
    body = args["body"]
    h = el.apply(body.expr, x, body.env, scope)
    return el.emit("highway_gate", (x, h), {"gate_bias": args["gate_bias"]}, loc, scope, "gate")


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
        examples=EXAMPLES.get("residual", ()),
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
        examples=EXAMPLES.get("highway", ()),
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
        examples=EXAMPLES.get("repeat", ()),
        errors=ERRORS["repeat"],
        args=(Arg("n", NONNEG_INT), Arg("body", BODY)),
        kind="combinator",
        expand=expand_repeat,
        category="combinator",
        doc="body applied n times, each with its own weights; repeat(0, body) is the identity; "
        "in repeat(n, i -> body) each copy's arguments see its index i = 0 .. n-1.",
    )
)
register(
    OpDef(
        "parallel",
        examples=EXAMPLES.get("parallel", ()),
        args=(Arg("merge", choice("concat", "add"), "concat"), Arg("axis", AXIS, -1)),
        varargs=Arg("branches", BODY),
        kind="combinator",
        expand=_parallel,
        category="combinator",
        doc="Branches on the same input, merged by concat or add.",
    )
)
register(
    OpDef(
        "stochastic_depth",
        examples=EXAMPLES.get("stochastic_depth", ()),
        args=DROP_PATH_ARGS,
        kind="combinator",
        expand=_stochastic_depth,
        category="regularization",
        doc="The last op of a residual body: in training the branch is dropped with "
        "probability p per sample and scaled by 1/(1-p) otherwise "
        "(torchvision.ops.stochastic_depth, mode=row); the identity at inference.",
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
        examples=EXAMPLES.get("residual_add", ()),
        arity=2,
        shape=_residual_shape,
        flops=lambda ctx, out: numel(out),
        category="merge",
        int_inputs=True,
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
        examples=EXAMPLES.get("highway_gate", ()),
        args=(Arg("gate_bias", NUMBER, 0.0),),
        arity=2,
        shape=_highway_shape,
        params=_highway_params,
        flops=lambda ctx, out: (2 * features(ctx) + 8) * numel(out),
        category="merge",
        int_inputs=True,
        internal=True,
        doc="T ⊙ h + (1 - T) ⊙ x with the gate T = sigmoid(W_T x + b_T).",
    )
)
