"""Tests of attention's key padding masks (`mask=`, `memory_mask=`), additive bias
(`attn_bias=`) and `scale=`, beyond the registry rows of compiler/ops/attention/examples.py:
the same numbers as torch.nn's attention and transformer layers given the same masks
(torch's key_padding_mask is the inverse: true pads), rows of padding only that stay finite
and equal in torch, onnxruntime and onnx's reference evaluator at every opset, the masks
that `dlc compile --verify` and the parity tests draw, model.py, gradients, and training
with a mask input."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator
from torch import nn

from conftest import run_dlc
from dlc.compiler.errors import DlcError
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.pipeline import Checked, check_file, check_text
from dlc.runtime.cli import main
from dlc.runtime.compile import sample_inputs

GRAPH = """\
dlc: 1
name: masked
inputs:
  x: [B, T, 8]
  m: {{shape: [B, T], dtype: {dtype}}}
  mem: [B, S, 8]
  mm: {{shape: [B, S], dtype: {dtype}}}
  bias: {bias}
model:
  y: x -> {layer}
"""
LENGTHS = [5, 3, 1]  # valid keys per example: every row keeps at least one key
B, T, S = 3, 5, 6


def _checked(layer: str, dtype: str = "bool", bias: str = "[T, T]") -> Checked:
    return check_text(GRAPH.format(layer=layer, dtype=dtype, bias=bias), "masked.yaml")


def _weights(checked: Checked) -> dict[str, np.ndarray]:
    """The initial weights plus noise, so that no bias is 0 and no norm scale 1."""
    rng = np.random.default_rng(0)
    return {k: v + rng.normal(0, 0.2, v.shape).astype(np.float32)
            for k, v in initial_weights(checked.graph, 0).items()}  # fmt: skip


def _mask(lengths: list[int], steps: int) -> np.ndarray:
    return np.arange(steps)[None, :] < np.asarray(lengths)[:, None]


def _feeds(dtype: str = "bool", lengths: list[int] = LENGTHS, memory: list[int] = LENGTHS,
           bias_shape: tuple[int, ...] = (T, T)) -> dict[str, np.ndarray]:  # fmt: skip
    rng = np.random.default_rng(1)
    return {
        "x": rng.standard_normal((B, T, 8)).astype(np.float32),
        "m": _mask(lengths, T).astype(dtype),
        "mem": rng.standard_normal((B, S, 8)).astype(np.float32),
        "mm": _mask(memory, S).astype(dtype),
        "bias": rng.standard_normal(bias_shape).astype(np.float32),
    }


def _ours(checked: Checked, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, nn.Module]:
    module = to_torch(checked.graph, _weights(checked)).eval()
    used = {i.name for i in checked.graph.inputs}
    with torch.no_grad():
        y = module(**{k: torch.from_numpy(v) for k, v in feeds.items() if k in used})
    return y.numpy(), module


def _onnx(checked: Checked, feeds: dict[str, np.ndarray], opset: int) -> tuple[Any, Any]:
    model = to_onnx(checked.graph, _weights(checked), opset=opset)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    used = {i.name for i in model.graph.input}
    feeds = {k: v for k, v in feeds.items() if k in used}
    return session.run(None, feeds)[0], ReferenceEvaluator(model).run(None, feeds)[0]


def _close(got: np.ndarray, want: np.ndarray) -> None:
    assert np.isfinite(got).all() and np.isfinite(want).all()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 + 1e-5 * np.abs(want).max())


def _theirs(module: nn.Module, checked: Checked) -> nn.Module:
    """torch's module with our weights (the names after the node's `y.`)."""
    weights = _weights(checked)
    module.load_state_dict({k[2:]: torch.from_numpy(v) for k, v in weights.items()})
    return module.eval()


def _pads(mask: np.ndarray) -> torch.Tensor:
    """torch's key_padding_mask (true pads), as a float -inf one like the causal mask."""
    pads = torch.from_numpy(~mask.astype(bool))
    return torch.zeros(pads.shape).masked_fill(pads, float("-inf"))


def _causal(t: int) -> torch.Tensor:
    return nn.Transformer.generate_square_subsequent_mask(t)


# -- the same numbers as torch.nn given the same masks ----------------------------------


