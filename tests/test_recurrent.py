"""Tests of the layer library's recurrent ops: their rows of the registry tables (test_registry
and test_parity run them) and the tests of their own: a numpy reference of torch's
formulas, ONNX models run at other sequence lengths than they were checked with, torch's
own nn.LSTM weights moved by name, the native ONNX nodes, init, FLOPs and errors.

The relu RNN is not in SHAPES: onnx's ReferenceEvaluator, which test_parity runs on every
row, knows no Relu activation for RNN. `REFERENCE_OPS` teaches it one
(`ReferenceEvaluator(model, new_ops=REFERENCE_OPS)`); the relu parity tests are here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops.op_rnn import RNN_14
from torch import nn

from conftest import check_layer
from dlc.compiler.dims import sym
from dlc.compiler.errors import DlcError
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.model_py import model_py
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked


def _shape(e: Example) -> str:
    """The input as one_layer writes it: the shape, with its dtype if not float32."""
    return f"{{shape: {e.shape}, dtype: {e.dtype}}}" if e.dtype else e.shape


# op -> [(layer text, input shape, expected output shape)]: the examples of these ops
# that the differential tests run (their OpDefs carry them)
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    op: [(e.layer, _shape(e), e.out) for e in REGISTRY[op].examples if e.parity]
    for op in (
        "rnn",
        "gru",
        "lstm",
    )
}


# -- a numpy reference of torch's formulas ----------------------------------------------


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _step(op: str, nonlinearity: str, gi: np.ndarray, gh: np.ndarray, h: np.ndarray,
          c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One step from the input part gi = W_ih x + b_ih and the hidden part gh = W_hh h + b_hh
    of the gates (torch's gate order); returns the new (h, c)."""
    if op == "rnn":
        s = gi + gh
        return (np.tanh(s) if nonlinearity == "tanh" else np.maximum(s, 0)), c
    if op == "gru":
        (ir, iz, i_n), (hr, hz, hn) = np.split(gi, 3, -1), np.split(gh, 3, -1)
        r, z = _sigmoid(ir + hr), _sigmoid(iz + hz)
        n = np.tanh(i_n + r * hn)
        return (1 - z) * n + z * h, c
    i, f, g, o = np.split(gi + gh, 4, -1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def reference(op: str, attr: Callable[[str], Any], x: np.ndarray,
              p: Mapping[str, np.ndarray]) -> np.ndarray:  # fmt: skip
    """rnn/gru/lstm of [B, T, F] `x` with the params `p` (by state_dict name), step by step."""
    h_size, t_len = attr("hidden"), x.shape[1]
    nonlinearity = attr("nonlinearity") if op == "rnn" else ""
    finals: list[np.ndarray] = []
    for layer in range(attr("layers")):
        outs, finals = [], []
        for suffix in ("", "_reverse")[: 2 if attr("bidirectional") else 1]:
            tail = f"_l{layer}{suffix}"
            b_ih, b_hh = (p.get(f"bias_{k}{tail}", 0.0) for k in ("ih", "hh"))
            h = c = np.zeros((x.shape[0], h_size))
            seq = [np.zeros(0)] * t_len
            for t in reversed(range(t_len)) if suffix else range(t_len):
                gi = x[:, t] @ p[f"weight_ih{tail}"].T + b_ih
                h, c = _step(op, nonlinearity, gi, h @ p[f"weight_hh{tail}"].T + b_hh, h, c)
                seq[t] = h
            outs.append(np.stack(seq, 1))
            finals.append(h)
        x = np.concatenate(outs, -1)
    return np.concatenate(finals, -1) if attr("return") == "last" else x


class RNN(RNN_14):
    """onnx's reference RNN knows only the Tanh and Affine activations: Relu too."""

    op_domain = ""

    def choose_act(self, name: str, alpha: float | None, beta: float | None) -> Any:
        if name == "Relu":
            return lambda x: np.maximum(x, 0)
        return super().choose_act(name, alpha, beta)


REFERENCE_OPS = [RNN]


# -- helpers ------------------------------------------------------------------------------


def _lowered(checked: Checked, seed: int = 0) -> tuple[nn.Module, ort.InferenceSession, Any]:
    weights = initial_weights(checked.graph, seed)
    model = to_onnx(checked.graph, weights)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return to_torch(checked.graph, weights).eval(), session, model


def _torch(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _close(a: np.ndarray, b: np.ndarray) -> None:
    """test_parity's tolerance: 1e-5 of the output's scale plus 1e-6."""
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6 + 1e-5 * float(np.abs(b).max()))


def _inputs(f: int, t: int, batch: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((batch, t, f)).astype(np.float32)


# -- semantics --------------------------------------------------------------------------

CONFIGS = [
    "rnn(5, nonlinearity=relu, layers=2, bidirectional=true)",
    "rnn(4, bias=false, return=last)",
    "gru(6, layers=2, bidirectional=true, return=last)",
    "gru(4, bias=false, bidirectional=true)",
    "lstm(5, layers=3, bidirectional=true)",
    "lstm(4, layers=2, bidirectional=true, bias=false, return=last)",
]


@pytest.mark.parametrize("layer", CONFIGS)
def test_torch_and_onnxruntime_follow_the_formulas(layer: str) -> None:
    checked = check_layer(layer, "[B, T, 3]")
    node = checked.graph.nodes[0]
    weights = initial_weights(checked.graph, 1)
    params = {p.name: weights[f"{node.name}.{p.name}"].astype(np.float64) for p in node.params}
    module, session, _ = _lowered(checked, seed=1)
    x = _inputs(3, 6)
    want = reference(node.op, node.attr, x.astype(np.float64), params)
    _close(_torch(module, x), want)
    _close(session.run(None, {"x": x})[0], want)


def test_last_is_torchs_final_hidden_state_of_each_direction() -> None:
    """Bidirectional `last` is forward's state after step T and backward's after step 1,
    not the sequence output's last step."""
    seq_layer, last_layer = (
        "lstm(4, bidirectional=true)",
        "lstm(4, bidirectional=true, return=last)",
    )
    seq, _, _ = _lowered(check_layer(seq_layer, "[B, T, 3]"))
    last, _, _ = _lowered(check_layer(last_layer, "[B, T, 3]"))
    x = _inputs(3, 5)
    out, final = _torch(seq, x), _torch(last, x)
    np.testing.assert_array_equal(final, np.concatenate([out[:, -1, :4], out[:, 0, 4:]], -1))
    assert not np.allclose(final, out[:, -1])


@pytest.mark.parametrize(
    "layer",
    [
        "lstm(6, layers=2, bidirectional=true)",
        "lstm(6, layers=2, bidirectional=true, return=last)",
        "gru(5, return=last)",
        "rnn(4, nonlinearity=relu, bidirectional=true)",
    ],
)
def test_one_onnx_model_runs_any_sequence_length(layer: str) -> None:
    """T is a dim_param: the same session takes sequences of 1, 2 and 11 steps."""
    module, session, model = _lowered(check_layer(layer, "[B, T, 3]"))
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_param == "T"
    for t, batch in ((2, 3), (11, 2), (1, 1)):
        x = _inputs(3, t, batch, seed=t)
        _close(session.run(None, {"x": x})[0], _torch(module, x))


@pytest.mark.parametrize(
    "layer", ["rnn(6, nonlinearity=relu)", "rnn(5, nonlinearity=relu, layers=2, return=last)"]
)
def test_relu_rnn_parity_with_the_reference_evaluator(layer: str) -> None:
    """The relu rows live here: onnx's ReferenceEvaluator needs REFERENCE_OPS for them."""
    module, session, model = _lowered(check_layer(layer, "[B, T, 4]"))
    x = _inputs(4, 7)
    ours = session.run(None, {"x": x})[0]
    _close(ours, _torch(module, x))
    _close(ReferenceEvaluator(model, new_ops=REFERENCE_OPS).run(None, {"x": x})[0], ours)


@pytest.mark.parametrize(
    ("layer", "make", "last"),
    [
        ("lstm(8, layers=2, bidirectional=true)",
         lambda: nn.LSTM(3, 8, 2, bidirectional=True, batch_first=True), False),
        ("gru(6, layers=2, bidirectional=true, return=last)",
         lambda: nn.GRU(3, 6, 2, bidirectional=True, batch_first=True), True),
        ("rnn(5, nonlinearity=relu)", lambda: nn.RNN(3, 5, nonlinearity="relu", batch_first=True),
         False),
    ],
)  # fmt: skip
def test_torchs_own_weights_move_by_name(layer: str, make: Callable[[], nn.Module],
                                         last: bool) -> None:  # fmt: skip
    """An nn.LSTM's state_dict, keys prefixed with the node's name, loads into the fx module
    and becomes the ONNX initializers; both compute what the nn.LSTM computes."""
    torch.manual_seed(0)
    theirs = make().eval()
    checked = check_layer(layer, "[B, T, 3]")
    name = checked.graph.nodes[0].name
    weights = {f"{name}.{k}": v.numpy() for k, v in theirs.state_dict().items()}
    x = _inputs(3, 4)
    with torch.no_grad():
        out, state = theirs(torch.from_numpy(x))
    h_n = state[0] if isinstance(state, tuple) else state
    want = torch.cat([h_n[-2], h_n[-1]], -1).numpy() if last else out.numpy()
    np.testing.assert_array_equal(_torch(to_torch(checked.graph, weights).eval(), x), want)
    model = to_onnx(checked.graph, weights)
    assert {i.name for i in model.graph.initializer} >= set(weights)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    _close(session.run(None, {"x": x})[0], want)


# -- the lowerings ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "op_type", "attrs"),
    [
        ("lstm(4, layers=3, bidirectional=true)", "LSTM", {"direction": b"bidirectional"}),
        ("gru(4, layers=2)", "GRU", {"direction": b"forward", "linear_before_reset": 1}),
        ("rnn(4, nonlinearity=relu, bidirectional=true, return=last)", "RNN",
         {"activations": [b"Relu", b"Relu"]}),
    ],
)  # fmt: skip
def test_one_native_node_per_layer(layer: str, op_type: str, attrs: dict[str, Any]) -> None:
    checked = check_layer(layer, "[B, T, 3]")
    node = checked.graph.nodes[0]
    _, _, model = _lowered(checked)
    onnx.checker.check_model(model, full_check=True)
    cells = [n for n in model.graph.node if n.op_type == op_type]
    assert len(cells) == node.attr("layers")
    for cell in cells:
        got = {a.name: onnx.helper.get_attribute_value(a) for a in cell.attribute}
        assert got["hidden_size"] == 4 and got.get("layout", 0) == 0
        assert {k: got[k] for k in attrs} == attrs
    # the initializers are exactly the weights, in torch's names and layout
    weights = {
        i.name: i for i in model.graph.initializer if not i.name.startswith(node.name + ".__")
    }
    assert {k: tuple(v.dims) for k, v in weights.items()} == {
        f"{node.name}.{p.name}": p.shape for p in node.params
    }
    # ONNX shape inference (strict) finds the IR's output type, dim_params included
    m = onnx.ModelProto()
    m.CopyFrom(model)
    m.graph.output[0].type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(m, strict_mode=True).graph.output[0]
    dims = [d.dim_value or d.dim_param for d in inferred.type.tensor_type.shape.dim]
    assert dims == [
        str(d) if not isinstance(d, int) else d for d in checked.graph.nodes[0].type.shape
    ]


def test_onnxruntime_folds_the_gate_reordering_into_constants(tmp_path: Path) -> None:
    """The Gather/Unsqueeze/Concat that build W, R and B from the state_dict-named weights
    run once, at load: what onnxruntime executes is the transposes and the native nodes."""
    checked = check_layer("gru(4, layers=2, bidirectional=true)", "[B, T, 3]")
    _, _, model = _lowered(checked)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node]
    assert ops == ["Transpose", "GRU", "Transpose", "Reshape", "GRU", "Transpose", "Reshape"]


