"""Tests of the layer library's attention ops: their rows of the registry tables (test_registry
and test_parity run them) and the tests of their own: the same numbers as torch.nn's
attention and transformer layers with the same weights, one ONNX model at several sequence
lengths, a memory from another input, and the located errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from conftest import check_layer
from dlc.compiler.errors import DlcError
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.attention.onnx import FUSED_OPSET, runs_attention
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked, check_text

SEQ = "[B, T, 8]"
TWICE = "concat(identity, identity, axis=1)"  # a memory of S = 2T steps


def _shape(e: Example) -> str:
    """The input as one_layer writes it: the shape, with its dtype if not float32."""
    return f"{{shape: {e.shape}, dtype: {e.dtype}}}" if e.dtype else e.shape


# op -> [(layer text, input shape, expected output shape)]: the examples of these ops
# that the differential tests run (their OpDefs carry them)
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    op: [(e.layer, _shape(e), e.out) for e in REGISTRY[op].examples if e.parity]
    for op in (
        "self_attention",
        "cross_attention",
        "multihead_cross_attention",
        "transformer_encoder",
        "transformer_decoder",
        "transformer_decoder_layers",
    )
}


def _encoder(dim: int, heads: int, ff: int, layers: int, **kw: object) -> nn.Module:
    layer = nn.TransformerEncoderLayer(dim, heads, ff, batch_first=True, **kw)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _decoder(dim: int, heads: int, ff: int, layers: int, **kw: object) -> nn.Module:
    layer = nn.TransformerDecoderLayer(dim, heads, ff, batch_first=True, **kw)
    return nn.TransformerDecoder(layer, layers)


# -- the same numbers as torch.nn with the same weights ---------------------------------


def _perturbed(checked: Checked) -> dict[str, torch.Tensor]:
    """The initial weights plus noise, so that no bias is 0 and no norm scale 1."""
    rng = np.random.default_rng(0)
    out = {}
    for k, v in initial_weights(checked.graph, 0).items():
        out[k] = torch.from_numpy(v + rng.normal(0, 0.2, v.shape).astype(np.float32))
    return out


def _ours_and_torch(layer: str, theirs: nn.Module) -> tuple[nn.Module, nn.Module]:
    """dlc's module for `layer` and torch's `theirs`, in eval mode with the same weights."""
    checked = check_layer(layer, SEQ)
    node = checked.graph.nodes[-1]
    weights = _perturbed(checked)
    ours = to_torch(checked.graph, weights).eval()
    theirs.load_state_dict({k[len(node.name) + 1 :]: v for k, v in weights.items()})
    return ours, theirs.eval()


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


def _causal(t: int) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(t)


@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_computes_what_multihead_attention_does(causal: bool) -> None:
    layer = f"self_attention(2, causal={str(causal).lower()})"
    ours, mha = _ours_and_torch(layer, nn.MultiheadAttention(8, 2, batch_first=True))
    x = _randn(3, 5, 8)
    with torch.no_grad():
        want, _ = mha(x, x, x, attn_mask=_causal(5) if causal else None, need_weights=False)
        torch.testing.assert_close(ours(x), want, rtol=1e-5, atol=1e-6)


def test_cross_attention_computes_what_multihead_attention_does() -> None:
    layer = f"cross_attention({TWICE}, 2)"
    ours, mha = _ours_and_torch(layer, nn.MultiheadAttention(8, 2, batch_first=True))
    x = _randn(3, 4, 8)
    memory = torch.cat([x, x], dim=1)
    with torch.no_grad():
        want, _ = mha(x, memory, memory, need_weights=False)
        torch.testing.assert_close(ours(x), want, rtol=1e-5, atol=1e-6)


STACKS = [
    ("", {}),
    (", activation=gelu", {"activation": "gelu"}),
    (", norm_first=true", {"norm_first": True}),
    (", activation=gelu, norm_first=true", {"activation": "gelu", "norm_first": True}),
]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(("options", "kw"), STACKS, ids=[s[0] or "post-LN" for s in STACKS])
def test_encoder_computes_what_torch_encoder_layers_do(
    options: str, kw: dict, causal: bool
) -> None:
    layer = f"transformer_encoder(2, 2, 16{options}, causal={str(causal).lower()})"
    ours, theirs = _ours_and_torch(layer, _encoder(8, 2, 16, 2, **kw))
    x = _randn(3, 5, 8)
    with torch.no_grad():  # torch's eval fast path, when it takes it, must agree as well
        want = theirs(x, mask=_causal(5) if causal else None, is_causal=causal)
        torch.testing.assert_close(ours(x), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("options", "kw"), STACKS[::3], ids=["post-LN", "pre-LN gelu"])
def test_decoder_computes_what_torch_decoder_layers_do(options: str, kw: dict) -> None:
    layer = f"transformer_decoder({TWICE}, 2, 2, 16{options})"
    ours, theirs = _ours_and_torch(layer, _decoder(8, 2, 16, 2, **kw))
    x = _randn(3, 4, 8)
    memory = torch.cat([x, x], dim=1)
    with torch.no_grad():
        want = theirs(x, memory, tgt_mask=_causal(4), tgt_is_causal=True)
        torch.testing.assert_close(ours(x), want, rtol=1e-5, atol=1e-5)


def _gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.gelu(x, approximate="tanh")


# gelu_tanh and eps: torch takes the activation as a function, the epsilon as layer_norm_eps
NEW_OPTIONS = [
    (", activation=gelu_tanh", {"activation": _gelu_tanh}),
    (", eps=1e-12", {"layer_norm_eps": 1e-12}),
    (", activation=gelu_tanh, norm_first=true, eps=0.1", {"activation": _gelu_tanh,
     "norm_first": True, "layer_norm_eps": 0.1}),
]  # fmt: skip


@pytest.mark.parametrize(("options", "kw"), NEW_OPTIONS, ids=["gelu_tanh", "eps", "pre-LN both"])
def test_gelu_tanh_and_eps_compute_what_torch_layers_do(options: str, kw: dict) -> None:
    x = _randn(3, 4, 8)
    memory = torch.cat([x, x], dim=1)
    ours, theirs = _ours_and_torch(
        f"transformer_encoder(2, 2, 16{options})", _encoder(8, 2, 16, 2, **kw)
    )
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    layer = f"transformer_decoder({TWICE}, 2, 2, 16{options})"
    ours, theirs = _ours_and_torch(layer, _decoder(8, 2, 16, 2, **kw))
    with torch.no_grad():
        want = theirs(x, memory, tgt_mask=_causal(4), tgt_is_causal=True)
        torch.testing.assert_close(ours(x), want, rtol=1e-5, atol=1e-5)


def test_the_eps_reaches_every_layer_norm_of_both_lowerings() -> None:
    checked = check_layer(f"transformer_decoder({TWICE}, 2, 2, 16, eps=0.25)", SEQ)
    module = to_torch(checked.graph)
    norms = [m for m in module.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 6 and {m.eps for m in norms} == {0.25}
    model = to_onnx(checked.graph, initial_weights(checked.graph, 0))
    eps = [
        a.f for n in model.graph.node if n.op_type == "LayerNormalization" for a in n.attribute
        if a.name == "epsilon"
    ]  # fmt: skip
    assert eps == [0.25] * 6


def test_training_mode_applies_dropout_and_eval_does_not() -> None:
    checked = check_layer("transformer_encoder(1, 2, 16, dropout=0.5)", SEQ)
    module = to_torch(checked.graph)
    x = _randn(2, 5, 8)
    assert not torch.equal(module.train()(x), module(x))  # two draws of the masks
    assert torch.equal(module.eval()(x), module(x))


# -- ONNX: one model for every T, a memory from another input ---------------------------


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    onnx.checker.check_model(model, full_check=True)
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _assert_agree(module: nn.Module, session: ort.InferenceSession, **feeds: np.ndarray) -> None:
    with torch.no_grad():
        want = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    got = session.run(None, feeds)[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6 + 1e-5 * np.abs(want).max())


@pytest.mark.parametrize("opset", [17, max(supported_opsets())])  # erf GELU, then Gelu
def test_one_onnx_model_runs_every_sequence_length(opset: int) -> None:
    layer = "transformer_encoder(2, 2, 16, activation=gelu, norm_first=true, causal=true)"
    checked = check_layer(layer, SEQ)
    weights = {k: v.numpy() for k, v in _perturbed(checked).items()}
    module = to_torch(checked.graph, weights).eval()
    model = to_onnx(checked.graph, weights, opset=opset)
    dims = [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[:2]]
    assert dims == ["B", "T"]
    assert ("Gelu" in {n.op_type for n in model.graph.node}) == (opset >= 20)
    session = _session(model)
    for t in (1, 2, 7, 40):
        x = np.random.default_rng(t).standard_normal((2, t, 8)).astype(np.float32)
        _assert_agree(module, session, x=x)


@pytest.mark.parametrize("opset", [17, max(supported_opsets())])
def test_onnxruntime_fuses_the_patterns(tmp_path: Path, opset: int) -> None:
    """Every projection is one Gemm with its bias (Q, K and V together), on the rows of the
    stream; the scale joins Q Kᵀ's MatMul and the erf GELU becomes one op (before opset
    20, the fused Attention's 23 and the pattern's Softmax before it)."""
    checked = check_layer("transformer_encoder(1, 2, 16, activation=gelu)", SEQ)
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    model = to_onnx(checked.graph, initial_weights(checked.graph), opset=opset)
    ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node]
    assert "Slice" not in ops and "Erf" not in ops
    assert ops.count("Gemm") == 4 and ops.count("Gelu") == 1 and ops.count("Add") == 2
    fused = opset >= FUSED_OPSET and runs_attention(opset)
    pattern = [] if fused else ["FusedMatMul", "MatMul"]  # Q Kᵀ scaled, then by V
    assert ops.count("Attention") == int(fused) and [o for o in ops if "MatMul" in o] == pattern


GRAPH = """\
dlc: 1
name: seq2seq
inputs: {{x: [B, T, 8], m: [B, S, 8]}}
model:
  enc: m -> transformer_encoder(1, 2, 16)
  y: x -> {layer}
