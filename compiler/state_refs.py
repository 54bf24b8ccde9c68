"""Elaboration of a recurrent net's final state: the references `enc.h`, `enc.c` and the
`initial=` argument that starts a net from a state.

The IR keeps one output per node. A part of a node's final state is therefore a node of
its own, the internal op `state(enc; part=h)` (ops/recurrent), whose lowerings take that
part from what the recurrent node computes anyway: the second and third results of
torch's nn.LSTM, the Y_h and Y_c outputs of the same native ONNX node. Which ops have a
state, and its parts, is their OpDef's `state` (rnn, gru: h; lstm: h and c).

- `enc.h` (a dotted name, schema/expr.lark's DOTTED) where a tensor stands: the state
  node of node `enc`'s part `h`. `enc` must name a node with a state, and `h` be one of
  its parts; anything else is an error at the reference.
- `initial=` (an argument of kind "state", registry.INITIAL_STATE) gives the node more
  inputs after x, one per part of its own state, in order, and its attribute says
  whether it did (as for an argument of kind "input"): a list `[h, c]` of tensors as they
  are; or one expression: a node with a state gives the parts that the consumer takes (an
  lstm's h for a gru), any other tensor is h itself (so an lstm needs the list); `none`
  (the default, also as a block argument) gives none: the net starts from zeros.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import ElaborationError, did_you_mean
from .ir import Node
from .ops.registry import REGISTRY, OpDef
from .scope import CONSTANTS, Env, Scope, Thunk
from .syntax import Expr, ListExpr, Name

if TYPE_CHECKING:
    from .elaborate import Elaborator

STATE_OP = "state"  # the internal op of one part of a final state (ops/recurrent)


def _stateful() -> str:
    return ", ".join(name for name, d in REGISTRY.items() if d.state)


def _producer(el: Elaborator, value: str) -> Node | None:
    """The IR node whose result `value` is (None for a graph input)."""
    return next((n for n in reversed(el.nodes) if n.name == value), None)


def _describe(node: Node | None, name: str) -> str:
    return f"input '{name}'" if node is None else f"node '{name}' ({node.op})"


def _state(el: Elaborator, value: str, part: str, loc: Any, scope: Scope) -> str:
    return el.emit(STATE_OP, (value,), {"part": part}, loc, scope)


def state_reference(el: Elaborator, e: Name, x: str | None, env: Env, scope: Scope) -> str:
    """`enc.h`: the node of part h of node enc's final state."""
    base, part = e.id.split(".", 1)
    if x is not None:
        raise el.fail(
            f"'{e.id}' is a tensor, not a layer: '-> {e.id}' would drop what flows into it",
            e.loc,
            f"start a pipeline from it instead: {e.id} -> ...",
        )
    value = el.apply(e._replace(id=base, span=(e.span[0], e.span[0] + len(base))), None, env,
                     scope)  # fmt: skip
    node = _producer(el, value)
    parts = REGISTRY[node.op].state if node is not None else ()
    if not parts:
        raise el.fail(
            f"'{e.id}': {_describe(node, base)} has no final state to take '.{part}' from",
            e.loc,
            f"only the recurrent nets ({_stateful()}) have one: .h, and .c of an lstm",
        )
    if part not in parts:
        assert node is not None
        cell = " (only an lstm has a cell state .c)" if part == "c" else ""
        raise el.fail(
            f"'{e.id}': a {node.op} has no state part '{part}'{did_you_mean(part, parts)}",
            e.loc,
            f"the final state of a {node.op} is {', '.join('.' + p for p in parts)}{cell}",
        )
    return _state(el, value, part, e.loc, scope)


def initial_inputs(el: Elaborator, opdef: OpDef, bound: dict[str, Any], scope: Scope) -> tuple:
    """The node's inputs that its arguments of kind "state" give (`bound` holds them as
    Thunks, and gets whether each was given instead): an `initial=` state, one tensor per
    part."""
    out: list[str] = []
    for a in opdef.args:
        if a.type.kind == "state":
            thunk = bound[a.name]
            given = thunk is not None and not _is_none(thunk.expr, thunk.env)
            if given:
                out += _initial(el, opdef, thunk.expr, thunk.env, scope)
            bound[a.name] = given
    return tuple(out)


def _is_none(e: Expr, env: Env) -> bool:
    """`initial=none` (the default written out), also through a block argument or param:
    no state is given."""
    if not isinstance(e, Name):
        return False
    found, const = env.const(e.id)
    if found and isinstance(const, Thunk):
        return _is_none(const.expr, const.env)
    return const is None if found else CONSTANTS.get(e.id, False) is None


def _initial(el: Elaborator, opdef: OpDef, expr: Expr, env: Env, scope: Scope) -> list[str]:
    parts = opdef.state
    want = f"[{', '.join(parts)}]" if len(parts) > 1 else parts[0]
    if isinstance(expr, ListExpr):
        values = [el.apply(item, None, env, scope) for item in expr.items]
        if len(values) != len(parts):
            raise _count(el, opdef, expr, len(values), want)
        return values
    value = el.apply(expr, None, env, scope)
    node = _producer(el, value)
    have = REGISTRY[node.op].state if node is not None else ()
    if not have:  # a plain tensor: h itself
        if len(parts) != 1:
            raise _count(el, opdef, expr, 1, want)
        return [value]
    assert node is not None
    missing = [p for p in parts if p not in have]
    if missing:
        raise el.fail(
            f"{opdef.name} starts from a state ({', '.join(parts)}), but {node.op} node "
            f"'{value}' has no {' or '.join(missing)}",
            expr.loc,
            f"give the parts one by one: initial={want}",
        )
    return [_state(el, value, p, expr.loc, scope) for p in parts]


def _count(el: Elaborator, opdef: OpDef, expr: Expr, got: int, want: str) -> ElaborationError:
    parts = opdef.state
    return el.fail(
        f"{opdef.name}'s initial state is {len(parts)} tensor{'s' * (len(parts) > 1)} "
        f"({', '.join(parts)}), got {got}",
        expr.loc,
        f"write initial={want}, or initial=enc with enc a recurrent node that has them",
    )