def test_the_standalone_model_py_builds_the_same_module() -> None:
    checked = check_layer("lstm(4, layers=2, bidirectional=true, return=last)", "[B, T, 3]")
    namespace: dict[str, Any] = {}
    exec(compile(model_py(checked.graph, "test"), "model.py", "exec"), namespace)  # noqa: S102
    standalone = namespace["Model"]().eval()
    fx_module = to_torch(checked.graph, seed=2).eval()
    standalone.load_state_dict(fx_module.state_dict())
    x = _inputs(3, 5)
    np.testing.assert_array_equal(_torch(standalone, x), _torch(fx_module, x))


# -- init, parameters, FLOPs --------------------------------------------------------------


def test_default_init_is_torchs_uniform_and_init_replaces_the_matrices() -> None:
    bound = 1 / math.sqrt(16)
    checked = check_layer("gru(16, layers=2, bidirectional=true)", "[B, T, 8]")
    for key, w in initial_weights(checked.graph, 0).items():
        assert np.abs(w).max() <= bound, key
        assert np.abs(w).max() > 0.9 * bound and abs(w.mean()) < 0.2 * bound, key
    ortho = check_layer("gru(16, init=orthogonal)", "[B, T, 16]")
    weights = initial_weights(ortho.graph, 0)
    whh = next(v for k, v in weights.items() if k.endswith("weight_hh_l0"))
    np.testing.assert_allclose(whh.T @ whh, np.eye(16), atol=1e-5)
    assert np.abs(next(v for k, v in weights.items() if k.endswith("bias_hh_l0"))).max() <= 0.25


