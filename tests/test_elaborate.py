"""The language's elaboration rules: params, arithmetic, blocks, combinators, graphs,
names of IR nodes, `--set` overrides."""

from __future__ import annotations

import pytest

from conftest import error_of, run_dlc
from dlc.compiler.errors import DlcError
from dlc.compiler.pipeline import check_text


def graph_of(body: str, head: str = "inputs: {x: [B, 16]}\n", overrides=()):  # noqa: ANN001, ANN201
    checked = check_text("dlc: 1\nname: t\n" + head + body, "t.yaml", overrides)
    return checked.graph


def out_type(g) -> str:  # noqa: ANN001
    return str(g.types()[dict(g.outputs)["y"]])


def test_params_and_arithmetic() -> None:
    g = graph_of(
        "model: [dense(h * 2 + 1) -> dense(h // 3) -> dense(2 ** 3)]\n",
        "params: {h: 8}\ninputs: {x: [B, 16]}\n",
    )
    assert [n.attr("units") for n in g.nodes] == [17, 2, 8]


def test_string_params_are_expressions_where_used() -> None:
    g = graph_of(
        "model: [dense(w) -> act]\n",
        "params: {act: 'leaky_relu(slope=0.2)', w: 'base * 2', base: 4}\ninputs: {x: [B, 16]}\n",
    )
    assert [n.op for n in g.nodes] == ["dense", "leaky_relu"]
    assert g.nodes[0].attr("units") == 8 and g.nodes[1].attr("slope") == 0.2


def test_set_overrides_numbers_and_strings() -> None:
    g = graph_of(
        "model: [dense(w) -> act]\n",
        "params: {act: relu, w: 4}\ninputs: {x: [B, 16]}\n",
        overrides=["w=12", "act=tanh"],
    )
    assert [n.op for n in g.nodes] == ["dense", "tanh"]
    assert g.nodes[0].attr("units") == 12


def test_symbolic_dims_in_inputs_and_arguments() -> None:
    g = graph_of(
        "model:\n  - reshape([B, T, 2, -1]) -> flatten(start=2)\n",
        "inputs: {x: [B, T, 'F * 2']}\nparams: {F: 4}\n",
    )
    assert out_type(g) == "[B, T, 8]"


def test_nested_blocks_with_defaults_and_layer_arguments() -> None:
    g = graph_of(
        "blocks:\n"
        "  mlp(w, act=relu): dense(w) -> act\n"
        "  twice(f): f -> f\n"
        "  stack(w):\n    - twice(mlp(w, act=tanh))\n    - mlp(w)\n"
        "model: [stack(8)]\n"
    )
    assert [n.op for n in g.nodes] == ["dense", "tanh", "dense", "tanh", "dense", "relu"]
    assert g.nodes[0].name == "stack.twice.mlp.dense"
    assert g.nodes[2].name == "stack.twice.mlp_1.dense"
    assert g.nodes[4].name == "stack.mlp.dense"


def test_graph_block_input_is_x_and_result_is_its_last_node() -> None:
    g = graph_of(
        "blocks:\n"
        "  split(w):\n"
        "    a: x -> dense(w)\n"
        "    b: x -> dense(w) -> sigmoid\n"
        "    y: mul(a, b)\n"
        "model:\n"
        "  h: x -> split(4)\n"
        "  y: h -> dense(1)\n"
    )
    assert out_type(g) == "[B, 1]"
    assert {n.name for n in g.nodes} >= {"h.split.a", "h.split.b.dense", "h.split.y"}


def test_repeat_residual_highway_parallel() -> None:
    g = graph_of(
        "model:\n  - repeat(3, residual(dense(16) -> relu))\n  - highway(dense(16))\n"
        "  - parallel(dense(4), dense(6) -> relu, merge=concat)\n"
    )
    ops = [n.op for n in g.nodes]
    assert ops.count("residual_add") == 3 and ops.count("highway_gate") == 1
    assert out_type(g) == "[B, 10]"
    assert g.nodes[0].name == "repeat.0.residual.dense"
    assert g.nodes[3].name == "repeat.1.residual.dense"


