"""Tests of the layer library's embed ops: their rows of the registry tables (test_registry
and test_parity run them) and the tests of their own."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from conftest import check_layer
from dlc.compiler.dims import evaluate, format_dim
from dlc.compiler.errors import DlcError
from dlc.compiler.ir import Graph, Node
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.model_py import model_py
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.embed import modules as em
from dlc.compiler.ops.embed import onnx as embed_onnx
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import check_text
from dlc.compiler.summary import summary_json

IDS = "{shape: [B, T], dtype: int64}"  # token ids; the parity tests draw them in [0, 8)


def _shape(e: Example) -> str:
    """The input as one_layer writes it: the shape, with its dtype if not float32."""
    return f"{{shape: {e.shape}, dtype: {e.dtype}}}" if e.dtype else e.shape


# op -> [(layer text, input shape, expected output shape)]: the examples of these ops
# that the differential tests run (their OpDefs carry them)
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    op: [(e.layer, _shape(e), e.out) for e in REGISTRY[op].examples if e.parity]
    for op in (
        "embedding",
        "positional_encoding",
        "patch_embed",
        "cls_token",
        "take",
        "mean",
    )
}


# -- the ops' semantics, independently of the lowerings (numpy, float64) -------------


def _course_sinusoids(length: int, dim: int) -> np.ndarray:
    """PE(t, 2i) = sin(t / 10000^(2i/D)), PE(t, 2i+1) = cos(t / 10000^(2i/D)), by the letter."""
    pe = np.zeros((length, dim))
    for t in range(length):
        for i in range((dim + 1) // 2):
            angle = t / 10000 ** (2 * i / dim)
            pe[t, 2 * i] = math.sin(angle)
            if 2 * i + 1 < dim:
                pe[t, 2 * i + 1] = math.cos(angle)
    return pe


def _patches(x: np.ndarray, w: np.ndarray, b: np.ndarray, p: int) -> np.ndarray:
    """Each p×p patch, row by row, dotted with each filter."""
    n, c, h, wd = x.shape
    rows, cols = h // p, wd // p
    cut = x[:, :, : rows * p, : cols * p].reshape(n, c, rows, p, cols, p)
    flat = cut.transpose(0, 2, 4, 1, 3, 5).reshape(n, rows * cols, c * p * p)
    return flat @ w.reshape(len(w), -1).T + b


def _positions_ref(node: Node, x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    t, d = x.shape[1:]
    table = _course_sinusoids(t, d) if node.attr("kind") == "sinusoidal" else p["weight"][:t]
    return x + table


REFERENCE: dict[str, Callable[[Node, np.ndarray, dict[str, np.ndarray]], np.ndarray]] = {
    "embedding": lambda node, x, p: p["weight"][x],
    "positional_encoding": _positions_ref,
    "patch_embed": lambda node, x, p: _patches(x, p["weight"], p["bias"], node.attr("patch")),
    "cls_token": lambda node, x, p: np.concatenate(
        [np.broadcast_to(p["token"], (len(x), 1, x.shape[2])), x], axis=1
    ),
    "take": lambda node, x, p: np.take(x, node.attr("index"), axis=node.attr("axis")),
    "mean": lambda node, x, p: x.mean(axis=node.attr("axis")),
}

CASES = [(op, layer, shape) for op, rows in SHAPES.items() for layer, shape, _ in rows]


@pytest.mark.parametrize(("op", "layer", "shape"), CASES,
                         ids=[f"{c[1]}:{c[2]}" for c in CASES])  # fmt: skip
def test_onnx_model_checks_and_computes_the_reference(op: str, layer: str, shape: str) -> None:
    """At every opset: the full checker, ONNX shape inference agreeing with the IR, and
    onnxruntime equal to the numpy semantics above (symbolic dims B=2, T=5, H=W=6)."""
    checked = check_layer(layer, shape)
    weights = _random_weights(checked.graph)
    x = _input(checked.graph, {"B": 2, "T": 5, "H": 6, "W": 6})
    (node,) = checked.graph.nodes
    params = {p.name: weights[f"{node.name}.{p.name}"].astype(np.float64) for p in node.params}
    want = REFERENCE[op](node, x if x.dtype.kind == "i" else x.astype(np.float64), params)
    for opset in supported_opsets():
        model = to_onnx(checked.graph, weights, opset=opset)
        onnx.checker.check_model(model, full_check=True)
        _assert_inference_agrees(model, checked.graph)
        (got,) = _session(model).run(None, {"x": x})
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"opset {opset}")


def _random_weights(graph: Graph) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {f"{n.name}.{p.name}": rng.standard_normal(p.shape).astype(np.float32)
            for n in graph.nodes for p in n.params}  # fmt: skip


def _input(graph: Graph, env: dict[str, int]) -> np.ndarray:
    (inp,) = graph.inputs
    shape = [evaluate(d, env) for d in inp.type.shape]
    rng = np.random.default_rng(1)
    if inp.type.dtype.startswith("int"):
        return rng.integers(0, 8, shape).astype(inp.type.dtype)
    return rng.standard_normal(shape).astype(np.float32)


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _assert_inference_agrees(model: onnx.ModelProto, graph: Graph) -> None:
    """Every dim ONNX infers (declared output shapes cleared first) is the IR's, or unknown."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    types = graph.types()
    for o, (_, value) in zip(m.graph.output, graph.outputs, strict=True):
        dims = o.type.tensor_type.shape.dim
        want = types[value].shape
        assert len(dims) == len(want), (o.name, dims, want)
        for got, d in zip(dims, want, strict=True):
            if got.HasField("dim_value"):
                assert got.dim_value == d
            elif got.dim_param and not got.dim_param.startswith("unk__"):
                assert got.dim_param == format_dim(d)


