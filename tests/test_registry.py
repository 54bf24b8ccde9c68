"""Table-driven tests over the op registry: shape rules (concrete and symbolic), parameter
counts against torch.nn, argument checking, and that the table covers every op."""

from __future__ import annotations

import pytest
import test_attention
import test_conv
import test_embed
import test_generative
import test_recurrent
import torch

from dlc.compiler.errors import DlcError
from dlc.compiler.ops import REGISTRY
from helpers import check_layer

FAMILIES = (test_conv, test_recurrent, test_embed, test_attention, test_generative)

# op -> [(layer text, input shape, expected output shape)], concrete and symbolic
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    "dense": [
        ("dense(128)", "[B, 784]", "[B, 128]"),
        ("dense(8)", "[B, T, 4]", "[B, T, 8]"),
        ("linear(3, bias=false)", "[5, 2]", "[5, 3]"),
    ],
    "identity": [("identity", "[B, T, 7]", "[B, T, 7]")],
    "step": [("step", "[B, 3]", "[B, 3]")],
    "sigmoid": [("sigmoid", "[B, 3]", "[B, 3]")],
    "tanh": [("tanh", "[B, T, 3]", "[B, T, 3]")],
    "lecun_tanh": [("lecun_tanh", "[B, 3]", "[B, 3]")],
    "soboleva_tanh": [
        ("soboleva_tanh(1, 1, 1, 1)", "[B, 3]", "[B, 3]"),
        ("soboleva_tanh(a=2, d=0.5)", "[4, 3]", "[4, 3]"),
    ],
    "relu": [("relu", "[B, 3, 8, 8]", "[B, 3, 8, 8]")],
    "leaky_relu": [("leaky_relu(slope=0.2)", "[B, 3]", "[B, 3]")],
    "prelu": [
        ("prelu", "[B, 3]", "[B, 3]"),
        ("prelu(num_parameters=3)", "[B, 3, H, W]", "[B, 3, H, W]"),
    ],
    "gelu": [("gelu", "[B, 3]", "[B, 3]"), ("gelu(approximate=tanh)", "[B, 3]", "[B, 3]")],
    "elu": [("elu(alpha=0.5)", "[B, 3]", "[B, 3]")],
    "selu": [("selu", "[B, 3]", "[B, 3]")],
    "silu": [("silu", "[B, 3]", "[B, 3]")],
    "gaussian": [("gaussian", "[B, 3]", "[B, 3]")],
    "softplus": [("softplus", "[B, 3]", "[B, 3]")],
    "softmax": [("softmax", "[B, 10]", "[B, 10]"), ("softmax(axis=1)", "[B, T, 5]", "[B, T, 5]")],
    "log_softmax": [("log_softmax(axis=-1)", "[B, 10]", "[B, 10]")],
    "maxout": [
        ("maxout(2)", "[B, 8]", "[B, 4]"),
        ("maxout(8)", "[B, 8]", "[B, 1]"),
        ("maxout(2)", "[B, T*2]", "[B, T]"),
    ],
    "rbf": [
        ("rbf(10)", "[B, 2]", "[B, 10]"),
        ("rbf(4, sigma=0.5, learn_sigma=false)", "[B, T, 3]", "[B, T, 4]"),
    ],
    "polynomial": [("polynomial(3)", "[B, 2]", "[B, 6]"), ("polynomial(2)", "[B, F]", "[B, 2*F]")],
    "fourier": [("fourier(4)", "[B, 1]", "[B, 8]"), ("fourier(2)", "[B, 3]", "[B, 12]")],
    "dropout": [("dropout(0.3)", "[B, 3]", "[B, 3]"), ("dropout", "[B, T, 3]", "[B, T, 3]")],
    "batchnorm": [
        ("batchnorm", "[B, 16]", "[B, 16]"),
        ("batchnorm", "[B, 3, H, W]", "[B, 3, H, W]"),
    ],
    "layernorm": [("layernorm", "[B, T, 32]", "[B, T, 32]")],
    "flatten": [
        ("flatten", "[B, 3, 4, 4]", "[B, 48]"),
        ("flatten", "[B, C, H, W]", "[B, C*H*W]"),
        ("flatten(start=2)", "[B, T, 4, 2]", "[B, T, 8]"),
    ],
    "reshape": [
        ("reshape([B, 1, 28, 28])", "[B, 784]", "[B, 1, 28, 28]"),
        ("reshape([-1, 4, 196])", "[B, 784]", "[B, 4, 196]"),
        ("reshape([B, T, 2, -1])", "[B, T, 8]", "[B, T, 2, 4]"),
    ],
    "permute": [("permute([0, 2, 1])", "[B, T, 8]", "[B, 8, T]")],
    "standardize": [
        ("standardize", "[B, 5]", "[B, 5]"),
        ("standardize(method=zca)", "[B, 5]", "[B, 5]"),
    ],
    "add": [
        ("parallel(dense(4), dense(4), merge=add)", "[B, 3]", "[B, 4]"),
        ("add(identity, relu, tanh)", "[B, 3]", "[B, 3]"),
    ],
    "mul": [
        ("mul(identity, sigmoid)", "[B, 3]", "[B, 3]"),
        ("mul(identity, sigmoid, tanh)", "[B, 3]", "[B, 3]"),
    ],
    "concat": [
        ("concat(dense(4), dense(2))", "[B, 3]", "[B, 6]"),
        ("concat(identity, identity, axis=1)", "[B, T, 3]", "[B, 2*T, 3]"),
    ],
    "residual_add": [("residual(dense(16) -> relu)", "[B, 16]", "[B, 16]")],
    "highway_gate": [("highway(dense(16) -> relu)", "[B, 16]", "[B, 16]")],
    "residual": [("residual(dense(16) -> relu -> dense(16))", "[B, T, 16]", "[B, T, 16]")],
    "highway": [("highway(dense(8), gate_bias=-1)", "[B, 8]", "[B, 8]")],
    "repeat": [("repeat(3, dense(8) -> relu)", "[B, 4]", "[B, 8]")],
    "parallel": [("parallel(dense(3), dense(5))", "[B, 4]", "[B, 8]")],
}