"""


@pytest.mark.parametrize(
    ("layer", "key"),
    [
        ("cross_attention(enc, heads=2)", "y.in_proj_weight"),
        ("transformer_decoder(enc, 2, 2, 16)", "y.layers.1.multihead_attn.in_proj_weight"),
    ],
)
def test_memory_is_another_node_of_other_length(layer: str, key: str) -> None:
    checked = check_text(GRAPH.format(layer=layer), "g.yaml")
    y = checked.graph.node("y")
    assert y.inputs == ("x", "enc") and str(y.type) == "[B, T, 8]"
    weights = {k: v.numpy() for k, v in _perturbed(checked).items()}
    module = to_torch(checked.graph, weights).eval()
    assert key in module.state_dict()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8)).astype(np.float32)
    m = rng.standard_normal((2, 6, 8)).astype(np.float32)
    _assert_agree(module, _session(to_onnx(checked.graph, weights)), x=x, m=m)


def test_a_sequential_call_names_its_weights_like_the_op() -> None:
    checked = check_layer(f"cross_attention({TWICE}, 2)", SEQ)
    assert [n.name for n in checked.graph.nodes][-1] == "cross_attention"
    weights = initial_weights(checked.graph)
    assert "cross_attention.in_proj_weight" in weights
    assert weights["cross_attention.in_proj_weight"].shape == (24, 8)


def test_flops_count_projections_scores_and_feed_forward() -> None:
    # [1, 4, 8] with 2 heads: projections 2(2·64 + 8)·(4 + 4), QKᵀ and AV 4·4·4·8, the
    # scores 6·2·16
    node = check_layer("self_attention(2)", "[1, 4, 8]").graph.nodes[0]
    assert node.flops == 2 * 136 * 8 + 4 * 4 * 4 * 8 + 6 * 2 * 16
    encoder = check_layer("transformer_encoder(3, 2, 16)", "[1, 4, 8]").graph.nodes[0]
    ff = 4 * (17 * 16 + 16 + 33 * 8) + 18 * 32
    assert encoder.flops == 3 * (node.flops + ff)


# -- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape", "message"),
    [
        ("self_attention(3)", SEQ, "splits D = 8 into 3 heads, but 8 is not a multiple of 3"),
        ("transformer_encoder(1, 3, 16)", SEQ, "transformer_encoder splits D = 8 into 3 heads"),
        ("self_attention(2)", "[B, 8]", "self_attention needs a sequence [B, T, D], got [B, 8]"),
        ("self_attention(2)", "[B, T, F]", "needs a known number of features on the last axis"),
        (
            "cross_attention(dense(4), 2)",
            SEQ,
            "cross_attention attends from [B, T, 8] to a memory [B, T, 4]; the memory must be "
            "[B, S, 8]",
        ),
        ("cross_attention(nowhere, 2)", SEQ, "unknown op or block 'nowhere'"),
        ("cross_attention(heads=2)", SEQ, "cross_attention needs its argument 'memory'"),
        ("transformer_encoder(2, 2, 16, activation=swish)", SEQ, "expected one of relu, gelu"),
        ("transformer_encoder(2, 2)", SEQ, "transformer_encoder needs its argument 'ff'"),
        ("transformer_encoder(10**6, 2, 16)", SEQ, "stacks 1000000 layers, more than 1000"),
        (f"transformer_decoder({TWICE}, 1, 3, 16)", SEQ, "transformer_decoder splits D = 8"),
        ("self_attention(2, dropout=1)", SEQ, "expected a probability in [0, 1), got 1"),
    ],
)
def test_located_errors(layer: str, shape: str, message: str) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(layer, shape)
    assert message in info.value.render()
    assert info.value.loc is not None and info.value.loc.line == 6  # the layer line
    assert info.value.loc.col >= 5


def test_a_memory_op_needs_queries_flowing_in() -> None:
    text = GRAPH.format(layer="relu").replace("y: x -> relu", "y: cross_attention(enc, 2)")
    with pytest.raises(DlcError) as info:
        check_text(text, "g.yaml")
    assert "cross_attention has no input here" in info.value.render()
    assert "x -> ...(memory, ...)" in info.value.render()
    assert info.value.loc is not None and (info.value.loc.line, info.value.loc.col) == (6, 6)


def test_token_ids_need_an_embedding_first() -> None:
    with pytest.raises(DlcError) as info:
        check_layer("self_attention(2)", "[B, T]", dtype="int64")
    assert "start with embedding(vocab, dim)" in info.value.render()