# -- sinusoids -----------------------------------------------------------------------


@pytest.mark.parametrize(("length", "dim"), [(7, 8), (5, 7), (1, 1), (512, 64)])
def test_both_sinusoid_tables_are_the_course_formula(length: int, dim: int) -> None:
    want = _course_sinusoids(length, dim)
    np.testing.assert_allclose(em.sinusoids(length, dim).numpy(), want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(embed_onnx.sinusoids(length, dim), want, rtol=0, atol=1e-6)


def test_the_sinusoidal_table_is_a_constant_not_a_weight() -> None:
    checked = check_layer("positional_encoding(max_len=32)", "[B, T, 8]")
    assert checked.graph.nodes[0].params == () and checked.graph.num_params == 0
    module = to_torch(checked.graph)
    assert dict(module.state_dict()) == {}
    x = torch.randn(2, 10, 8)
    want = x + torch.from_numpy(_course_sinusoids(10, 8)).float()
    torch.testing.assert_close(module(x), want, rtol=0, atol=1e-6)
    model = to_onnx(checked.graph, {})
    assert [i.dims for i in model.graph.initializer if "positions" in i.name] == [[32, 8]]


def test_positional_dropout_acts_in_training_only() -> None:
    checked = check_layer("positional_encoding(kind=learned, max_len=8, dropout=0.5)", "[B, T, 4]")
    module = to_torch(checked.graph)
    x = torch.ones(64, 8, 4)
    assert (module.train()(x) == 0).any()
    table = module.state_dict()["positional_encoding.weight"]
    torch.testing.assert_close(module.eval()(x), x + table)


# -- patch_embed, cls_token ------------------------------------------------------------


def test_patch_embed_is_conv2d_then_patches_in_row_major_order() -> None:
    checked = check_layer("patch_embed(4, 16)", "[B, 3, 8, 12]")
    module = to_torch(checked.graph, seed=3).eval()
    conv = torch.nn.Conv2d(3, 16, 4, stride=4)
    conv.load_state_dict({k.removeprefix("patch_embed."): v
                          for k, v in module.state_dict().items()})  # fmt: skip
    x = torch.randn(2, 3, 8, 12)
    with torch.no_grad():
        want = conv(x).flatten(2).transpose(1, 2)
        torch.testing.assert_close(module(x), want)
    w = {k: v.numpy() for k, v in module.state_dict().items()}
    ref = _patches(x.numpy(), w["patch_embed.weight"], w["patch_embed.bias"], 4)
    np.testing.assert_allclose(want.numpy(), ref, rtol=1e-5, atol=1e-5)


def test_cls_token_comes_first_and_is_one_parameter() -> None:
    checked = check_layer("cls_token", "[B, T, 8]")
    assert checked.graph.num_params == 8
    module = to_torch(checked.graph, seed=1)
    x = torch.randn(3, 4, 8)
    y = module(x)
    token = module.state_dict()["cls_token.token"]
    torch.testing.assert_close(y[:, 0], token[0].expand(3, 8))
    torch.testing.assert_close(y[:, 1:], x)


# -- dense(tie=...) -------------------------------------------------------------------

TIED = """dlc: 1
name: tied
params: {vocab: 12, dim: 8}
inputs:
  x: {shape: [B, T], dtype: int64}
model:
  emb: x -> embedding(vocab, dim)
  h: emb -> positional_encoding(kind=learned, max_len=16) -> dense(dim) -> relu
  y: h -> dense(vocab, tie=emb)
"""


def test_a_tied_layer_has_no_weight_of_its_own() -> None:
    graph = check_text(TIED).graph
    y = graph.node("y")
    assert [p.name for p in y.params] == ["bias"]
    untied = check_text(TIED.replace(", tie=emb", "")).graph
    assert graph.num_params == untied.num_params - 12 * 8
    assert summary_json(graph)["total_params"] == graph.num_params
    assert "y.weight" not in initial_weights(graph)


def test_tied_torch_module_holds_the_table_once_and_trains_it_from_both_ends() -> None:
    graph = check_text(TIED).graph
    module = to_torch(graph, seed=0)
    keys = list(module.state_dict())
    assert "emb.weight" in keys and not [k for k in keys if k.startswith("y.") and "weight" in k]
    assert sum(p.numel() for p in module.parameters()) == graph.num_params
    x = torch.randint(0, 12, (3, 5))
    module(x).sum().backward()
    grad = module.emb.weight.grad
    assert grad is not None
    unused = sorted(set(range(12)) - set(x.flatten().tolist()))
    # rows no token used get gradient through the output projection alone
    assert unused and grad[unused].abs().sum() > 0


def test_tied_output_is_x_times_the_table_transposed() -> None:
    graph = check_text(TIED + "outputs: {y: y, h: h}\n").graph
    module = to_torch(graph, seed=2).eval()
    state = module.state_dict()
    with torch.no_grad():
        out = module(torch.randint(0, 12, (2, 5)))
    torch.testing.assert_close(out["y"], out["h"] @ state["emb.weight"].T + state["y.bias"])


@pytest.mark.parametrize("bias", ["true", "false"])
def test_tied_onnx_model_uses_the_embedding_initializer(bias: str) -> None:
    graph = check_text(TIED.replace("tie=emb", f"tie=emb, bias={bias}")).graph
    weights = initial_weights(graph, seed=4)
    model = to_onnx(graph, weights)
    onnx.checker.check_model(model, full_check=True)
    names = [i.name for i in model.graph.initializer]
    assert names.count("emb.weight") == 1 and "y.weight" not in names
    assert ("y.bias" in names) == (bias == "true")
    module = to_torch(graph, weights).eval()
    assert set(module.state_dict()) <= set(names)  # weights move by name
    x = np.random.default_rng(0).integers(0, 12, (3, 6))
    (got,) = _session(model).run(None, {"x": x})
    with torch.no_grad():
        want = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_tied_matrix_input_lowers_to_gemm_with_transb() -> None:
    spec = TIED.replace("[B, T]", "[B]").replace(
        "positional_encoding(kind=learned, max_len=16) -> ", ""
    )
    graph = check_text(spec).graph
    model = to_onnx(graph, initial_weights(graph))
    (gemm,) = [n for n in model.graph.node if n.name == "y"]
    assert gemm.op_type == "Gemm" and list(gemm.input[:2]) == ["h.relu", "emb.weight"]
    assert {a.name: a.i for a in gemm.attribute} == {"transB": 1}


def test_tied_model_py_runs_standalone(tmp_path: Path) -> None:
    graph = check_text(TIED).graph
    source = model_py(graph, "test")
    assert "self.emb.weight" in source
    path = tmp_path / "tied_model.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("tied_model", path)
    assert spec is not None and spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    module = to_torch(graph, seed=5).eval()
    standalone = generated.Model().eval()
    standalone.load_state_dict(module.state_dict())
    x = torch.randint(0, 12, (2, 7))
    with torch.no_grad():
        assert torch.equal(standalone(x), module(x))


BLOCK_TIED = """dlc: 1
name: block_tied
inputs:
  x: {shape: [B, T], dtype: int64}
  z: [B, 8]
blocks:
  lm(v, d):
    emb: x -> embedding(v, d)
    y: emb -> relu -> dense(v, tie=emb)
model:
  a: x -> lm(12, 8)
  unused: x -> embedding(12, 8)
  b: z -> dense(12, tie=unused)
outputs: {a: a, b: b}
"""


def test_tie_inside_a_block_and_to_an_embedding_whose_output_is_unused() -> None:
    graph = check_text(BLOCK_TIED).graph
    assert graph.node("a.lm.y.dense").attr("tie") == "a.lm.emb"
    weights = initial_weights(graph, seed=6)
    module = to_torch(graph, weights).eval()  # builds `unused` for b's sake
    assert {"a.lm.emb.weight", "unused.weight"} <= set(module.state_dict())
    rng = np.random.default_rng(0)
    feeds = {"x": rng.integers(0, 12, (2, 3)), "z": rng.standard_normal((2, 8), np.float32)}
    with torch.no_grad():
        ours = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    theirs = _session(to_onnx(graph, weights)).run(None, feeds)
    for name, value in zip(("a", "b"), theirs, strict=True):
        np.testing.assert_allclose(ours[name].numpy(), value, rtol=1e-5, atol=1e-5)
    want = feeds["z"] @ weights["unused.weight"].T + weights["b.bias"]
    np.testing.assert_allclose(theirs[1], want, rtol=1e-5, atol=1e-5)


# -- errors, located -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape", "message", "hint"),
    [
        (
            "embedding(10, 4)",
            "[B, T]",
            "embedding looks up token ids, but its input is float32 [B, T]",
            "dtype: int64",
        ),
        (
            "embedding(10, 4, padding_idx=10)",
            IDS,
            "padding_idx=10 is not a token id of a vocabulary of 10",
            "0..9",
        ),
        ("embedding(10, 4, padding_idx=1.5)", IDS, "expected an integer or none", None),
        (
            "positional_encoding(max_len=4)",
            "[B, 5, 8]",
            "positional_encoding covers 4 positions, but [B, 5, 8] has 5",
            "raise max_len",
        ),
        (
            "positional_encoding",
            "[B, 8]",
            "positional_encoding needs a sequence [B, T, D], got [B, 8]",
            None,
        ),
        (
            "positional_encoding(kind=fixed)",
            "[B, T, 8]",
            "expected one of sinusoidal, learned",
            None,
        ),
        (
            "positional_encoding",
            IDS,
            "positional_encoding needs a floating-point input",
            "embedding",
        ),
        ("patch_embed(4, 8)", "[B, 3, 8, 10]", "needs the image width to be a multiple of 4", None),
        ("patch_embed(4, 8)", "[B, 3, 8]", "patch_embed needs images [B, C, H, W]", None),
        ("patch_embed(4, 8)", "[B, C, 8, 8]", "known channel count", None),
        ("cls_token", "[B, 8]", "cls_token needs a sequence [B, T, D]", None),
        ("cls_token", "[B, T, D]", "known number of features", None),
        ("take(5)", "[B, 5, 8]", "take(5) is out of range for axis 1 of [B, 5, 8]", "-5..4"),
        ("take(0, axis=3)", "[B, 5, 8]", "axis 3 is out of range", None),
        ("mean(axis=-4)", "[B, 5, 8]", "axis -4 is out of range", None),
    ],
)
def test_layer_errors(layer: str, shape: str, message: str, hint: str | None) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(layer, shape)
    text = info.value.render()
    assert message in text
    assert hint is None or hint in text
    assert info.value.loc is not None and info.value.loc.line == 6  # the layer's line
    assert info.value.loc.col >= 5


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "dense(vocab, tie=emb)",
            "dense(10, tie=emb)",
            "needs units = 12 and 8 input features, got 10 and [B, T, 8]",
        ),
        (
            "-> dense(dim) -> relu",
            "-> dense(6) -> relu",
            "needs units = 12 and 8 input features, got 12 and [B, T, 6]",
        ),
        (
            "tie=emb",
            "tie=h",
            "tie= reuses the table of an embedding node, but 'h.relu' is a relu node",
        ),
        ("tie=emb", "tie=x", "but 'x' is not a node of this graph"),
        ("tie=emb", "tie=emb, init=he_normal", "dense(tie=emb) has no weight to init"),
        (
            "tie=emb",
            "tie=emb, weight_norm=true",
            "dense(tie=emb, weight_norm=true): a tied layer has no weight of its own",
        ),
        (
            "embedding(vocab, dim)",
            "embedding(vocab, dim) -> dropout(0.1)",
            "but 'emb.dropout' is a dropout node",
        ),
    ],
)
def test_tie_errors(old: str, new: str, message: str) -> None:
    assert old in TIED
    with pytest.raises(DlcError) as info:
        check_text(TIED.replace(old, new), "t.yaml")
    assert message in info.value.render()
    assert info.value.loc is not None and info.value.loc.line == 9  # the node y
