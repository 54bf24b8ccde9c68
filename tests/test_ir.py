"""The IR's invariants: immutability, the verifier, the canonical text form."""

from __future__ import annotations

import dataclasses

import pytest

from dlc.compiler.dims import sym
from dlc.compiler.ir import Graph, GraphInput, Node, TensorType, format_graph
from dlc.compiler.pipeline import check_file
from dlc.compiler.verify import verify
from helpers import SPECS

X = GraphInput("x", TensorType((sym("B"), 4)))


def test_nodes_are_frozen() -> None:
    n = Node("a", "relu", ("x",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        n.name = "b"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("nodes", "outputs", "message"),
    [
        ((Node("a", "relu", ("b",)),), (("y", "a"),), "uses 'b' before it is defined"),
        ((Node("a", "relu", ("x",)), Node("a", "tanh", ("x",))), (("y", "a"),), "duplicate"),
        ((Node("a", "nope", ("x",)),), (("y", "a"),), "unknown op"),
        ((Node("a", "relu", ("x", "x")),), (("y", "a"),), "2 inputs to relu"),
        ((Node("a", "relu", ("x",)),), (("y", "z"),), "unknown value"),
        (
            (Node("a", "dense", ("x",), (("units", 3), ("bias", True))),),
            (("y", "a"),),
            "not sorted",
        ),
    ],
)
def test_verify_rejects_broken_graphs(nodes, outputs, message) -> None:  # noqa: ANN001
    with pytest.raises(AssertionError, match=message):
        verify(Graph("g", (X,), nodes, outputs))


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_checked_specs_verify_typed(spec) -> None:  # noqa: ANN001
    g = check_file(spec).graph
    verify(g, typed=True)
    text = format_graph(g)
    assert text.startswith(f"graph {g.name}(") and text.endswith("}")
    assert str(g) == text
    assert len(text.splitlines()) == len(g.nodes) + 3
