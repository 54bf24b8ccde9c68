"""The fused attention of the ONNX lowering: from opset 23 the attention ops' heads are the
standard `Attention` op (compiler/ops/attention/onnx.py), before it the MatMul/Softmax
pattern. Every example of the attention family (masked, padding-only, attn_bias, causal,
scale, cross and the transformer stacks) agrees with torch under onnxruntime and under
onnx's ReferenceEvaluator at the fused opsets; the pattern's opsets are test_parity's. A graph
with attention is compiled at the fused opset unless told otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from test_parity import _close, _weights

from conftest import ROOT, checked_example, run_dlc
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import DEFAULT_OPSET, default_opset, supported_opsets, to_onnx
from dlc.compiler.lower.torch import state_dict_numpy, to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.attention.onnx import FUSED_OPSET, runs_attention
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import check_file
from dlc.runtime.compile import sample_inputs

FAMILY = ("self_attention", "multihead_cross_attention", "cross_attention",
          "transformer_encoder", "transformer_decoder_layers", "transformer_decoder")  # fmt: skip
CASES = [(op, e) for op in FAMILY for e in REGISTRY[op].examples if e.parity]
FUSED = [o for o in supported_opsets() if o >= FUSED_OPSET and runs_attention(o)]
FUSED = sorted({FUSED[0], FUSED[-1]}) if FUSED else []
pytestmark = pytest.mark.skipif(not FUSED, reason="onnxruntime runs no opset with Attention")


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("opset", FUSED)
@pytest.mark.parametrize(("op", "example"), CASES,
                         ids=[f"{c[0]}:{c[1].layer}:{c[1].shape}" for c in CASES])  # fmt: skip
def test_fused_parity_torch_onnxruntime_reference(op: str, example: Example, opset: int) -> None:
    checked = checked_example(example)
    weights = _weights(checked, 0)
    module = to_torch(checked.graph, weights).eval()
    model = to_onnx(checked.graph, weights, opset=opset)
    onnx.checker.check_model(model, full_check=True)
    ops = _ops(model)
    # one Attention per attention block, and none of the pattern's Softmax left
    assert ops.count("Attention") >= 1 and "Softmax" not in ops, ops
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    rng = np.random.default_rng(1)
    for batch in (1, 3):
        feeds = sample_inputs(checked, batch, rng)
        with torch.no_grad():
            result = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        ours = result if isinstance(result, dict) else {names[0]: result}
        theirs = dict(zip(names, session.run(None, feeds), strict=True))
        for name in names:
            _close(ours[name].numpy(), theirs[name])
        for name, value in zip(names, ReferenceEvaluator(model).run(None, feeds), strict=True):
            _close(np.asarray(value), theirs[name], atol=1e-5)


def _model(example: str, shape: str, opset: int) -> onnx.ModelProto:
    checked = checked_example(Example(example, shape, shape))
    return to_onnx(checked.graph, _weights(checked, 0), opset=opset)


@pytest.mark.parametrize("opset", FUSED)
def test_causal_alone_is_the_fused_ops_is_causal(opset: int) -> None:
    """No [T, T] mask is built when the causal mask is all there is."""
    model = _model("transformer_encoder(2, 2, 16, causal=true)", "[B, T, 8]", opset)
    attention = [n for n in model.graph.node if n.op_type == "Attention"]
    assert len(attention) == 2 and "Trilu" not in _ops(model)
    for n in attention:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        assert attrs["is_causal"] == 1 and len(n.input) == 3
        assert attrs["q_num_heads"] == attrs["kv_num_heads"] == 2
        assert attrs["scale"] == pytest.approx(1 / np.sqrt(4))


@pytest.mark.parametrize("opset", list(supported_opsets()))
def test_the_pattern_where_no_attention_kernel(opset: int) -> None:
    """Below opset 23, and where onnxruntime would expand Attention's function body."""
    ops = _ops(_model("self_attention(2, causal=true)", "[B, T, 8]", opset))
    fused = opset in FUSED or FUSED_OPSET <= opset and runs_attention(opset)
    assert ("Attention" in ops) == fused
    if not fused:
        assert {"Softmax", "Trilu", "MatMul"} <= set(ops)


@pytest.mark.parametrize("spec", ["transformer_lm", "vit_digits"])
def test_transformer_specs_fused(spec: str) -> None:
    """The transformer examples at the fused opset: one Attention per layer, as torch."""
    checked = check_file(ROOT / "specs" / f"{spec}.yaml")
    module = to_torch(checked.graph, seed=0).eval()
    model = to_onnx(checked.graph, state_dict_numpy(module), opset=FUSED[0])
    assert _ops(model).count("Attention") == 2  # the examples' two encoder layers
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = sample_inputs(checked, 4, np.random.default_rng(0))
    with torch.no_grad():
        want = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    _close(want.numpy(), session.run(None, feeds)[0])


@pytest.mark.parametrize(
    "spec, fused", [("transformer_lm", True), ("vit_digits", True), ("digits_mlp", False)]
)
def test_the_default_opset_is_the_fused_ops(spec: str, fused: bool, tmp_path: Path) -> None:
    """A graph with attention defaults to the fused op's opset (it runs faster there:
    tests/bench_onnx.py), any other to DEFAULT_OPSET; `dlc compile` without --opset too,
    and an explicit opset or the spec's export.opset still wins."""
    checked = check_file(ROOT / "specs" / f"{spec}.yaml")
    want = FUSED[0] if fused else DEFAULT_OPSET
    assert default_opset(checked.graph) == want and DEFAULT_OPSET == 17
    model = to_onnx(checked.graph, initial_weights(checked.graph))
    assert model.opset_import[0].version == want
    assert ("Attention" in _ops(model)) == fused
    out = tmp_path / "m.onnx"
    assert run_dlc("compile", f"specs/{spec}.yaml", "-o", str(out)).returncode == 0
    assert onnx.load(out).opset_import[0].version == want
    assert run_dlc("compile", f"specs/{spec}.yaml", "-o", str(out), "--opset", "17").returncode == 0
    assert onnx.load(out).opset_import[0].version == 17