@pytest.mark.parametrize("dtype", ["bool", "int64", "int32"])
@pytest.mark.parametrize("causal", [False, True])
def test_self_attention_mask_is_multihead_attentions_key_padding(causal: bool, dtype: str) -> None:
    checked = _checked(f"self_attention(2, causal={str(causal).lower()}, mask=m)", dtype)
    feeds = _feeds(dtype)
    ours, _ = _ours(checked, feeds)
    mha = _theirs(nn.MultiheadAttention(8, 2, batch_first=True), checked)
    x = torch.from_numpy(feeds["x"])
    with torch.no_grad():
        want, _ = mha(x, x, x, key_padding_mask=_pads(feeds["m"]),
                      attn_mask=_causal(T) if causal else None, need_weights=False)  # fmt: skip
    _close(ours, want.numpy())
    _close(_onnx(checked, feeds, 17)[0], ours)


@pytest.mark.parametrize("causal", [False, True])
def test_encoder_mask_is_torchs_src_key_padding_mask(causal: bool) -> None:
    layer = f"transformer_encoder(2, 2, 16, causal={str(causal).lower()}, mask=m)"
    checked = _checked(layer)
    feeds = _feeds()
    ours, _ = _ours(checked, feeds)
    encoder_layer = nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    theirs = _theirs(nn.TransformerEncoder(encoder_layer, 2, enable_nested_tensor=False), checked)
    with torch.no_grad():
        want = theirs(torch.from_numpy(feeds["x"]), mask=_causal(T) if causal else None,
                      src_key_padding_mask=_pads(feeds["m"]))  # fmt: skip
    _close(ours, want.numpy())
    _close(_onnx(checked, feeds, 17)[0], ours)


def test_decoder_masks_are_torchs_tgt_and_memory_key_padding_masks() -> None:
    checked = _checked("transformer_decoder(mem, 2, 2, 16, mask=m, memory_mask=mm)")
    feeds = _feeds(memory=[2, 6, 4])
    ours, _ = _ours(checked, feeds)
    theirs = _theirs(nn.TransformerDecoder(nn.TransformerDecoderLayer(8, 2, 16, batch_first=True),
                                           2), checked)  # fmt: skip
    with torch.no_grad():
        want = theirs(torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["mem"]),
                      tgt_mask=_causal(T), tgt_key_padding_mask=_pads(feeds["m"]),
                      memory_key_padding_mask=_pads(feeds["mm"]))  # fmt: skip
    _close(ours, want.numpy())
    _close(_onnx(checked, feeds, 17)[0], ours)


@pytest.mark.parametrize(
    ("bias_type", "shape"),
    [("[T, T]", (T, T)), ("[B, 2, T, T]", (B, 2, T, T)), ("[2, T, T]", (2, T, T)),
     ("[1, 1, T]", (1, 1, T))],
)  # fmt: skip
def test_attn_bias_is_multihead_attentions_float_attn_mask(
    bias_type: str, shape: tuple[int, ...]
) -> None:
    checked = _checked("self_attention(2, mask=m, attn_bias=bias)", bias=bias_type)
    feeds = _feeds(bias_shape=shape)
    ours, _ = _ours(checked, feeds)
    mha = _theirs(nn.MultiheadAttention(8, 2, batch_first=True), checked)
    x = torch.from_numpy(feeds["x"])
    # torch takes a float attn_mask [T, S] or [B·heads, T, S]
    bias = torch.from_numpy(feeds["bias"]).expand(B, 2, T, T).reshape(B * 2, T, T)
    with torch.no_grad():
        want, _ = mha(x, x, x, key_padding_mask=_pads(feeds["m"]), attn_mask=bias,
                      need_weights=False)  # fmt: skip
    _close(ours, want.numpy())
    _close(_onnx(checked, feeds, 17)[0], ours)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_scale_replaces_one_over_root_dk(scale: float) -> None:
    """scale=s is the default 1/√d_k with the queries' projection multiplied by s·√d_k."""
    checked = _checked(f"self_attention(2, causal=true, scale={scale})")
    default = _checked("self_attention(2, causal=true)")
    feeds = _feeds()
    ours, _ = _ours(checked, feeds)
    weights = _weights(default)
    factor = scale * np.sqrt(4)  # d_k = 8 / 2
    for name in ("y.in_proj_weight", "y.in_proj_bias"):
        weights[name] = weights[name].copy()
        weights[name][:8] *= factor
    with torch.no_grad():
        module = to_torch(default.graph, weights).eval()
        want = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    _close(ours, want)
    _close(_onnx(checked, feeds, 17)[0], ours)


