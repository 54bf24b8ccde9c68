"""weight_norm=true on dense and the convolutions, against torch's own
`torch.nn.utils.parametrizations.weight_norm` modules: a state_dict of the torch module
loads into dlc's torch module and ONNX model by name and both compute what torch does
(ONNX at every opset: ReduceL2's axes are an attribute before 18, an input from it); the
weight starts equal to v (g = ‖v‖) in dlc's init, its torch module and the standalone
model.py; the FLOPs are those of the plain layer (onnxruntime folds the weight), the
parameters one g per slice of the weight's axis 0 more; specs/zoo/tcn.yaml is the TCN of
the paper's reference code, weight for weight. The registry rows (ops/*/examples.py) add
the shape, parameter-name and parity cases; tests/test_gradients.py checks the modules'
gradients."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import checker
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm

from conftest import ROOT, check_layer, check_text
from dlc.compiler.dims import evaluate
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.model_py import model_py
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.pipeline import check_file

G, V = "parametrizations.weight.original0", "parametrizations.weight.original1"
ENV = {"B": 2, "T": 9, "H": 5, "W": 6}

# (dlc layer, input, the torch module that weight_norm wraps, what it is applied to)
ROWS: list[tuple[str, str, Callable[[], nn.Module], Callable[[torch.Tensor], torch.Tensor]]] = [
    ("dense(8, weight_norm=true)", "[B, T, 4]", lambda: nn.Linear(4, 8), lambda x: x),
    ("dense(3, bias=false, weight_norm=true)", "[B, 5]", lambda: nn.Linear(5, 3, False),
     lambda x: x),
    ("conv1d(6, 3, groups=2, weight_norm=true)", "[B, 4, T]", lambda: nn.Conv1d(4, 6, 3, groups=2),
     lambda x: x),
    # causal as the TCN's reference code has it: a plain conv of the left-padded input
    ("conv1d(4, 3, padding=causal, dilation=2, weight_norm=true)", "[B, 2, T]",
     lambda: nn.Conv1d(2, 4, 3, dilation=2), lambda x: F.pad(x, (4, 0))),
    ("conv2d(6, 3, stride=2, padding=1, weight_norm=true)", "[B, 3, H, W]",
     lambda: nn.Conv2d(3, 6, 3, stride=2, padding=1), lambda x: x),
    ("conv_transpose2d(8, 3, stride=2, bias=false, weight_norm=true)", "[B, 4, H, W]",
     lambda: nn.ConvTranspose2d(4, 8, 3, stride=2, bias=False), lambda x: x),
]  # fmt: skip
IDS = [r[0] for r in ROWS]


def _input(shape: tuple) -> np.ndarray:
    """A random input of that (symbolic) shape, at the sizes of ENV."""
    dims = [evaluate(d, ENV) for d in shape]
    return np.random.default_rng(0).standard_normal(dims).astype(np.float32)


@pytest.mark.parametrize(("layer", "shape", "make", "prep"), ROWS, ids=IDS)
def test_a_torch_weight_norm_state_dict_loads_by_name_and_computes_the_same(
    layer: str, shape: str, make: Callable, prep: Callable
) -> None:
    graph = check_layer(layer, shape).graph
    (node,) = graph.nodes
    torch.manual_seed(0)
    theirs = weight_norm(make()).eval()
    with torch.no_grad():  # as after training: g no longer ‖v‖, so g and v both matter
        g = theirs.parametrizations.weight.original0
        g.mul_(torch.empty_like(g).uniform_(0.5, 2.0))
    state = {f"{node.name}.{k}": v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert {f"{node.name}.{p.name}" for p in node.params} == state.keys()
    x = _input(graph.inputs[0].type.shape)
    with torch.no_grad():
        want = theirs(prep(torch.from_numpy(x))).numpy()
        got = to_torch(graph, state).eval()(x=torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for opset in supported_opsets():
        model = to_onnx(graph, state, opset=opset)
        checker.check_model(model, full_check=True)
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        (out,) = session.run(None, {"x": x})
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5, err_msg=f"opset {opset}")


@pytest.mark.parametrize(("layer", "shape", "make", "prep"), ROWS, ids=IDS)
def test_the_weight_starts_equal_to_v(
    layer: str, shape: str, make: Callable, prep: Callable
) -> None:
    """g = ‖v‖ per slice of axis 0 in dlc's init (as torch sets it when it wraps a
    module), so the layer starts as the plain layer whose weight is v, in torch and ONNX."""
    graph = check_layer(layer, shape).graph
    (node,) = graph.nodes
    weights = initial_weights(graph, seed=3)
    g, v = weights[f"{node.name}.{G}"], weights[f"{node.name}.{V}"]
    norm = np.sqrt(np.square(v.astype(np.float64)).sum(tuple(range(1, v.ndim)), keepdims=True))
    np.testing.assert_allclose(g, norm, rtol=1e-6)
    module = to_torch(graph, weights).eval()
    inner = module.get_submodule(node.name)
    torch.testing.assert_close(inner.weight, torch.from_numpy(v))

    plain = check_layer(layer.replace(", weight_norm=true", ""), shape).graph
    plain_weights = {k.replace(V, "weight"): a for k, a in weights.items() if not k.endswith(G)}
    x = _input(graph.inputs[0].type.shape)
    with torch.no_grad():
        want = to_torch(plain, plain_weights).eval()(x=torch.from_numpy(x)).numpy()
        got = module(x=torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    session = ort.InferenceSession(
        to_onnx(graph, weights).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    np.testing.assert_allclose(session.run(None, {"x": x})[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("layer", "shape", "make", "prep"), ROWS, ids=IDS)
def test_flops_are_the_plain_layers_and_g_adds_one_per_slice(
    layer: str, shape: str, make: Callable, prep: Callable
) -> None:
    """Inference FLOPs: onnxruntime folds g·v/‖v‖ into a constant, so the layer costs
    what the plain one does. Parameters: g, one per slice of the weight's axis 0 (the
    output units; conv_transpose2d's input channels, torch's dim=0)."""
    (node,) = check_layer(layer, shape).graph.nodes
    (plain,) = check_layer(layer.replace(", weight_norm=true", ""), shape).graph.nodes
    assert node.flops == plain.flops
    weight = next(p for p in plain.params if p.name == "weight")
    assert sum(p.size for p in node.params) == sum(p.size for p in plain.params) + weight.shape[0]


SPEC = """dlc: 1
name: wn
inputs: {x: [B, 2, T]}
model:
  - conv1d(4, 3, padding=causal, weight_norm=true) -> relu
  - conv1d(3, 1, weight_norm=true) -> relu
  - take(-1, axis=2)
  - dense(5, weight_norm=true)