@pytest.mark.parametrize(
    ("layer", "gates", "pointwise"),
    [
        ("rnn(8)", 1, 1),
        ("gru(8, bias=false)", 3, 6),
        ("lstm(8, layers=2, bidirectional=true)", 4, 9),
    ],
)
def test_flops_are_symbolic_in_the_sequence_length(layer: str, gates: int, pointwise: int) -> None:
    node = check_layer(layer, "[B, T, 4]").graph.nodes[0]
    h, d, bias = 8, 2 if node.attr("bidirectional") else 1, node.attr("bias")
    per_step = 0
    for width in [4] + [d * h] * (node.attr("layers") - 1):
        mat = 2 * gates * h * (width + h) + gates * h
        per_step += d * (mat + (2 * gates * h if bias else 0) + pointwise * h)
    assert node.flops == per_step * sym("B") * sym("T")
    assert check_layer(layer, "[1, 7, 4]").graph.nodes[0].flops == per_step * 7


# -- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        ("lstm(8)", "[B, 16]", "lstm needs a batch of sequences [B, T, F], got [B, 16]"),
        ("gru(8)", "[B, 3, 8, 8]", "gru needs a batch of sequences [B, T, F], got [B, 3, 8, 8]"),
        ("rnn(8)", "[B, T, F]", "rnn needs a known number of features on the last axis"),
        (
            "lstm(8)",
            "{shape: [B, T, 1], dtype: int64}",
            "lstm needs a floating-point input, but 'x' is int64",
        ),
        ("lstm(0)", "[B, T, 4]", "argument 'hidden': expected an integer >= 1, got 0"),
        ("gru(8, layers=0)", "[B, T, 4]", "argument 'layers': expected an integer >= 1, got 0"),
        ("lstm(8, dropout=1)", "[B, T, 4]", "expected a probability in [0, 1), got 1"),
        ("rnn(8, nonlinearity=sigmoid)", "[B, T, 4]", "expected one of tanh, relu"),
        ("lstm(8, return=first)", "[B, T, 4]", "expected one of sequence, last"),
        ("lstm(8, nonlinearity=relu)", "[B, T, 4]", "lstm has no argument 'nonlinearity'"),
        ("gru(8, bidirectional=1)", "[B, T, 4]", "expected true or false"),
    ],
)
def test_errors_are_located(layer: str, shape: str, message: str) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(layer, shape)
    assert message in info.value.render()
    assert info.value.loc is not None and info.value.loc.line == 6  # the layer line
    assert info.value.loc.col >= 5


def test_dropout_of_one_layer_warns() -> None:
    (warning,) = check_layer("lstm(8, dropout=0.3)", "[B, T, 4]").warnings
    assert "dropout=0.3 of a one-layer lstm does nothing" in warning.message
    assert warning.loc is not None and warning.loc.line == 6
    assert not check_layer("lstm(8, layers=2, dropout=0.3)", "[B, T, 4]").warnings
