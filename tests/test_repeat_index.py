"""`repeat(n, i -> body)`: the copy's index in the body's arguments. Each copy's widths in
the IR, parameter counts against a hand count, which leading names bind the index and
which keep their meaning, and parity of both lowerings on a spec that uses it (torch vs
onnxruntime, and `dlc compile --verify`). The located errors are rows of the combinators'
ERRORS table (test_registry) and of tests/test_errors.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ATOL, RTOL, random_weights, run_dlc
from dlc.compiler.pipeline import Checked, check_text
from dlc.compiler.summary import summary_json


def checked(body: str, head: str = "inputs: {x: [B, 16]}\n", overrides=()) -> Checked:  # noqa: ANN001
    return check_text("dlc: 1\nname: t\n" + head + body, "t.yaml", overrides)


def units(c: Checked, op: str = "dense") -> dict[str, int]:
    key = "filters" if op.startswith("conv") else "units"
    return {n.name: n.attr(key) for n in c.graph.nodes if n.op == op}


def out_type(c: Checked) -> str:
    return str(c.graph.types()[dict(c.graph.outputs)["y"]])


def test_each_copy_has_its_own_width_and_the_parameters_add_up() -> None:
    c = checked("model: ['repeat(4, i -> dense(w * 2**i) -> relu)']\n",
                "params: {w: 4}\ninputs: {x: [B, 3]}\n")  # fmt: skip
    assert units(c) == {f"repeat.{i}.dense": 4 * 2**i for i in range(4)}
    assert out_type(c) == "[B, 32]"
    # dense(a -> b) has a*b weights and b biases: 3->4, 4->8, 8->16, 16->32
    hand = (3 * 4 + 4) + (4 * 8 + 8) + (8 * 16 + 16) + (16 * 32 + 32)
    assert c.graph.num_params == hand == 744
    assert summary_json(c.graph)["total_params"] == 744


@pytest.mark.parametrize(
    ("body", "widths"),
    [
        ("i -> dense(i + 1)", [1, 2, 3, 4]),
        ("i -> dense(2**i)", [1, 2, 4, 8]),
        ("i -> dense(w // (i + 1))", [12, 6, 4, 3]),
        ("k -> dense(w - 3 * k) -> relu", [12, 9, 6, 3]),
        ("i -> dense(w / (i + 1) * 2)", [24, 12, 8, 6]),  # `/` giving whole numbers is fine
        ("i -> dense(units=(i + 1) * F)", [4, 8, 12, 16]),  # a dim that is a param
    ],
)
def test_the_index_in_argument_arithmetic(body: str, widths: list[int]) -> None:
    c = checked(f"model: ['repeat(4, {body})']\n", "params: {w: 12, F: 4}\ninputs: {x: [B, 16]}\n")
    assert list(units(c).values()) == widths


def test_the_index_in_block_call_arguments_conv_stages() -> None:
    c = checked(
        "blocks:\n"
        "  'stage(c, stride=1)':\n"
        "    - conv2d(c, 3, stride=stride, padding=1, bias=false) -> batchnorm -> relu\n"
        "model:\n  - repeat(3, i -> stage(8 * 2**i, stride=2))\n",
        "inputs: {x: [B, 3, 32, 32]}\n",
    )
    assert units(c, "conv2d") == {"repeat.0.stage.conv2d": 8, "repeat.1.stage.conv2d": 16,
                                  "repeat.2.stage.conv2d": 32}  # fmt: skip
    assert out_type(c) == "[B, 32, 4, 4]"
    conv = 8 * 3 * 9 + 16 * 8 * 9 + 32 * 16 * 9  # no bias
    norm = 2 * (8 + 16 + 32)  # batchnorm's weight and bias (running statistics are buffers)
    assert c.graph.num_params == conv + norm == 6088


def test_nested_repeats_see_every_enclosing_index() -> None:
    c = checked("model: ['repeat(2, i -> repeat(3, j -> dense(8 * (i + j + 1))))']\n")
    assert units(c) == {
        f"repeat.{i}.repeat.{j}.dense": 8 * (i + j + 1) for i in range(2) for j in range(3)
    }
    # an enclosing index in the count of an inner repeat, and in a block's argument
    c = checked(
        "blocks:\n  'mlp(w, depth)': ['repeat(depth, k -> dense(w + k))']\n"
        "model: ['repeat(3, i -> repeat(i, dense(2)) -> mlp(10 * (i + 1), depth=i + 1))']\n"
    )
    assert list(units(c).values()) == [10, 2, 20, 21, 2, 2, 30, 31, 32]


def test_the_index_in_a_graph_node_and_overridden_counts() -> None:
    head = "params: {n: 3}\ninputs: {x: [B, 16]}\n"
    body = "model:\n  h: x -> repeat(n, i -> dense(4 * (i + 1)))\n  y: h + h -> relu\n"
    assert list(units(checked(body, head)).values()) == [4, 8, 12]
    assert list(units(checked(body, head, ["n=5"])).values()) == [4, 8, 12, 16, 20]


def test_a_body_named_by_a_block_argument_or_a_string_param() -> None:
    c = checked(
        "blocks:\n  'wrap(f)': ['repeat(3, f)']\n"
        "model:\n  - 'wrap(i -> dense(3 * (i + 1)))'\n  - repeat(2, grow)\n",
        "params: {grow: 'i -> dense(4 * 2**i)'}\ninputs: {x: [B, 16]}\n",
    )
    assert list(units(c).values()) == [3, 6, 9, 4, 8]


@pytest.mark.parametrize(
    ("head", "layer", "ops"),
    [
        ("", "repeat(2, relu -> dense(4))", ["relu", "dense"] * 2),  # an op
        ("", "repeat(2, x -> dense(4))", ["dense"] * 2),  # an input: each copy reads x
        ("params: {act: tanh}\n", "repeat(2, act -> dense(4))", ["tanh", "dense"] * 2),
        ("blocks:\n  blk: [sigmoid]\n", "repeat(2, blk -> dense(4))", ["sigmoid", "dense"] * 2),
        (  # a block argument that holds a layer
            "blocks:\n  'wrap(f)': ['repeat(2, f -> dense(4))']\n",
            "wrap(gelu)",
            ["gelu", "dense"] * 2,
        ),
    ],
)
def test_a_leading_name_that_is_a_layer_keeps_its_meaning(head: str, layer: str, ops) -> None:  # noqa: ANN001
    c = checked(f"model: ['{layer}']\n", head + "inputs: {x: [B, 16]}\n")
    assert [n.op for n in c.graph.nodes] == ops


def test_the_ir_names_of_copies_are_those_without_an_index() -> None:
    indexed = checked("model: ['repeat(3, i -> dense(8 + 0 * i) -> relu)', dense(2)]\n")
    plain = checked("model: ['repeat(3, dense(8) -> relu)', dense(2)]\n")
    assert str(indexed.graph) == str(plain.graph)


def test_repeat_zero_with_an_index_is_the_identity_and_elaborates_no_copy() -> None:
    # dense(0 * i) would fail in any copy: with n = 0 there is none
    zero = checked("model: [dense(8), 'repeat(0, i -> dense(0 * i))', tanh]\n")
    assert str(zero.graph) == str(checked("model: [dense(8), tanh]\n").graph)


SPEC = """\
dlc: 1
name: widening
params: {c: 4, depth: 3}
inputs: {x: [B, 3, 16, 16]}
blocks:
  stage(c, stride=1):
    a: x -> conv2d(c, 3, stride=stride, padding=1, bias=false) -> batchnorm -> relu
    s: x -> conv2d(c, 1, stride=stride, bias=false) -> batchnorm
    y: a + s -> relu
