"""`dlc quantize`: real onnxruntime quantization of a freshly trained run, dynamic and
static; the int8 model runs and agrees with the float one; the gate refuses and leaves
no file; every bad input a clear error."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import run_dlc
from dlc.runtime.cli import main
from dlc.runtime.quantize import INT8_OPS, load_run

QUICK = ["--set", "training.epochs=3", "--set", "training.checkpoint_every=0", "-q"]
REGRESSION = """dlc: 1
name: reg
inputs: {x: [B, 1]}
model:
  - standardize -> dense(16) -> tanh -> dense(1)
outputs: {y: y}
training:
  loss: mse
  optimizer: adam(lr=1e-2)
  epochs: 3
  batch_size: 32
  data: {train: "builtin:linreg(n=256)", test_split: 0.25}
"""


@pytest.fixture(scope="module")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("quant") / "mlp"
    code = main(["train", "specs/digits_mlp.yaml", "--set", "hidden=64", *QUICK,
                 "--out", str(run)])  # fmt: skip
    assert code == 0
    return run


def quantize(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["quantize", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outputs(model: Path, x: np.ndarray) -> np.ndarray:
    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return np.asarray(s.run(["probs"], {"x": x})[0])


@pytest.mark.parametrize("mode", ["dynamic", "static"])
def test_int8_runs_agrees_and_is_smaller(mode: str, mlp_run: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    q = tmp_path / f"{mode}.int8.onnx"
    before = digest(mlp_run / "model.onnx")
    code, out, err = quantize(capsys, str(mlp_run), f"--{mode}", "-o", str(q))
    assert code == 0, err
    assert f"mode: {mode}" in out and "test accuracy: " in out and f"wrote {q}" in out
    assert "latency batch 1: " in out and "latency batch 64: " in out
    assert digest(mlp_run / "model.onnx") == before  # the float model untouched
    assert q.stat().st_size < 0.5 * (mlp_run / "model.onnx").stat().st_size
    ops = {n.op_type for n in onnx.load(str(q)).graph.node}
    assert ops & INT8_OPS, ops
    if mode == "static":
        assert "QuantizeLinear" in ops and "DequantizeLinear" in ops  # QDQ format
    else:
        assert "DynamicQuantizeLinear" in ops
    x = load_run(mlp_run, ["probs"]).test_inputs["x"]
    want, got = outputs(mlp_run / "model.onnx", x), outputs(q, x)
    assert got.shape == want.shape
    assert np.mean(got.argmax(-1) == want.argmax(-1)) >= 0.95
    assert np.abs(got - want).max() < 0.2


def test_the_gate_refuses_and_writes_nothing(
    mlp_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # static, calibrated on a single example and per tensor: the ranges clip the test
    # data and accuracy falls (by ~8 points here); `--max-drop 0.01` gates any loss
    q = tmp_path / "bad.int8.onnx"
    before = digest(mlp_run / "model.onnx")
    args = [str(mlp_run), "--static", "--calibrate", "1", "--no-per-channel",
            "--max-drop", "0.01", "-o", str(q)]  # fmt: skip
    code, out, err = quantize(capsys, *args)
    assert code == 1
    assert "dlc quantize: refused: int8 test accuracy " in err
    assert "points below the float model's " in err and "(--max-drop 0.01)" in err
    assert "test accuracy: " in out  # the figures are printed too
    assert not q.exists() and not list(tmp_path.glob(".bad.int8.onnx.*"))
    assert digest(mlp_run / "model.onnx") == before
    code, out, err = quantize(capsys, *args, "--force")
    assert code == 0 and q.exists()
    assert "warning: int8 test accuracy " in err and "written anyway (--force)" in err


def test_regression_gates_on_mse(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = tmp_path / "reg.yaml"
    spec.write_text(REGRESSION)
    assert main(["train", str(spec), "--out", str(tmp_path / "run"), "-q"]) == 0
    code, out, err = quantize(capsys, str(tmp_path / "run"), "--max-rise", "1e9")
    assert code == 0, err
    assert "test mse: " in out and "mode: dynamic" in out
    assert (tmp_path / "run" / "model.int8.onnx").exists()


def test_a_bare_model_is_quantized_without_the_gate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "m.onnx"
    assert main(["compile", "specs/digits_mlp.yaml", "-o", str(model)]) == 0
    capsys.readouterr()
    code, out, err = quantize(capsys, str(model))
    assert code == 0, err
    assert "accuracy gate: not run" in out and "latency batch 64: " in out
    assert (tmp_path / "m.int8.onnx").exists()
    # a conv model needs calibration data: static from a bare model is refused
    conv = tmp_path / "lenet.onnx"
    assert main(["compile", "specs/lenet_digits.yaml", "-o", str(conv)]) == 0
    capsys.readouterr()
    code, _, err = quantize(capsys, str(conv))
    assert code == 1
    assert "static quantization needs calibration data: quantize a RUN folder" in err
    assert not (tmp_path / "lenet.int8.onnx").exists()


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], mlp_run: Path) -> None:
    text = tmp_path / "x.onnx"
    text.write_text("not a model")
    relu = tmp_path / "relu.yaml"
    relu.write_text("dlc: 1\nname: r\ninputs: {x: [B, 4]}\nmodel:\n  - relu\n")
    assert main(["compile", str(relu), "-o", str(tmp_path / "relu.onnx")]) == 0
    capsys.readouterr()
    cases = [
        ([str(tmp_path / "nope.onnx")], "does not exist"),
        ([str(text)], f"'{text}' is not an ONNX model: "),
        ([str(tmp_path)], "is not a run folder: it needs model.onnx and spec.yaml"),
        ([str(tmp_path / "relu.onnx")], "nothing to quantize: the model has no MatMul"),
        ([str(mlp_run), "-o", str(mlp_run / "model.onnx")], "is the float model itself"),
        ([str(mlp_run), "--static", "--dynamic"], "--static and --dynamic exclude each other"),
        ([str(mlp_run), "--calibrate", "0"], "--calibrate takes a number of examples >= 1"),
        ([str(mlp_run), "--max-drop", "-1"], "take a threshold >= 0, got -1 and 5"),
    ]
    for args, message in cases:
        code, _, err = quantize(capsys, *args)
        assert code == 1, args
        assert message in err, (args, err)
        assert "Traceback" not in err


def test_the_cli_in_a_subprocess_leaves_nothing_behind(mlp_run: Path, tmp_path: Path) -> None:
    # static too: calibration and onnxruntime's shape inference write temporary models,
    # which must not land in the working folder (a failed symbolic inference left a
    # UUID.data file there)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    lm = tmp_path / "lm.onnx"  # its graph is one where symbolic shape inference fails
    assert run_dlc("compile", "specs/transformer_lm.yaml", "-o", str(lm)).returncode == 0
    for target, mode in ((mlp_run, "--dynamic"), (mlp_run, "--static"), (lm, "--dynamic")):
        result = run_dlc("quantize", str(target), mode, "-o", str(tmp_path / "q.onnx"), cwd=cwd)
        assert result.returncode == 0, result.stderr
        assert "size: " in result.stdout and "onnxruntime, 1 thread)" in result.stdout
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "lm.onnx", "q.onnx"]
