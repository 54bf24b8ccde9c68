"""The IR's invariants: immutability, the verifier, the canonical text form."""

from __future__ import annotations

import dataclasses
import os

import pytest

from conftest import ROOT, SPECS
from dlc.compiler.dims import sym
from dlc.compiler.ir import Graph, GraphInput, Node, TensorType, format_graph
from dlc.compiler.passes import prune
from dlc.compiler.pipeline import check_file, check_text
from dlc.compiler.verify import verify

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
        # the attributes are exactly the op's arguments, each of the argument's type
        ((Node("a", "leaky_relu", ("x",)),), (("y", "a"),), "are not leaky_relu's arguments"),
        (
            (Node("a", "leaky_relu", ("x",), (("slope", 0.1), ("tilt", 1))),),
            (("y", "a"),),
            "are not leaky_relu's arguments",
        ),
        (
            (Node("a", "leaky_relu", ("x",), (("slope", "steep"),)),),
            (("y", "a"),),
            "attribute slope='steep': expected a number",
        ),
        (
            (Node("a", "dropout", ("x",), (("p", 1.5),)),),
            (("y", "a"),),
            "expected a probability",
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
    assert str(g) == format_graph(g)


GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_ir_text_is_golden(spec) -> None:  # noqa: ANN001
    """The canonical text of every spec's checked IR, whole, against tests/golden/ (after a
    deliberate change to the IR or an op: DLC_UPDATE_GOLDEN=1 pytest tests/test_ir.py)."""
    checked = check_file(spec)
    graphs = [c.graph for _, c in checked.networks] or [checked.graph]  # a GAN's two
    text = "\n".join(format_graph(g) for g in graphs) + "\n"
    golden = GOLDEN / f"{spec.stem}.ir"
    if os.environ.get("DLC_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.read_text() == text


def test_a_node_with_its_arguments_verifies() -> None:
    verify(Graph("g", (X,), (Node("a", "leaky_relu", ("x",), (("slope", 0.1),)),), (("y", "a"),)))


def test_the_ir_module_imports_nothing_from_ops() -> None:
    source = (ROOT / "compiler" / "ir.py").read_text()
    assert "from .ops" not in source and "import ops" not in source


PRUNED = """dlc: 1
name: pruned
inputs: {x: [B, 4]}
model:
  h: x -> dense(8)
  extra: h -> tanh
  y: h -> relu
outputs: {y: y}
"""


def test_prune_keeps_what_the_outputs_need() -> None:
    g = check_text(PRUNED).graph
    names = [n.name for n in g.nodes]
    assert "extra" in names
    kept = prune(g)
    assert [n.name for n in kept.nodes] == [n for n in names if n != "extra"]
    assert [n.name for n in prune(g, ("extra",)).nodes] == ["h", "extra"]
    verify(kept, typed=True)