# -- rows of padding only ---------------------------------------------------------------

PADDED = [0, 3, 0]  # the first and the last example are all padding


@pytest.mark.parametrize(
    ("layer", "dtype"),
    [
        ("self_attention(2, mask=m)", "bool"),
        ("self_attention(2, mask=m)", "int32"),
        ("self_attention(2, causal=true, mask=m, attn_bias=bias)", "int64"),
        ("cross_attention(mem, 2, mask=mm)", "bool"),
        ("transformer_encoder(2, 2, 16, mask=m)", "int64"),
        ("transformer_encoder(1, 2, 16, causal=true, norm_first=true, mask=m)", "bool"),
        ("transformer_decoder(mem, 1, 2, 16, mask=m, memory_mask=mm)", "bool"),
    ],
)
def test_rows_of_padding_only_are_finite_and_agree_at_every_opset(layer: str, dtype: str) -> None:
    checked = _checked(layer, dtype)
    feeds = _feeds(dtype, lengths=PADDED, memory=PADDED)
    ours, _ = _ours(checked, feeds)
    assert np.isfinite(ours).all()
    for opset in supported_opsets():
        runtime, reference = _onnx(checked, feeds, opset)
        _close(runtime, ours)
        _close(reference, runtime)


@pytest.mark.parametrize("causal", [False, True])
def test_a_row_of_padding_only_attends_evenly(causal: bool) -> None:
    """As Hugging Face's finfo.min mask gives: the mean of the values over every key (over
    the past, if causal), where torch's -inf key_padding_mask gives NaN."""
    checked = _checked(f"self_attention(2, causal={str(causal).lower()}, mask=m)")
    feeds = _feeds(lengths=PADDED)
    ours, module = _ours(checked, feeds)
    attention = module.get_submodule("y")
    with torch.no_grad():
        v = nn.functional.linear(torch.from_numpy(feeds["x"]), attention.in_proj_weight[16:],
                                 attention.in_proj_bias[16:])  # fmt: skip
        steps = torch.arange(1, T + 1)[:, None]
        mean = v.cumsum(1) / steps if causal else v.mean(1, keepdim=True).expand(B, T, 8)
        want = attention.out_proj(mean).numpy()
    _close(ours[0], want[0])
    _close(ours[2], want[2])


def test_gradients_through_mask_and_bias_and_finite_on_padding_rows() -> None:
    """gradcheck where every row keeps a key. A row of padding only is uniform in floats
    (its scores vanish next to the most negative float) while autograd differentiates
    the shift-invariant softmax of the scores: its gradient is only required finite."""
    checked = _checked("self_attention(2, causal=true, mask=m, attn_bias=bias)")
    attention = to_torch(checked.graph, _weights(checked)).get_submodule("y").double()
    for lengths in (LENGTHS, PADDED):
        feeds = _feeds(lengths=lengths)
        m = torch.from_numpy(feeds["m"])
        x = torch.from_numpy(feeds["x"]).double().requires_grad_()
        bias = torch.from_numpy(feeds["bias"]).double().requires_grad_()
        if lengths is LENGTHS:
            assert torch.autograd.gradcheck(lambda x, b, m=m: attention(x, m, b), (x, bias))
        attention(x, m, bias).square().sum().backward()
        assert x.grad is not None and bias.grad is not None
        assert x.grad.isfinite().all() and bias.grad.isfinite().all()


# -- masks as inputs: what the tests and --verify draw, model.py, training ---------------

HF = """\
dlc: 1
name: padded
inputs:
  ids: {{shape: [B, T], dtype: int64}}
  attention_mask: {{shape: [B, T], dtype: {dtype}}}
model:
  emb: ids -> embedding(16, 8) -> cls_token
  h: emb -> transformer_encoder(2, 2, 16, mask=attention_mask -> pad([1, 0], value=1))
  y: h -> take(0) -> dense(3)
"""