# the layer library's families keep their rows in their own test files
for _family in FAMILIES:
    assert not set(_family.SHAPES) & set(SHAPES), _family.__name__
    SHAPES.update(_family.SHAPES)


def test_table_covers_every_op() -> None:
    assert set(SHAPES) == set(REGISTRY), "add shape cases for new ops to SHAPES"


CASES = [(op, *case) for op, cases in SHAPES.items() for case in cases]


@pytest.mark.parametrize(
    ("op", "layer", "shape", "expected"), CASES, ids=[f"{c[0]}:{c[1]}:{c[2]}" for c in CASES]
)
def test_shape_rule(op: str, layer: str, shape: str, expected: str) -> None:
    checked = check_layer(layer, shape)
    out = dict(checked.graph.outputs)["y"]
    assert str(checked.graph.types()[out]) == expected
    if REGISTRY[op].kind == "op":
        assert op in {n.op for n in checked.graph.nodes}


# (layer, input features/shape, the equivalent torch.nn module)
TORCH_EQUIVALENTS = [
    ("dense(128)", "[B, 784]", lambda: torch.nn.Linear(784, 128)),
    ("dense(10, bias=false)", "[B, 64]", lambda: torch.nn.Linear(64, 10, bias=False)),
    ("prelu", "[B, 8]", lambda: torch.nn.PReLU()),
    ("prelu(num_parameters=3)", "[B, 3, 4, 4]", lambda: torch.nn.PReLU(3)),
    ("batchnorm", "[B, 16]", lambda: torch.nn.BatchNorm1d(16)),
    ("batchnorm(affine=false)", "[B, 6, H, W]", lambda: torch.nn.BatchNorm2d(6, affine=False)),
    ("layernorm", "[B, T, 32]", lambda: torch.nn.LayerNorm(32)),
    ("relu", "[B, 8]", lambda: torch.nn.ReLU()),
    ("maxout(2)", "[B, 8]", lambda: torch.nn.Identity()),
    ("dropout(0.5)", "[B, 8]", lambda: torch.nn.Dropout(0.5)),
]
for _family in FAMILIES:
    TORCH_EQUIVALENTS += _family.TORCH_EQUIVALENTS


@pytest.mark.parametrize(
    ("layer", "shape", "module"), TORCH_EQUIVALENTS, ids=[c[0] for c in TORCH_EQUIVALENTS]
)
def test_param_count_matches_torch(layer: str, shape: str, module) -> None:  # noqa: ANN001
    m = module()
    checked = check_layer(layer, shape)
    assert checked.graph.num_params == sum(p.numel() for p in m.parameters())
    node = checked.graph.nodes[0]
    ours = {p.name: p.shape for p in node.params}
    theirs = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert ours == theirs  # same names and shapes: weights move by name


def test_rbf_and_highway_params() -> None:
    assert check_layer("rbf(10)", "[B, 3]").graph.num_params == 10 * 3 + 10
    assert check_layer("rbf(10, learn_sigma=false)", "[B, 3]").graph.num_params == 30
    # highway: body dense(16) + gate (16x16 + 16)
    assert check_layer("highway(dense(16))", "[B, 16]").graph.num_params == 2 * (16 * 16 + 16)


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        ("dense(0)", "argument 'units': expected an integer >= 1, got 0"),
        ("dense(3.5)", "argument 'units': expected an integer >= 1, got number 3.5"),
        ("dense(true)", "expected an integer >= 1, got boolean true"),
        ("dropout(1.5)", "expected a probability in [0, 1), got 1.5"),
        ("gelu(approximate=fast)", "expected one of none, tanh, got string 'fast'"),
        ("dense(4, bias=1)", "expected true or false"),
        ("dense(units=4, units=5)", "given twice"),
        ("dense(4, 5, 6, 7, 8, 9)", "dense takes 5 positional arguments, got 6"),
        ("dense", "dense needs its argument 'units'"),
        ("dense(4, bais=false)", "dense has no argument 'bais' (did you mean 'bias'?)"),
        ("dense(4, init=he_nromal)", "unknown init 'he_nromal' (did you mean 'he_normal'?)"),
    ],
)
def test_argument_errors(layer: str, message: str) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(layer)
    assert message in info.value.render()
    assert info.value.loc is not None and info.value.loc.line == 6  # the layer line
    assert info.value.loc.col >= 5


def test_every_op_documents_itself() -> None:
    for name, opdef in REGISTRY.items():
        assert opdef.doc, name
        assert opdef.kind in ("op", "combinator"), name
        if opdef.kind == "op":
            assert opdef.shape is not None, name
