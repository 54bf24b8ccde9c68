"""`dlc predict`: every input and output format, and every bad input a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_dlc


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    out = {}
    for name in ("digits_mlp", "graph_mlp"):
        out[name] = d / f"{name}.onnx"
        assert run_dlc("compile", f"specs/{name}.yaml", "-o", str(out[name])).returncode == 0
    two = d / "two.yaml"
    two.write_text("dlc: 1\nname: two\ninputs: {a: [B, 3], b: [B, 3]}\n"
                   "model:\n  y: a + b -> dense(2)\n")  # fmt: skip
    out["two"] = d / "two.onnx"
    assert run_dlc("compile", str(two), "-o", str(out["two"])).returncode == 0
    return out


def _session_output(model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    s = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in s.get_outputs()], s.run(None, {"x": x}), strict=True))


def test_formats_in_and_out(models: dict[str, Path], tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((5, 64)).astype(np.float32)
    want = _session_output(models["digits_mlp"], x)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", x=x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",", header=",".join(f"f{i}" for i in range(64)),
               comments="")  # fmt: skip
    (tmp_path / "x.json").write_text(json.dumps({"x": x.tolist()}))
    (tmp_path / "bare.json").write_text(json.dumps(x.tolist()))
    for name in ("x.npy", "x.npz", "x.csv", "x.json", "bare.json"):
        out = tmp_path / f"{name}.out.npz"
        result = run_dlc("predict", str(models["digits_mlp"]), str(tmp_path / name), "-o", str(out))
        assert result.returncode == 0, result.stderr
        with np.load(out) as got:
            assert set(got.files) == {"logits", "probs"}
            np.testing.assert_allclose(got["probs"], want["probs"], rtol=1e-5, atol=1e-6)
    result = run_dlc("predict", str(models["digits_mlp"]), str(tmp_path / "x.npy"), "-o",
                     str(tmp_path / "y.json"))  # fmt: skip
    assert result.returncode == 0
    got = json.loads((tmp_path / "y.json").read_text())
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-5, atol=1e-5)
    printed = run_dlc("predict", str(models["digits_mlp"]), str(tmp_path / "x.npy"))
    assert "probs: shape [5, 10]" in printed.stdout
    single = run_dlc("predict", str(models["graph_mlp"]), str(tmp_path / "x.npy"), "-o",
                     str(tmp_path / "y.csv"))  # fmt: skip
    assert single.returncode == 0
    assert np.loadtxt(tmp_path / "y.csv", delimiter=",").shape == (5, 10)


def test_several_inputs(models: dict[str, Path], tmp_path: Path) -> None:
    a = np.ones((2, 3), np.float32)
    np.savez(tmp_path / "ab.npz", a=a, b=a)
    assert run_dlc("predict", str(models["two"]), str(tmp_path / "ab.npz")).returncode == 0
    np.save(tmp_path / "a.npy", a)
    result = run_dlc("predict", str(models["two"]), str(tmp_path / "a.npy"))
    assert result.returncode == 1 and "the model has 2 inputs (a, b)" in result.stderr


def _bad(tmp_path: Path) -> list[tuple[str, str, str]]:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "rank.npy", rng.standard_normal(64).astype(np.float32))
    np.save(tmp_path / "width.npy", rng.standard_normal((2, 63)).astype(np.float32))
    np.save(tmp_path / "text.npy", np.array([["a"] * 64]))
    np.savez(tmp_path / "names.npz", z=np.zeros((2, 64), np.float32))
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "x.txt").write_text("1,2")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    return [
        (
            "rank.npy",
            "digits_mlp",
            "input x has rank 1 [64], the model needs rank 2 [B, 64]; "
            "the values fit [1, 64]: reshape them, x.reshape(1, 64)",
        ),
        ("width.npy", "digits_mlp", "input x has 63 on axis 1, the model needs 64"),
        ("text.npy", "digits_mlp", "the model needs float32"),
        ("names.npz", "digits_mlp", "missing input x; unknown input z"),
        ("broken.json", "digits_mlp", "cannot read inputs from"),
        ("x.txt", "digits_mlp", "unknown input format '.txt'"),
        ("ragged.csv", "digits_mlp", "cannot read inputs from"),
        ("absent.npy", "digits_mlp", "does not exist"),
    ]


def test_bad_inputs_are_clear_errors(models: dict[str, Path], tmp_path: Path) -> None:
    for name, model, message in _bad(tmp_path):
        result = run_dlc("predict", str(models[model]), str(tmp_path / name))
        assert result.returncode == 1, name
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr


def test_bad_model_file(tmp_path: Path) -> None:
    (tmp_path / "m.onnx").write_bytes(b"garbage")
    np.save(tmp_path / "x.npy", np.zeros((1, 64), np.float32))
    result = run_dlc("predict", str(tmp_path / "m.onnx"), str(tmp_path / "x.npy"))
    assert result.returncode == 1 and "is not an ONNX model onnxruntime can load" in result.stderr
    result = run_dlc("predict", str(tmp_path / "none.onnx"), str(tmp_path / "x.npy"))
    assert result.returncode == 1 and "does not exist" in result.stderr