"""


def test_model_py_builds_torchs_weight_norm_modules_and_loads_dlcs_state_dict(
    tmp_path: Path,
) -> None:
    graph = check_text(SPEC).graph
    source = model_py(graph, "test")
    assert "WeightNormCausalConv1d(2, 4, (3,)" in source and "WeightNormLinear(3, 5" in source
    path = tmp_path / "wn_model.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("wn_model", path)
    assert spec is not None and spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    module = to_torch(graph, seed=5).eval()
    torch.manual_seed(0)
    standalone = generated.Model().eval()
    normed = [m for m in standalone.modules() if hasattr(m, "parametrizations")]
    assert len(normed) == 3
    for sub in normed:  # torch's own init, then g = ‖v‖ as torch wraps it: weight = v
        torch.testing.assert_close(sub.weight, sub.parametrizations.weight.original1)
    assert standalone.state_dict().keys() == module.state_dict().keys()
    standalone.load_state_dict(module.state_dict())
    x = torch.randn(2, 2, 7)
    with torch.no_grad():
        torch.testing.assert_close(standalone(x), module(x=x))


def test_onnxruntime_folds_the_weight_to_a_constant(tmp_path: Path) -> None:
    """g·v/‖v‖ depends on initializers only: onnxruntime's basic optimizations leave the
    Conv and Gemm alone, as for the plain layers (so the inference FLOPs are theirs)."""
    graph = check_text(SPEC).graph
    model = to_onnx(graph, initial_weights(graph))
    assert {"ReduceL2", "Div", "Mul"} <= {n.op_type for n in model.graph.node}
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    optimized = onnx.load(str(tmp_path / "optimized.onnx"))
    assert {n.op_type for n in optimized.graph.node} == {"Conv", "Relu", "Gather", "Gemm"}


# -- specs/zoo/tcn.yaml against the paper's reference code ----------------------------


class _Chomp(nn.Module):
    """locuslab/TCN's Chomp1d: drops the last `size` steps of [B, C, T]."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, : -self.size]


class _TemporalBlock(nn.Module):
    """locuslab/TCN's TemporalBlock (TCN/tcn.py): two weight-normalized dilated convs
    padded on both sides and chomped on the right, ReLU and dropout after each, a 1x1
    conv on the shortcut where the widths differ, ReLU of the sum."""

    def __init__(self, c_in: int, c_out: int, k: int, d: int, p: float) -> None:
        super().__init__()
        pad = (k - 1) * d
        self.conv1 = weight_norm(nn.Conv1d(c_in, c_out, k, padding=pad, dilation=d))
        self.conv2 = weight_norm(nn.Conv1d(c_out, c_out, k, padding=pad, dilation=d))
        self.net = nn.Sequential(self.conv1, _Chomp(pad), nn.ReLU(), nn.Dropout(p),
                                 self.conv2, _Chomp(pad), nn.ReLU(), nn.Dropout(p))  # fmt: skip
        self.downsample = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.net(x) + res)


def test_the_tcn_spec_is_locuslabs_sequential_mnist_tcn() -> None:
    """The reference's model (8 blocks of 25 channels, kernel 7, dilation 2^i, a linear
    layer on the last step), built with torch's weight_norm: its parameters, renamed to
    the spec's nodes, load into the spec's torch module, strictly, and give its logits
    (the reference's before log_softmax), also through onnxruntime."""
    graph = check_file(ROOT / "specs" / "zoo" / "tcn.yaml").graph
    torch.manual_seed(0)
    blocks = [_TemporalBlock(1 if i == 0 else 25, 25, 7, 2**i, 0.05) for i in range(8)]
    network, linear = nn.Sequential(*blocks).eval(), nn.Linear(25, 10)
    state: dict[str, torch.Tensor] = {}
    for i, block in enumerate(blocks):
        kind = "temporal_down" if i == 0 else "temporal"
        for part in ("conv1", "conv2", "downsample"):
            if getattr(block, part) is not None:
                for k, v in getattr(block, part).state_dict().items():
                    state[f"block{i}.{kind}.{part}.{k}"] = v
    state.update({f"fc.{k}": v for k, v in linear.state_dict().items()})
    assert sum(v.numel() for v in state.values()) == graph.num_params == 66_910
    module = to_torch(graph, state).eval()
    x = torch.randn(2, 1, 40)
    with torch.no_grad():
        want = linear(network(x)[:, :, -1])
        torch.testing.assert_close(module(x=x), want)
    session = ort.InferenceSession(
        to_onnx(graph, {k: v.numpy() for k, v in state.items()}).SerializeToString(),
        providers=["CPUExecutionProvider"],
    )
    (got,) = session.run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-5, atol=1e-5)