model:
  - repeat(depth, i -> stage(c * 2**i, stride=2))
  - global_avgpool
  - repeat(2, i -> repeat(2, j -> dense(8 // (i + j + 1)) -> tanh))
  - dense(3)
"""


def test_parity_torch_onnxruntime_on_a_spec_with_indexed_repeats() -> None:
    import onnxruntime as ort
    import torch

    from dlc.compiler.lower.onnx import to_onnx
    from dlc.compiler.lower.torch import to_torch

    c = check_text(SPEC, "widening.yaml")
    assert out_type(c) == "[B, 3]"
    assert list(units(c, "conv2d").values()) == [4, 4, 8, 8, 16, 16]
    assert list(units(c).values()) == [8, 4, 4, 2, 3]
    weights = random_weights(c.graph, seed=3)
    module = to_torch(c.graph, weights).eval()
    model = to_onnx(c.graph, weights).SerializeToString()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    for batch in (1, 4):
        x = np.random.default_rng(batch).normal(size=(batch, 3, 16, 16)).astype(np.float32)
        with torch.no_grad():
            ours = module(x=torch.from_numpy(x)).numpy()
        (theirs,) = session.run(None, {"x": x})
        scale = float(np.abs(theirs).max())
        assert scale > 1e-3  # an output worth comparing
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=ATOL + RTOL * scale)


def test_compile_verify_on_a_spec_with_indexed_repeats(tmp_path: Path) -> None:
    spec = tmp_path / "widening.yaml"
    spec.write_text(SPEC)
    result = run_dlc("compile", str(spec), "-o", str(tmp_path / "w.onnx"), "--verify")
    assert result.returncode == 0, result.stderr
    assert "torch and onnxruntime agree" in result.stdout.splitlines()[-1]
