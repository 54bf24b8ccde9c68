"""`verify`: the IR's invariants, checked against the op registry, after any pass.

The IR (ir.py) knows no ops; this module does: every node must apply a known op of
kind "op", to values defined before it, with as many inputs as the op takes, and with
attributes that are exactly the op's arguments (names), each value one the argument's
type accepts. A failure is a bug in dlc, not a user's mistake, so it is an assert.
"""

from __future__ import annotations

from .ir import Graph, Node
from .ops import REGISTRY
from .ops.registry import ArgTypeError, OpDef


def verify(g: Graph, *, typed: bool = False) -> None:
    """Check the graph's invariants (and that every node is typed, if `typed`)."""
    seen: set[str] = set()
    attrs_ok: set[tuple[str, tuple]] = set()  # (op, attrs) already checked: nodes repeat them
    for i in g.inputs:
        assert i.name not in seen, f"duplicate input {i.name}"
        seen.add(i.name)
    for n in g.nodes:
        assert n.name and n.name not in seen, f"duplicate or empty value name {n.name!r}"
        opdef = REGISTRY.get(n.op)
        assert opdef is not None and opdef.kind == "op", f"{n.name}: unknown op {n.op!r}"
        for src in n.inputs + n.weights_of:
            assert src in seen, f"{n.name} uses {src!r} before it is defined"
        assert opdef.accepts_arity(len(n.inputs)), f"{n.name}: {len(n.inputs)} inputs to {n.op}"
        assert isinstance(n.inputs, tuple) and isinstance(n.attrs, tuple)
        if (n.op, n.attrs) not in attrs_ok:
            _check_attrs(n, opdef)
            attrs_ok.add((n.op, n.attrs))
        if typed:
            assert n.type is not None, f"{n.name} has no type"
        seen.add(n.name)
    assert g.outputs, "a graph needs an output"
    for name, value in g.outputs:
        assert value in seen, f"output {name} names unknown value {value!r}"


def _check_attrs(n: Node, opdef: OpDef) -> None:
    """The attributes are the op's arguments, sorted, each value of the argument's type."""
    keys = [k for k, _ in n.attrs]
    assert keys == sorted(keys), f"{n.name}: attrs are not sorted"
    expected = sorted(a.name for a in opdef.args)
    assert keys == expected, f"{n.name}: attrs {keys} are not {n.op}'s arguments {expected}"
    for key, value in n.attrs:
        arg = opdef.arg(key)
        assert arg is not None
        if arg.type.kind != "value" or (value is None and arg.default is None):
            continue  # inits, bodies and node names are bound by elaboration itself
        try:
            arg.type.coerce(value)
        except ArgTypeError as e:
            raise AssertionError(f"{n.name}: attribute {key}={value!r}: {e}") from None
