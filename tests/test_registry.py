"""Table-driven tests over the op registry: each op's own examples and error cases (its
OpDef's `examples` and `errors`) give its shape rule's cases (concrete and symbolic) and
its argument checking, with the message and the place. Front end only: no torch here
(the parameters against torch.nn are test_parity's)."""

from __future__ import annotations

import pytest

from conftest import check_layer, checked_example
from dlc.compiler.errors import DlcError
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example, Failure


def test_every_op_has_examples() -> None:
    assert [name for name, opdef in REGISTRY.items() if not opdef.examples] == []


CASES = [(name, e) for name, opdef in REGISTRY.items() for e in opdef.examples]


@pytest.mark.parametrize(
    ("op", "example"), CASES, ids=[f"{c[0]}:{c[1].layer}:{c[1].shape}" for c in CASES]
)
def test_shape_rule(op: str, example: Example) -> None:
    checked = checked_example(example)
    out = dict(checked.graph.outputs)["y"]
    assert str(checked.graph.types()[out]) == example.out
    if REGISTRY[op].kind == "op":
        assert op in {n.op for n in checked.graph.nodes}


ERROR_CASES = [(name, f) for name, opdef in REGISTRY.items() for f in opdef.errors]


@pytest.mark.parametrize(("op", "failure"), ERROR_CASES, ids=[c[1].layer for c in ERROR_CASES])
def test_argument_errors(op: str, failure: Failure) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(failure.layer, failure.shape)
    assert failure.message in info.value.render()
    loc = info.value.loc
    assert loc is not None and loc.line == 6  # the layer line of one_layer's spec
    assert loc.col - 4 == failure.col  # the layer text starts at column 5


def test_rbf_and_highway_params() -> None:
    assert check_layer("rbf(10)", "[B, 3]").graph.num_params == 10 * 3 + 10
    assert check_layer("rbf(10, learn_sigma=false)", "[B, 3]").graph.num_params == 30
    # highway: body dense(16) + gate (16x16 + 16)
    assert check_layer("highway(dense(16))", "[B, 16]").graph.num_params == 2 * (16 * 16 + 16)


def test_every_op_documents_itself() -> None:
    for name, opdef in REGISTRY.items():
        assert opdef.doc, name
        assert opdef.kind in ("op", "combinator"), name
        if opdef.kind == "op":
            assert opdef.shape is not None, name