def test_repeat_zero_times_is_the_identity_in_the_ir_and_both_lowerings() -> None:
    import numpy as np
    import onnxruntime as ort
    import torch

    from dlc.compiler.lower.initial_weights import initial_weights
    from dlc.compiler.lower.onnx import to_onnx
    from dlc.compiler.lower.torch import to_torch

    def checked(model: str):  # noqa: ANN202
        return check_text("dlc: 1\nname: t\ninputs: {x: [B, 16]}\n" + model, "t.yaml")

    zero = checked("model: [dense(8), 'repeat(0, dense(4) -> relu)', tanh]\n")
    plain = checked("model: [dense(8), tanh]\n")
    assert str(zero.graph) == str(plain.graph)  # no node, not even a name
    assert out_type(zero.graph) == "[B, 8]"
    x = np.random.default_rng(0).normal(size=(2, 16)).astype(np.float32)
    weights = initial_weights(zero.graph, 0)
    with torch.no_grad():
        ours = to_torch(zero.graph, weights).eval()(x=torch.from_numpy(x)).numpy()
    model = to_onnx(zero.graph, weights).SerializeToString()
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (theirs,) = session.run(None, {"x": x})
    w, b = weights["dense.weight"], weights["dense.bias"]
    expected = np.tanh(x @ w.T + b)  # dense's weight is [out, in], as torch's Linear
    np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(theirs, expected, rtol=1e-5, atol=1e-6)


def test_plus_binds_tighter_than_arrow() -> None:
    g = graph_of("model:\n  a: x -> dense(16)\n  y: a + x -> relu\n")
    add, relu = g.nodes[-2:]
    assert add.op == "add" and add.inputs == ("a", "x")
    assert relu.op == "relu" and relu.inputs == (add.name,)


def test_sum_in_a_layer_position_adds_branches() -> None:
    g = graph_of("model: [dense(16) + identity -> relu]\n")
    add = next(n for n in g.nodes if n.op == "add")
    assert add.inputs == ("dense", "identity")


def test_graph_nodes_may_be_written_in_any_order() -> None:
    g = graph_of("model:\n  y: h -> dense(2)\n  h: x -> relu\n")
    assert [n.name for n in g.nodes] == ["h", "y"]
    assert dict(g.outputs) == {"y": "y"}


def test_single_op_graph_nodes_take_the_node_name() -> None:
    g = graph_of("model:\n  hidden: x -> dense(8)\n  y: hidden -> relu -> dense(2)\n")
    assert [n.name for n in g.nodes] == ["hidden", "y.relu", "y.dense"]


def test_outputs_name_nodes_and_expressions() -> None:
    g = graph_of(
        "model:\n  h: x -> dense(8)\n  z: h -> dense(2)\n"
        "outputs: {logits: z, probs: softmax(z), hidden: h, lp: 'log_softmax(z, axis=1)'}\n"
    )
    assert [name for name, _ in g.outputs] == ["logits", "probs", "hidden", "lp"]
    assert g.node(dict(g.outputs)["lp"]).attr("axis") == 1
    assert g.types()[dict(g.outputs)["probs"]].shape[-1] == 2