@pytest.mark.parametrize("dtype", ["bool", "int64", "int32"])
def test_a_mask_input_is_drawn_as_padding(dtype: str) -> None:
    checked = check_text(HF.format(dtype=dtype), "hf.yaml")
    feeds = sample_inputs(checked, 64, np.random.default_rng(0), {"T": 7})
    mask, ids = feeds["attention_mask"], feeds["ids"]
    assert mask.dtype == np.dtype(dtype) and mask.shape == ids.shape == (64, 7)
    lengths = mask.astype(bool).sum(1)
    assert (mask == _mask(list(lengths), 7)).all()  # a prefix of ones in every row
    assert lengths.min() >= 1 and lengths[0] == 7 and len(set(lengths)) > 3
    assert ids.max() < 16


@pytest.mark.parametrize("dtype", ["bool", "int64"])
def test_compile_verify_and_model_py_with_a_mask_input(dtype: str, tmp_path: Path) -> None:
    spec = tmp_path / "hf.yaml"
    spec.write_text(HF.format(dtype=dtype))
    result = run_dlc("compile", str(spec), "-o", str(tmp_path / "hf.onnx"), "--verify",
                     "--emit", "onnx,torch")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "torch and onnxruntime agree" in result.stdout.splitlines()[-1]
    loader = importlib.util.spec_from_file_location("generated_hf", tmp_path / "hf.py")
    assert loader and loader.loader
    generated = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(generated)
    checked = check_file(spec)
    fx_module = to_torch(checked.graph, seed=1).eval()
    standalone = generated.Model().eval()
    standalone.load_state_dict(fx_module.state_dict())
    feeds = sample_inputs(checked, 4, np.random.default_rng(0))
    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.no_grad():
        assert torch.equal(fx_module(**tensors), standalone(**tensors))


TRAIN = HF.format(dtype="bool").replace(
    "take(0) -> dense(3)", "slice(1, none, axis=1) -> dense(16)"
)  # noqa: E501
TRAIN += """\
training:
  loss: cross_entropy
  optimizer: adam(lr=0.01)
  epochs: 1
  batch_size: 16
  checkpoint_every: 0
  data: {train: DATA}
"""


def test_training_feeds_a_mask_input(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rng = np.random.default_rng(0)
    ids = rng.integers(1, 16, (48, 6))
    mask = _mask(list(rng.integers(1, 7, 48)), 6)
    np.savez(tmp_path / "data.npz", ids=ids * mask, attention_mask=mask, y=ids * mask)
    spec = tmp_path / "train.yaml"
    spec.write_text(TRAIN.replace("DATA", "data.npz"))
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 0, capsys.readouterr()
    assert (tmp_path / "run" / "model.onnx").exists()


def test_a_built_in_task_without_a_mask_is_a_located_data_error(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    spec = tmp_path / "train.yaml"
    text = TRAIN.replace("DATA", '"builtin:copy(n=64, length=6, vocab=16)"')
    spec.write_text(text.replace("ids", "x"))  # the task's tokens are x, its labels y
    assert main(["train", str(spec), "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "has no array for the model's input 'attention_mask'" in err
    assert f"{spec}:{TRAIN.count(chr(10))}:" in err  # the data line, the last


# -- located errors in a graph model ------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "dtype", "message"),
    [
        ("self_attention(2, mask=mm)", "bool", "mask 'mm' is bool[B, S], but the keys [B, T, 8]"),
        (
            "cross_attention(mem, 2, mask=m)",
            "bool",
            "mask 'm' is bool[B, T], but the keys [B, S, 8]",
        ),
        ("self_attention(2, mask=x)", "bool", "mask 'x' is [B, T, 8]; a padding mask is bool"),
        ("self_attention(2, mask=m)", "float32", "a padding mask is bool, int64 or int32"),
        ("transformer_encoder(1, 2, 16, attn_bias=m)", "int64", "attn_bias 'm' is int64[B, T]"),
        ("transformer_decoder(mem, 1, 2, 16, memory_mask=m)", "bool", "memory_mask 'm' is"),
        ("self_attention(2, mask=m, mask=m)", "bool", "argument 'mask' of self_attention is given"),
        ("cross_attention(mem, 2, memory_mask=mm)", "bool", "has no argument 'memory_mask'"),
    ],
)
def test_located_errors(layer: str, dtype: str, message: str) -> None:
    text = GRAPH.format(layer=layer, dtype=dtype, bias="[T, T]")
    with pytest.raises(DlcError) as info:
        check_text(text, "masked.yaml")
    assert message in info.value.render()
    loc = info.value.loc
    assert loc is not None and loc.line == 10 and loc.col >= 11  # in `y: x -> ...`
