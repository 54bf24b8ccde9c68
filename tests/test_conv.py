"""Tests of the layer library's conv ops: their rows of the registry tables (test_registry
and test_parity run them) and the tests of their own: inferred shapes against the shapes
torch produces at several sizes, values against a numpy reference of each op (written
from torch's documented formulas, not from the lowering) and onnxruntime, also for the
configurations onnx's own reference evaluator gets wrong, FLOPs against torch's flop
counter, located errors, and the digits data fitting an image input."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx import checker
from torch.utils.flop_counter import FlopCounterMode

from conftest import ROOT, check_layer
from dlc.compiler.dims import evaluate, sym
from dlc.compiler.errors import DlcError
from dlc.compiler.ir import Node
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import check_file
from dlc.compiler.training import DataOptions
from dlc.runtime.train.feeds import load_feeds


def _shape(e: Example) -> str:
    """The input as one_layer writes it: the shape, with its dtype if not float32."""
    return f"{{shape: {e.shape}, dtype: {e.dtype}}}" if e.dtype else e.shape


# op -> [(layer text, input shape, expected output shape)]: the examples of these ops
# that the differential tests run (their OpDefs carry them)
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    op: [(e.layer, _shape(e), e.out) for e in REGISTRY[op].examples if e.parity]
    for op in (
        "conv1d",
        "conv2d",
        "conv_transpose2d",
        "maxpool1d",
        "maxpool2d",
        "avgpool1d",
        "avgpool2d",
        "adaptive_avgpool1d",
        "adaptive_avgpool2d",
        "adaptive_maxpool2d",
        "global_avgpool",
        "global_maxpool",
        "upsample",
    )
}

nn = torch.nn


CASES = [(op, layer, shape) for op, cases in SHAPES.items() for layer, shape, _ in cases]
IDS = [f"{op}:{layer}:{shape}" for op, layer, shape in CASES]

# -- a numpy reference of each op, from torch's documented formulas -------------------
# Each takes an object with `.node` (the IR node), `.x` (the input) and `.p` (the params
# by name), as test_lower_onnx's `Call` has, and computes in float64.


def _ints(node: Node, key: str, n: int, default: int | None = None) -> tuple[int, ...]:
    value = node.attr_dict.get(key, default)
    return (value,) * n if isinstance(value, int) else tuple(value)


def _geometry(node: Node, n: int) -> tuple[tuple[int, ...], ...]:
    """(kernel, stride, dilation, pad before, pad after) from the attributes alone."""
    k = _ints(node, "kernel", n)
    s = k if node.attr_dict.get("stride", 1) is None else _ints(node, "stride", n)
    d = _ints(node, "dilation", n, 1)
    padding = node.attr("padding")
    if padding == "same":  # torch: d·(k − 1) in all, the odd one on the right
        total = [di * (ki - 1) for di, ki in zip(d, k, strict=True)]
        return k, s, d, tuple(t // 2 for t in total), tuple(t - t // 2 for t in total)
    if padding == "causal":  # d·(k − 1) on the left, none on the right
        return k, s, d, tuple(di * (ki - 1) for di, ki in zip(d, k, strict=True)), (0,) * n
    p = (0,) * n if padding == "valid" else _ints(node, "padding", n)
    return k, s, d, p, p


def _windows(x: np.ndarray, k, s, d, before, after, fill: float) -> tuple[np.ndarray, list]:
    """The padded input's windows, stacked on a new last axis: [B, C, *out, ∏k]."""
    x = np.pad(x, [(0, 0), (0, 0)] + list(zip(before, after, strict=True)), constant_values=fill)
    n = x.ndim - 2
    out = [(x.shape[2 + i] - d[i] * (k[i] - 1) - 1) // s[i] + 1 for i in range(n)]
    taps = []
    for idx in itertools.product(*(range(ki) for ki in k)):
        sl = tuple(
            slice(idx[i] * d[i], idx[i] * d[i] + s[i] * (out[i] - 1) + 1, s[i]) for i in range(n)
        )
        taps.append(x[(slice(None), slice(None)) + sl])
    return np.stack(taps, axis=-1), out


def _bias(y: np.ndarray, c: Any) -> np.ndarray:
    b = c.p.get("bias")
    return y if b is None else y + b.reshape((-1,) + (1,) * (y.ndim - 2))


def _weight(p: dict[str, np.ndarray]) -> np.ndarray:
    """The weight, or weight_norm's g·v/‖v‖ with the norm over every axis but the first
    (Salimans & Kingma; torch's dim=0)."""
    if "weight" in p:
        return p["weight"]
    g, v = p["parametrizations.weight.original0"], p["parametrizations.weight.original1"]
    return g * v / np.sqrt(np.square(v).sum(axis=tuple(range(1, v.ndim)), keepdims=True))


def ref_conv(c: Any) -> np.ndarray:
    """y[b, m] = Σ_{c in m's group, taps} w[m, c, tap] x[b, c, s·i + d·tap − p]."""
    n = c.x.ndim - 2
    k, s, d, before, after = _geometry(c.node, n)
    win, _ = _windows(c.x, k, s, d, before, after, 0.0)  # [B, C, *out, K]
    w = _weight(c.p)  # [M, C/g, *k]
    g = c.node.attr("groups")
    cg, mg = c.x.shape[1] // g, w.shape[0] // g
    parts = [
        np.einsum(
            "bc...k,mck->bm...",
            win[:, i * cg : (i + 1) * cg],
            w[i * mg : (i + 1) * mg].reshape(mg, cg, -1),
        )
        for i in range(g)
    ]
    return _bias(np.concatenate(parts, axis=1), c)


def ref_conv_transpose(c: Any) -> np.ndarray:
    """Every x[b, c, i] adds w[c, m, tap]·x to y[b, m, s·i + d·tap], then p is cut from
    each side (output_padding extends the far side)."""
    k, s, d, p, _ = _geometry(c.node, 2)
    extra = _ints(c.node, "output_padding", 2)
    w = _weight(c.p)  # [C, M/g, *k]
    g = c.node.attr("groups")
    cg, mg = c.x.shape[1] // g, w.shape[1]
    size = [(c.x.shape[2 + i] - 1) * s[i] + d[i] * (k[i] - 1) + 1 + extra[i] for i in range(2)]
    full = np.zeros((c.x.shape[0], mg * g, *size))
    for tap in itertools.product(*(range(ki) for ki in k)):
        sl = tuple(
            slice(tap[i] * d[i], tap[i] * d[i] + s[i] * (c.x.shape[2 + i] - 1) + 1, s[i])
            for i in range(2)
        )
        for j in range(g):
            xs = c.x[:, j * cg : (j + 1) * cg]
            contrib = np.einsum(
                "bc...,cm->bm...", xs, w[(slice(j * cg, (j + 1) * cg), slice(None)) + tap]
            )
            full[(slice(None), slice(j * mg, (j + 1) * mg)) + sl] += contrib
    crop = tuple(slice(p[i], size[i] - p[i]) for i in range(2))
    return _bias(full[(slice(None), slice(None)) + crop], c)


def _pool_size(size: int, k: int, s: int, p: int, ceil: bool) -> int:
    """torch's pooling output size: floor (or ceil) of (L + 2p - k)/s, plus 1; with ceil,
    less the last window if it would start in the right padding."""
    span = size + 2 * p - k
    out = (-(-span // s) if ceil else span // s) + 1
    return out - 1 if ceil and (out - 1) * s >= size + p else out


def ref_pool(kind: str) -> Callable[[Any], np.ndarray]:
    """Max over each window's input elements, or their sum divided by the window's size
    (clipped to the padded input) or, with count_include_pad=false, by their count."""

    def ref(c: Any) -> np.ndarray:
        n = c.x.ndim - 2
        k, s, _, p, _ = _geometry(c.node, n)
        ceil = c.node.attr("ceil_mode")
        sizes = c.x.shape[2:]
        out = [_pool_size(sizes[i], k[i], s[i], p[i], ceil) for i in range(n)]
        y = np.empty(c.x.shape[:2] + tuple(out))
        for idx in itertools.product(*(range(o) for o in out)):
            starts = [idx[i] * s[i] - p[i] for i in range(n)]
            ends = [min(starts[i] + k[i], sizes[i] + p[i]) for i in range(n)]
            cut = tuple(
                slice(max(a, 0), min(b, sizes[i]))
                for i, (a, b) in enumerate(zip(starts, ends, strict=True))
            )
            win = c.x[(slice(None), slice(None)) + cut].reshape(c.x.shape[:2] + (-1,))
            if kind == "max":
                y[(slice(None), slice(None)) + idx] = win.max(-1)
                continue
            count = math.prod(b - a for a, b in zip(starts, ends, strict=True))
            if not c.node.attr("count_include_pad"):
                count = win.shape[-1]
            y[(slice(None), slice(None)) + idx] = win.sum(-1) / count
        return y

    return ref


def ref_adaptive(kind: str) -> Callable[[Any], np.ndarray]:
    """torch's windows: output i of o over L reads [⌊i·L/o⌋, ⌈(i + 1)·L/o⌉)."""

    def ref(c: Any) -> np.ndarray:
        sizes = c.x.shape[2:]
        out = _ints(c.node, "output_size", len(sizes))
        y = np.empty(c.x.shape[:2] + out)
        for idx in itertools.product(*(range(o) for o in out)):
            cut = tuple(
                slice(i * size // o, -(-(i + 1) * size // o))
                for i, size, o in zip(idx, sizes, out, strict=True)
            )
            win = c.x[(slice(None), slice(None)) + cut].reshape(c.x.shape[:2] + (-1,))
            y[(slice(None), slice(None)) + idx] = win.max(-1) if kind == "max" else win.mean(-1)
        return y

    return ref


def _linear_1d(x: np.ndarray, axis: int, scale: int) -> np.ndarray:
    """Half-pixel linear resampling along one axis: src = (j + ½)/scale − ½, clamped."""
    n = x.shape[axis]
    src = np.maximum((np.arange(n * scale) + 0.5) / scale - 0.5, 0.0)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n - 1)
    lam = (src - lo).reshape([-1 if a == axis else 1 for a in range(x.ndim)])
    return np.take(x, lo, axis) * (1 - lam) + np.take(x, hi, axis) * lam


def ref_upsample(c: Any) -> np.ndarray:
    """nearest: y[j] = x[⌊j/scale⌋]; bilinear: separable half-pixel linear."""
    scales = _ints(c.node, "scale", c.x.ndim - 2)
    y = c.x
    for i, sc in enumerate(scales):
        axis = 2 + i
        if c.node.attr("mode") == "bilinear":
            y = _linear_1d(y, axis, sc)
        else:
            y = np.take(y, np.arange(y.shape[axis] * sc) // sc, axis)
    return y


def _spatial(x: np.ndarray) -> tuple[int, ...]:
    return tuple(range(2, x.ndim))


REFERENCE: dict[str, Callable[[Any], np.ndarray]] = {
    "conv1d": ref_conv,
    "conv2d": ref_conv,
    "conv_transpose2d": ref_conv_transpose,
    "maxpool1d": ref_pool("max"),
    "maxpool2d": ref_pool("max"),
    "avgpool1d": ref_pool("avg"),
    "avgpool2d": ref_pool("avg"),
    "adaptive_avgpool1d": ref_adaptive("avg"),
    "adaptive_avgpool2d": ref_adaptive("avg"),
    "adaptive_maxpool2d": ref_adaptive("max"),
    "global_avgpool": lambda c: c.x.mean(_spatial(c.x)),
    "global_maxpool": lambda c: c.x.max(_spatial(c.x)),
    "upsample": ref_upsample,
}

# -- inferred shapes and values against torch at several sizes ------------------------

# symbol values, odd and even, small and larger (every SHAPES row is valid at each)
ENVS = [
    {"B": 2, "H": 3, "W": 4, "T": 3, "C": 2},
    {"B": 1, "H": 7, "W": 6, "T": 10, "C": 3},
    {"B": 3, "H": 10, "W": 9, "T": 7, "C": 1},
]
# More configurations, checked here only. The first three are ones onnx's
# ReferenceEvaluator (which test_parity runs on SHAPES) computes wrongly: its ConvTranspose
# slices a grouped convolution's weight by output channels, and its 1-D MaxPool with
# stride 1 and padding indexes past its output. The others mix values per axis. Then
# ceil_mode: that MaxPool again, two AveragePools whose last window overhangs the padded
# input (the evaluator gets some sizes wrong), one whose last window torch drops (at
# T = 10); and adaptive pooling to more windows than the input has (they overlap).
MORE = [
    (
        "conv_transpose2d",
        "conv_transpose2d(6, 3, stride=2, padding=1, output_padding=1, groups=3)",
        "[B, 3, H, W]",
    ),
    (
        "conv_transpose2d",
        "conv_transpose2d(4, [2, 3], stride=[2, 1], groups=2, "
        "dilation=[1, 2], output_padding=[1, 0])",
        "[B, 2, H, W]",
    ),
    ("maxpool1d", "maxpool1d(3, stride=1, padding=1)", "[B, 4, T]"),
    ("conv2d", "conv2d(8, [2, 4], padding=same, groups=2, dilation=[3, 1])", "[B, 4, H, W]"),
    ("maxpool2d", "maxpool2d([3, 2], stride=[1, 2], padding=[1, 0])", "[B, 2, H, W]"),
    ("avgpool2d", "avgpool2d([2, 3], stride=1, padding=[1, 1])", "[B, 2, H, W]"),
    ("maxpool1d", "maxpool1d(3, stride=1, padding=1, ceil_mode=true)", "[B, 4, T]"),
    ("avgpool1d", "avgpool1d(3, stride=3, ceil_mode=true)", "[B, 2, T]"),
    ("avgpool1d", "avgpool1d(2, stride=3, padding=1, ceil_mode=true)", "[B, 2, T]"),
    (
        "avgpool2d",
        "avgpool2d(4, stride=3, padding=[1, 2], ceil_mode=true, count_include_pad=false)",
        "[B, 2, H, W]",
    ),
    ("adaptive_maxpool2d", "adaptive_maxpool2d([5, 3])", "[B, 2, 3, 2]"),
    ("adaptive_avgpool2d", "adaptive_avgpool2d([4, 7])", "[B, 2, 9, 3]"),
]


def _perturbed(graph: Any) -> dict[str, np.ndarray]:
    """The init, with noise so that the zero biases are not zero."""
    rng = np.random.default_rng(0)
    return {
        k: v + rng.normal(0, 0.1, v.shape).astype(np.float32)
        for k, v in initial_weights(graph, 0).items()
    }


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(
    ("op", "layer", "shape"),
    CASES + MORE,
    ids=IDS + [f"{op}:{layer}:{shape}" for op, layer, shape in MORE],
)
def test_shapes_and_values_match_torch_numpy_and_onnxruntime(
    op: str, layer: str, shape: str
) -> None:
    """At every size of ENVS: torch's output has the inferred shape, and torch, the numpy
    reference and onnxruntime compute the same values."""
    graph = check_layer(layer, shape).graph
    (node,) = graph.nodes
    weights = _perturbed(graph)
    module = to_torch(graph, weights).eval()
    session = ort.InferenceSession(
        to_onnx(graph, weights).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    params = {p.name: weights[f"{node.name}.{p.name}"].astype(np.float64) for p in node.params}
    rng = np.random.default_rng(1)
    for env in ENVS:
        x = rng.standard_normal([evaluate(d, env) for d in graph.inputs[0].type.shape])
        x32 = x.astype(np.float32)
        with torch.no_grad():
            got = module(x=torch.from_numpy(x32)).numpy()
        assert list(got.shape) == [evaluate(d, env) for d in node.type.shape], env
        want = REFERENCE[op](SimpleNamespace(node=node, x=x, p=params))
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=str(env))
        (theirs,) = session.run(None, {"x": x32})
        np.testing.assert_allclose(theirs, got, rtol=1e-5, atol=1e-5, err_msg=str(env))


# -- FLOPs ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer",
    [
        "conv1d(6, 3, stride=2, groups=2, bias=false)",
        "conv1d(6, 3, padding=causal, dilation=2, bias=false)",
        "conv2d(8, [3, 2], padding=same, bias=false)",
        "conv_transpose2d(6, 3, stride=2, groups=3, bias=false)",
    ],
)
def test_conv_flops_equal_torchs_count(layer: str) -> None:
    """Without a bias, 2 FLOPs per multiply-add, as torch.utils.flop_counter counts."""
    shape = "[B, 6, 9]" if layer.startswith("conv1d") else "[B, 6, 7, 5]"
    graph = check_layer(layer, shape).graph
    module = to_torch(graph).eval()
    x = torch.zeros([evaluate(d, {"B": 2}) for d in graph.inputs[0].type.shape])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(x=x)
    assert evaluate(graph.nodes[0].flops, {"B": 2}) == counter.get_total_flops()


def test_conv_flops_count_the_bias_and_pool_flops_the_windows() -> None:
    conv = check_layer("conv2d(16, 3)", "[B, 3, 8, 8]").graph.nodes[0]
    assert conv.flops == sym("B") * 16 * 6 * 6 * (2 * 3 * 9 + 1)
    pool = check_layer("maxpool2d(2)", "[B, 16, 8, 8]").graph.nodes[0]
    assert pool.flops == sym("B") * 16 * 4 * 4 * 4
    ceil = check_layer("avgpool2d(3, stride=2, ceil_mode=true)", "[B, 16, 8, 8]").graph.nodes[0]
    assert ceil.flops == sym("B") * 16 * 4 * 4 * 9
    adaptive = check_layer("adaptive_avgpool2d([6, 6])", "[B, 16, H, W]").graph.nodes[0]
    assert adaptive.flops == sym("B") * 16 * sym("H") * sym("W")  # one per input element


# -- pooling options and adaptive pooling ---------------------------------------------


@pytest.mark.parametrize("op", ["maxpool1d", "avgpool1d"])
def test_ceil_mode_sizes_are_torchs_at_every_length(op: str) -> None:
    """The symbolic size, evaluated at L = 1..12, is torch's size, for every kernel,
    stride and padding torch allows (where the kernel fits the padded input)."""
    module = nn.MaxPool1d if op == "maxpool1d" else nn.AvgPool1d
    for k, s in itertools.product(range(1, 5), range(1, 5)):
        for p in range(k // 2 + 1):
            layer = f"{op}({k}, stride={s}, padding={p}, ceil_mode=true)"
            (size,) = check_layer(layer, "[B, 1, T]").graph.nodes[0].type.shape[2:]
            for t in range(max(1, k - 2 * p), 13):
                want = module(k, s, p, ceil_mode=True)(torch.zeros(1, 1, t)).shape[-1]
                assert evaluate(size, {"T": t}) == want, (layer, t)


def test_pools_without_the_options_lower_as_before() -> None:
    """No ceil_mode attribute in ONNX, no ceil_mode or count_include_pad argument in the
    torch module unless asked: the models of existing specs stay the same."""
    graph = check_layer("maxpool2d(2) -> avgpool2d(2)", "[B, 1, 8, 8]").graph
    model = to_onnx(graph, {})
    assert [sorted(a.name for a in n.attribute) for n in model.graph.node] == [
        ["kernel_shape", "pads", "strides"],
        ["count_include_pad", "kernel_shape", "pads", "strides"],
    ]
    pools = [m for m in to_torch(graph).modules() if isinstance(m, nn.MaxPool2d | nn.AvgPool2d)]
    assert [m.ceil_mode for m in pools] == [False, False] and pools[1].count_include_pad


CEIL = [
    ("maxpool1d(2, stride=3, padding=1, ceil_mode=true)", "[B, 2, 10]", [None]),  # drops one
    ("avgpool1d(3, stride=2, ceil_mode=true)", "[B, 2, 8]", [1]),  # a partial window
    ("maxpool2d(3, stride=2, ceil_mode=true)", "[B, 2, 7, 8]", [1]),
    # the height drops a window, the width ends in a partial one: a pool for each
    (
        "maxpool2d([2, 3], stride=[3, 2], padding=[1, 0], ceil_mode=true)",
        "[B, 2, 10, 8]",
        [1, None],
    ),
    ("avgpool2d([2, 3], stride=[3, 2], padding=1, ceil_mode=true)", "[B, 2, 10, 8]", [1, None]),
    (
        "avgpool2d([3, 2], stride=[2, 3], padding=1, ceil_mode=true, count_include_pad=false)",
        "[B, 2, 8, 10]",
        [1, None],
    ),
]


@pytest.mark.parametrize(("layer", "shape", "modes"), CEIL, ids=[c[0] for c in CEIL])
def test_ceil_mode_models_check_and_compute_torchs_values_at_every_opset(
    layer: str, shape: str, modes: list
) -> None:
    """ceil_mode=1 only for the axes with a partial last window, so that the checker's
    shape inference agrees at every opset (before 22 it does not drop a window that would
    start in the right padding), and onnxruntime computes torch's values."""
    graph = check_layer(layer, shape).graph
    x = (
        np.random.default_rng(0)
        .standard_normal([evaluate(d, {"B": 2}) for d in graph.inputs[0].type.shape])
        .astype(np.float32)
    )
    with torch.no_grad():
        want = to_torch(graph).eval()(x=torch.from_numpy(x)).numpy()
    for opset in supported_opsets():
        model = to_onnx(graph, {}, opset=opset)
        checker.check_model(model, full_check=True)
        got = [
            next((a.i for a in n.attribute if a.name == "ceil_mode"), None)
            for n in model.graph.node
        ]
        assert got == modes
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        (theirs,) = session.run(None, {"x": x})
        np.testing.assert_allclose(theirs, want, rtol=1e-5, atol=1e-6, err_msg=str(opset))


@pytest.mark.parametrize(
    ("layer", "shape", "ops"),
    [
        ("adaptive_avgpool2d(1)", "[B, 3, H, W]", ["GlobalAveragePool"]),
        ("adaptive_maxpool2d([2, 3])", "[B, 3, 8, 9]", ["MaxPool"]),
        ("adaptive_avgpool1d(2)", "[B, 3, 5]", ["Slice", "ReduceMean"] * 2 + ["Concat"]),
        (
            "adaptive_maxpool2d([1, 2])",
            "[B, 3, H, 4]",
            ["ReduceMax"] + ["Slice", "ReduceMax"] * 2 + ["Concat"],
        ),
    ],
)
def test_adaptive_pooling_lowers_to_the_simplest_onnx(layer: str, shape: str, ops: list) -> None:
    """Global pooling for size 1, a plain pool where the size divides, else torch's
    windows one by one (an axis pooled to 1 first reduced whole); the checker and its
    shape inference accept each at every opset."""
    graph = check_layer(layer, shape).graph
    assert [n.op_type for n in to_onnx(graph, {}).graph.node] == ops
    for opset in supported_opsets():
        checker.check_model(to_onnx(graph, {}, opset=opset), full_check=True)


def test_adaptive_pooling_of_a_symbolic_size_checks_but_does_not_lower_to_onnx() -> None:
    checked = check_layer("adaptive_avgpool2d([6, 1])", "[B, 16, H, W]")
    assert str(checked.graph.nodes[0].type) == "[B, 16, 6, 1]"
    module = to_torch(checked.graph).eval()
    assert module(x=torch.zeros(2, 16, 13, 5)).shape == (2, 16, 6, 1)
    with pytest.raises(DlcError) as info:
        to_onnx(checked.graph, {})
    text = info.value.render()
    assert (
        "cannot lower adaptive_avgpool2d to ONNX: the input's height H is symbolic and pooled "
        "to 6, but ONNX has no adaptive pooling and its windows need a known size (the spec "
        "checks, and lowers to torch)"
    ) in text
    assert "give the input's height a number, or pool it to 1" in text
    assert info.value.loc is not None and (info.value.loc.line, info.value.loc.col) == (6, 5)


# -- errors --------------------------------------------------------------------------

ERRORS = [
    (
        "conv2d(8, 3)",
        "[B, 64]",
        "conv2d needs [B, C, H, W] (batch, channels, height, width), got [B, 64]",
        "reshape([B, 1, 8, 8])",
    ),
    ("conv1d(8, 3)", "[B, 1, 8, 8]", "conv1d needs [B, C, L]", "should look like [B, C, L]"),
    (
        "conv2d(8, 3)",
        "[B, C, 8, 8]",
        "conv2d needs a known channel count on axis 1, got [B, C, 8, 8]",
        "give the channel dim a number",
    ),
    (
        "conv2d(8, 3, groups=2)",
        "[B, 3, 8, 8]",
        "conv2d(groups=2) needs input channels divisible by 2, got 3",
        "groups must divide",
    ),
    (
        "conv2d(6, 3, groups=4)",
        "[B, 4, 8, 8]",
        "conv2d(groups=4) needs filters divisible by 4, got 6",
        "groups must divide",
    ),
    (
        "conv2d(8, 5)",
        "[B, 1, 4, 4]",
        "conv2d's kernel 5 is larger than the input's padded height 4 ([B, 1, 4, 4])",
        "smaller",
    ),
    (
        "conv2d(8, 3, dilation=[1, 3])",
        "[B, 1, 6, 6]",
        "conv2d's kernel 3 (dilated to 7) is larger than the input's padded width 6",
        "smaller",
    ),
    (
        "conv2d(8, 3, stride=2, padding=same)",
        "[B, 1, 8, 8]",
        "conv2d(padding=same) needs stride 1, as in torch; got stride 2",
        "padding=1",
    ),
    (
        "conv2d(8, [3, 3, 3])",
        "[B, 1, 8, 8]",
        "conv2d's kernel [3, 3, 3] has 3 entries, but the op has 2 spatial axes",
        "a list of 2",
    ),
    (
        "conv1d(8, 3, padding=[1, 1])",
        "[B, 1, 8]",
        "conv1d's padding [1, 1] has 2 entries, but the op has 1 spatial axis",
        "a list of 1",
    ),
    (
        "conv2d(8, 0)",
        "[B, 1, 8, 8]",
        "argument 'kernel': expected an integer >= 1 or a list of integers >= 1, got number 0",
        None,
        "0)",
    ),
    (
        "conv2d(8, 3, padding=full)",
        "[B, 1, 8, 8]",
        "argument 'padding': expected valid|same "
        "or an integer >= 0 or a list of integers >= 0, got string 'full'",
        None,
        "full",
    ),
    (
        "maxpool2d(2, padding=2)",
        "[B, 1, 8, 8]",
        "maxpool2d's padding 2 is more than half its kernel 2",
        "kernel // 2",
    ),
    (
        "avgpool1d(4)",
        "[B, 2, 3]",
        "avgpool1d's kernel 4 is larger than the input's padded length 3",
        "downsample less",
    ),
    (
        "conv_transpose2d(4, 3, stride=2, output_padding=2)",
        "[B, 1, 4, 4]",
        "conv_transpose2d's output_padding 2 must be smaller than its stride 2 or its dilation 1",
        None,
    ),
    (
        "conv_transpose2d(4, 3, padding=3)",
        "[B, 1, 1, 1]",
        "conv_transpose2d's output height would be -3 for [B, 1, 1, 1]",
        "less padding",
    ),
    (
        "global_avgpool",
        "[B, 16]",
        "global_avgpool needs [B, C, ...] with at least one spatial axis, got [B, 16]",
        None,
    ),
    (
        "upsample(2, mode=bilinear)",
        "[B, 3, T]",
        "upsample(mode=bilinear) needs [B, C, H, W], got [B, 3, T]",
        "mode=nearest",
    ),
    ("upsample(2, mode=cubic)", "[B, 3, 4, 4]", "expected one of nearest, bilinear", None, "cubic"),
    ("upsample([2, 2, 2])", "[B, 3, 4, 4]", "upsample's scale [2, 2, 2] has 3 entries", None),
]


@pytest.mark.parametrize("row", ERRORS, ids=[f"{e[0]}:{e[1]}" for e in ERRORS])
def test_errors_are_located(row: tuple) -> None:
    """Each message and hint, at the layer (line 6, column 5 in one_layer's spec) or at
    the argument whose text starts with the row's fifth item."""
    layer, shape, message, hint, *at = row
    with pytest.raises(DlcError) as info:
        check_layer(layer, shape)
    text = info.value.render()
    assert message in text
    if hint:
        assert hint in text
    assert info.value.loc is not None and info.value.loc.line == 6
    assert info.value.loc.col == 5 + (layer.index(at[0]) if at else 0)


def test_dense_on_a_feature_map_checks_quietly() -> None:
    # legal (the last axis), and a lesson of dlc lint (DLC109, tests/test_lint.py)
    assert not check_layer("conv2d(4, 3) -> dense(10)", "[B, 1, 8, 8]").warnings


# -- data ----------------------------------------------------------------------------


def test_digits_feed_image_inputs_and_an_autoencoder_target_is_its_input() -> None:
    """digits' flat [N, 64] rows become [N, 1, 8, 8] images; a loss target naming the
    input `x` holds the same pixels (digits has an array `x` itself, which the target
    takes flat; the mse loss fits it to the [B, 1, 8, 8] reconstruction)."""
    from sklearn.datasets import load_digits

    data = DataOptions(train="builtin:digits", test_split=0.2)
    lenet = check_file(ROOT / "specs" / "lenet_digits.yaml")
    feeds = load_feeds(lenet, data, ROOT / "specs" / "lenet_digits.yaml", torch.device("cpu"))
    x, y = feeds.train.inputs["x"], feeds.train.targets["y"]
    assert x.shape[1:] == (1, 8, 8) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert feeds.test is not None and feeds.train.n + feeds.test.n == 1797
    rows = load_digits().data.astype(np.float32)
    first = rows[(rows == x[0].reshape(64).numpy()).all(1)]
    assert len(first) >= 1  # the image is a digit's 64 pixels in row-major order

    ae = check_file(ROOT / "specs" / "conv_autoencoder.yaml")
    feeds = load_feeds(ae, data, ROOT / "specs" / "conv_autoencoder.yaml", torch.device("cpu"))
    image, target = feeds.train.inputs["x"], feeds.train.targets["x"]
    assert image.shape[1:] == (1, 8, 8)
    assert torch.equal(target.reshape(image.shape), image)  # digits' own x: the same pixels


# -- causal conv1d --------------------------------------------------------------------


@pytest.mark.parametrize(
    "layer", ["conv1d(3, 3, padding=causal)", "conv1d(2, 2, padding=causal, dilation=3)"]
)
def test_causal_conv1d_output_depends_on_the_past_only(layer: str) -> None:
    """Changing x_t changes no y_s for s < t (and does change y_t), in torch and in
    onnxruntime; the module keeps nn.Conv1d's state_dict names."""
    graph = check_layer(layer, "[B, 2, T]").graph
    weights = _perturbed(graph)
    module = to_torch(graph, weights).eval()
    (conv,) = [m for m in module.modules() if isinstance(m, nn.Conv1d)]
    assert sorted(conv.state_dict()) == ["bias", "weight"] and conv.padding == (0,)
    session = ort.InferenceSession(
        to_onnx(graph, weights).SerializeToString(), providers=["CPUExecutionProvider"]
    )
    x = np.random.default_rng(0).standard_normal((1, 2, 12)).astype(np.float32)
    with torch.no_grad():
        y = module(x=torch.from_numpy(x)).numpy()
    assert y.shape[-1] == 12
    for t in range(12):
        changed = x.copy()
        changed[..., t] += 1.0
        with torch.no_grad():
            y2 = module(x=torch.from_numpy(changed)).numpy()
        np.testing.assert_array_equal(y2[..., :t], y[..., :t])
        assert not np.allclose(y2[..., t], y[..., t])
        (theirs,) = session.run(None, {"x": changed})
        np.testing.assert_allclose(theirs, y2, rtol=1e-5, atol=1e-5)