def test_training_init_is_the_default_and_init_overrides_it() -> None:
    g = graph_of("model:\n  - dense(4)\n  - dense(2, init=zeros)\ntraining: {init: he_normal}\n")
    assert [str(n.params[0].init) for n in g.nodes] == ["he_normal", "zeros"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("blocks:\n  a(n): [a(n)]\nmodel: [a(1)]\n", "blocks nest deeper than 32"),
        ("model: [dense(4) -> x]\n", "'x' is a tensor, not a layer"),
        ("model: ['3']\n", "expected a layer or a tensor here, got a number"),
        ("model: [dense(4) - relu]\n", "sub cannot broadcast [B, 4] and [B, 16]"),
        ("model: [dense(4) ** relu]\n", "'**' is not defined on tensors"),
        ("model: ['-3']\n", "expected a layer or a tensor here, got the number -3"),
        ("model:\n  h: x -> dense(4)\n  y: dense(h)\n", "dense needs its argument 'units'"),
        ("model:\n  h: x -> dense(4)\n  y: h -> dense(h)\n", "'h' is a tensor, not a value"),
        ("model: 'repeat(-1, relu)'\n", "expected an integer >= 0, got -1"),
        ("model: [parallel(relu)]\n", "parallel needs at least 2 branches"),
        ("model: [dense(4, bias=false)]\n", "a comma inside [...] separates YAML list items"),
        ("model: [dense(2 / 0)]\n", "division by zero"),
        ("model: [dense(10 ** 100)]\n", "the power 100 is too large"),
        ("model: ['repeat(1000, repeat(1000, relu))']\n", "expands to more than 250,000 nodes"),
        ("model: ['" + "+".join(["relu"] * 102) + "']\n", "has more than 100 operators"),
        ("model: ['" + "residual(" * 65 + "relu" + ")" * 65 + "']\n", "nests deeper than 64"),
        ("model: [dense(10 ** 12)]\n", "dense's weight would have 16,000,000,000,000 elements"),
        ("model:\n  y: relu\n", "relu has no input here"),
        ("blocks:\n  b: [relu]\n  'b(n)': [tanh]\nmodel: [b]\n", "block 'b' is defined twice"),
    ],
)
def test_elaboration_errors(body: str, message: str) -> None:
    err = error_of("dlc: 1\nname: t\ninputs: {x: [B, 16]}\n" + body)
    assert isinstance(err, DlcError)
    assert message in err.render()
    assert all(d.loc is not None and d.loc.line >= 4 for d in err.diagnostics)


def test_reserved_node_names_cover_torch_module_attributes() -> None:
    import torch
    import torch.fx as fx

    from dlc.compiler.lower.torch_names import TORCH_ATTRIBUTES

    module = fx.GraphModule(torch.nn.Module(), fx.Graph())
    assert {n for n in dir(module) if not n.startswith("_")} <= TORCH_ATTRIBUTES


def test_a_rejected_node_name_is_reported_once_not_at_its_users(tmp_path) -> None:  # noqa: ANN001
    spec = tmp_path / "t.yaml"
    spec.write_text("dlc: 1\nname: t\ninputs: {x: [B, 4]}\nmodel:\n"
                    "  code: x -> dense(3)\n  y: code -> relu\n")  # fmt: skip
    result = run_dlc("check", str(spec))
    assert result.returncode == 1
    assert result.stderr.count("error:") == 1
    assert "t.yaml:5:3: error: node name 'code' is taken" in result.stderr


def _is_plain(v: object) -> bool:
    from dlc.compiler.dims import Sym
    from dlc.compiler.ir import InitSpec

    if isinstance(v, tuple):
        return all(_is_plain(x) for x in v)
    if isinstance(v, InitSpec):
        return all(_is_plain(x) for _, x in v.args)
    return type(v) in (str, int, float, bool, type(None), Sym)


def test_node_attributes_hold_plain_values() -> None:
    """Bare words (`padding=same`, a param's `valid`, words in a list) reach a node as
    plain strings: elaboration's own word type, which knows where it stood, stays inside."""
    g = graph_of(
        "model: 'conv2d(8, 3, padding=same, init=normal(0, s)) -> conv2d(8, 3, padding=p)"
        " -> flatten -> dense(n)'\n",
        "params: {p: valid, s: 0.1, n: 'B2 * 2', B2: 3}\ninputs: {x: [B, 3, 16, 16]}\n",
    )
    assert [n.attr("padding") for n in g.nodes[:2]] == ["same", "valid"]
    for node in g.nodes:
        for key, value in node.attrs:
            assert _is_plain(value), (node.name, key, value)
