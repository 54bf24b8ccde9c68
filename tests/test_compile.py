"""`dlc compile`, model.py, weights by name, init statistics and the Python API."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import dlc
from conftest import ROOT, SPECS, run_dlc
from dlc.compiler.errors import DlcError, UsageError
from dlc.compiler.ir import InitSpec
from dlc.compiler.lower.initial_weights import init_array
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.pipeline import check_file
from dlc.runtime import compile as compile_module
from dlc.runtime.cli import main
from dlc.runtime.compile import MIN_SCALE, choose_sizes, sample_inputs

# a spec with networks: writes one file per network (tests/test_gan.py compiles those)
SINGLE = [p for p in SPECS if "\nnetworks:" not in p.read_text()]


@pytest.mark.parametrize("spec", SINGLE, ids=[p.stem for p in SINGLE])
def test_compile_verify_every_spec(tmp_path: Path, spec: Path) -> None:
    out = tmp_path / "model.onnx"
    result = run_dlc("compile", str(spec), "-o", str(out), "--verify", "--emit", "onnx,torch")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"wrote {out}: ") and "parameters" in lines[0]
    assert re.match(r"verify \(B=1,4(, \w+=\d+)*\): torch and onnxruntime agree: max "
                    r"\|difference\|", lines[-1]), lines[-1]  # fmt: skip
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["dlc.spec"] == spec.stem and len(meta["dlc.spec_sha256"]) == 64
    assert meta["dlc.version"] == dlc.__version__
    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    # the standalone model.py needs only torch and computes what the fx module computes
    module = _import(tmp_path / "model.py")
    checked = check_file(spec)
    fx_module = to_torch(checked.graph, seed=1).eval()
    standalone = module.Model().eval()
    standalone.load_state_dict(fx_module.state_dict())
    feeds = {k: torch.from_numpy(v)
             for k, v in sample_inputs(checked, 4, np.random.default_rng(0)).items()}  # fmt: skip
    with torch.no_grad():
        a, b = fx_module(**feeds), standalone(**feeds)
    if torch.is_tensor(a):
        a, b = {"y": a}, {"y": b}
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# A conv net on [B, 3, H, W] that needs H, W >= 8: two valid 3x3 convs and a 2x2 pool
# leave H//2 - 3 rows. The size 3 that verify once gave every dim crashed torch.
CONV = """dlc: 1
name: conv
inputs: {x: [B, 3, H, W]}
model:
  - conv2d(4, 3) -> relu -> maxpool2d(2)
  - conv2d(4, 3) -> relu
  - global_avgpool
  - dense(2)
"""
# Ten tanh layers with weights from U(-0.05, 0.05): each shrinks its input about 12-fold,
# so the outputs are ~1e-12, far below ATOL: a comparison there passes whatever ONNX does.
DEEP = "dlc: 1\nname: deep\ninputs: {x: [B, 8]}\nmodel:\n" + "".join(
    ["  - dense(8, init=uniform) -> tanh\n"] * 10 + ["  - dense(2, init=uniform)\n"]
)


def _spec(tmp_path: Path, text: str, name: str = "net") -> str:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return str(path)


def test_verify_picks_sizes_the_model_accepts(tmp_path: Path) -> None:
    spec = _spec(tmp_path, CONV)
    result = run_dlc("compile", spec, "-o", str(tmp_path / "c.onnx"), "--verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(
        "verify (B=1,4, H=8, W=8): torch and onnxruntime agree: max |difference|"
    )
    assert choose_sizes(check_file(spec)) == {"H": 8, "W": 8}
    # each dim on its own: the smallest the model accepts, 3 where it can
    text = CONV.replace("conv2d(4, 3) -> relu\n", "conv2d(4, [3, 1]) -> relu\n")
    assert choose_sizes(check_file(_spec(tmp_path, text, "tall"))) == {"H": 8, "W": 4}
    assert choose_sizes(check_file(ROOT / "specs" / "transformer_lm.yaml")) == {"T": 3}
    # an explicit size, repeated or comma-separated
    for sizes in (["--size", "H=64", "--size", "W=9"], ["--size", "H=64,W=9"]):
        result = run_dlc("compile", spec, "-o", str(tmp_path / "c.onnx"), "--verify", *sizes)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1].startswith("verify (B=1,4, H=64, W=9): torch ")


@pytest.mark.parametrize(
    ("spec", "args", "messages"),
    [
        ("conv", ["--size", "H=5"], [
            "error: --size H=5: the model does not accept it with any W up to 256",
            "conv.yaml:6:5: error: conv2d's kernel 3 is larger than the input's padded "
            "height 1 ([B, 4, 1, 127])"]),
        ("conv", ["--size", "H=8,W=7"], ["error: --size H=8, W=7: the model does not accept it",
                                         "conv.yaml:6:5: error: conv2d's kernel 3"]),
        ("conv", ["--size", "Q=3"], ["error: --size Q: the inputs have no dim named Q",
                                     "hint: their symbolic dims besides the batch: H, W"]),
        ("conv", ["--size", "B=3"], ["--size B: B is the batch, which verify sets to 1 and 4"]),
        ("conv", ["--size", "H=x"], ["--size takes NAME=SIZE with a positive integer size, "
                                     "not 'H=x'"]),
        ("conv", ["--size", "H=0"], ["not 'H=0'"]),
        ("lm", ["--size", "T=64"], [
            "error: --size T=64: the model does not accept it",
            "transformer_lm.yaml:19:12: error: positional_encoding covers 12 positions, "
            "but [B, 64, 32] has 64"]),
    ],
)  # fmt: skip
def test_verify_refuses_sizes_the_model_rejects(
    tmp_path: Path, spec: str, args: list[str], messages: list[str]
) -> None:
    path = _spec(tmp_path, CONV, "conv") if spec == "conv" else "specs/transformer_lm.yaml"
    out = tmp_path / "c.onnx"
    result = run_dlc("compile", path, "-o", str(out), "--verify", *args)
    assert result.returncode == 1, result.stdout
    for message in messages:
        assert message in result.stderr, result.stderr
    assert "internal error" not in result.stderr and not out.exists()


def test_size_needs_verify(tmp_path: Path) -> None:
    result = run_dlc("compile", _spec(tmp_path, CONV), "-o", str(tmp_path / "c.onnx"),
                     "--size", "H=8")  # fmt: skip
    assert result.returncode == 1
    assert "error: --size gives the sizes that --verify runs: add --verify" in result.stderr


def test_verify_draws_ids_inside_the_vocabulary(tmp_path: Path) -> None:
    text = ("dlc: 1\nname: emb\ninputs:\n  x: {shape: [B, T], dtype: int64}\n"
            "model:\n  a: x -> embedding(5, 4)\n  b: x -> embedding(2, 4)\n"
            "  y: add(a, b) -> dense(3)\noutputs: {y: y}\n")  # fmt: skip
    spec = _spec(tmp_path, text)
    result = run_dlc("compile", spec, "-o", str(tmp_path / "e.onnx"), "--verify")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("verify (B=1,4, T=3): torch and ")
    ids = sample_inputs(check_file(spec), 64, np.random.default_rng(0))["x"]
    assert ids.shape == (64, 3) and set(np.unique(ids)) == {0, 1}  # the smaller table's rows


def test_verify_rescales_outputs_too_small_to_judge(tmp_path: Path) -> None:
    spec = _spec(tmp_path, DEEP)
    result = run_dlc("compile", spec, "-o", str(tmp_path / "d.onnx"), "--verify")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert re.match(r"verify \(B=1,4\): output 'y' \(largest magnitude \d\.\d+e-1\d\) is "
                    r"below 0\.001 with these weights, too small to judge: comparing with "
                    r"weights redrawn N\(0, 1/fan_in\)$", lines[-2]), lines[-2]  # fmt: skip
    assert lines[-1].startswith("verify (B=1,4) with redrawn weights: torch and onnxruntime "
                                "agree: max |difference|")  # fmt: skip


def test_verify_fails_when_outputs_stay_too_small(tmp_path: Path) -> None:
    # clamped to +-1e-6 whatever the weights: no comparison can tell anything from it
    text = ("dlc: 1\nname: tiny\ninputs: {x: [B, 8]}\nmodel:\n"
            "  - dense(2) -> hardtanh(-0.000001, 0.000001)\n")  # fmt: skip
    result = run_dlc("compile", _spec(tmp_path, text), "-o", str(tmp_path / "t.onnx"),
                     "--verify")  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines()[-1] == (
        "verify (B=1,4) with redrawn weights: CANNOT JUDGE: output 'y' (largest magnitude "
        "1e-06) is still below 0.001: too small to tell torch from onnxruntime"
    )


def test_verify_catches_a_wrong_onnx_graph_with_tiny_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build_onnx = compile_module.build_onnx

    def wrong(checked, weights, opset, **kw):  # noqa: ANN001, ANN202, ANN003
        model = build_onnx(checked, weights, opset, **kw)
        first = next(i for i in model.graph.initializer if i.name == "dense.weight")
        array = onnx.numpy_helper.to_array(first) * 1.5  # the ONNX graph computes 1.5 x W1 x
        first.CopyFrom(onnx.numpy_helper.from_array(array, first.name))
        return model

    monkeypatch.setattr(compile_module, "build_onnx", wrong)
    assert main(["compile", _spec(tmp_path, DEEP), "-o", str(tmp_path / "w.onnx"),
                 "--verify"]) == 1  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert "too small to judge" in lines[-2]
    assert lines[-1].startswith("verify (B=1,4) with redrawn weights: torch and onnxruntime "
                                "DISAGREE: max |difference|")  # fmt: skip
    # what the written (wrong) graph computes is below MIN_SCALE: the tolerance alone would
    # have let it pass
    session = ort.InferenceSession(str(tmp_path / "w.onnx"), providers=["CPUExecutionProvider"])
    y = session.run(None, {"x": np.random.default_rng(0).standard_normal((4, 8), np.float32)})
    assert np.abs(y[0]).max() < MIN_SCALE


def _import(path: Path):  # noqa: ANN202
    spec = importlib.util.spec_from_file_location(f"generated_{path.stem}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_default_output_is_next_to_the_spec(tmp_path: Path) -> None:
    spec = tmp_path / "net.yaml"
    spec.write_text((ROOT / "specs" / "xor.yaml").read_text())
    assert run_dlc("compile", str(spec)).returncode == 0
    assert (tmp_path / "net.onnx").is_file()


def test_compile_without_verify_does_not_import_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from dlc.runtime.cli import main\n"
        f"assert main(['compile', 'specs/mnist_mlp.yaml', '-o', r'{tmp_path / 'm.onnx'}']) == 0\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_trained_weights_move_by_name(tmp_path: Path) -> None:
    checked = check_file(ROOT / "specs" / "resnet_mlp.yaml")
    module = to_torch(checked.graph, seed=7)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "m.onnx"
    result = run_dlc("compile", "specs/resnet_mlp.yaml", "-o", str(out), "--weights",
                     str(tmp_path / "w.pt"), "--verify")  # fmt: skip
    assert result.returncode == 0, result.stderr
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in onnx.load(out).graph.initializer}
    for key, value in module.state_dict().items():
        if key.endswith("num_batches_tracked"):
            continue
        np.testing.assert_array_equal(inits[key], value.numpy())
    # a checkpoint dict and a .npz work too
    torch.save({"model": module.state_dict(), "epoch": 3}, tmp_path / "ckpt.pt")
    np.savez(tmp_path / "w.npz", **{k: v.numpy() for k, v in module.state_dict().items()})
    for path in ("ckpt.pt", "w.npz"):
        result = run_dlc("compile", "specs/resnet_mlp.yaml", "-o", str(out), "--weights",
                         str(tmp_path / path))  # fmt: skip
        assert result.returncode == 0, result.stderr


def _bad_weights(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = to_torch(check_file(ROOT / "specs" / "xor.yaml").graph).state_dict()
    cases = {}
    missing = dict(good)
    del missing["dense.bias"]
    extra = dict(good, **{"dense_9.weight": torch.zeros(2)})
    wrong = dict(good, **{"dense.weight": torch.zeros(3, 2)})
    for name, state, message in [
        ("missing", missing, "missing: dense.bias"),
        ("extra", extra, "unexpected: dense_9.weight"),
        ("wrong", wrong, "wrong shape: dense.weight: [3, 2] where the spec needs [4, 2]"),
    ]:
        torch.save(state, tmp_path / f"{name}.pt")
        cases[name] = (tmp_path / f"{name}.pt", message)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    cases["corrupt"] = (tmp_path / "junk.pt", "cannot read weights from")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    cases["no_state_dict"] = (tmp_path / "list.pt", "holds no state dict")
    (tmp_path / "w.txt").write_text("1 2 3")
    cases["format"] = (tmp_path / "w.txt", "unknown weights format '.txt'")
    cases["absent"] = (tmp_path / "nope.pt", "does not exist")
    return cases


def test_bad_weights_files(tmp_path: Path) -> None:
    for name, (path, message) in _bad_weights(tmp_path).items():
        result = run_dlc("compile", "specs/xor.yaml", "-o", str(tmp_path / "x.onnx"),
                         "--weights", str(path))  # fmt: skip
        assert result.returncode == 1, name
        assert message in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr


def test_pickles_are_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (print, ("pwned",))

    torch.save({"dense.weight": Evil()}, tmp_path / "evil.pt")
    result = run_dlc("compile", "specs/xor.yaml", "-o", str(tmp_path / "x.onnx"),
                     "--weights", str(tmp_path / "evil.pt"))  # fmt: skip
    assert result.returncode == 1 and "pwned" not in result.stdout
    assert "cannot read weights" in result.stderr


def test_opset_choice(tmp_path: Path) -> None:
    for opset in (17, 18, 20):
        out = tmp_path / f"m{opset}.onnx"
        assert run_dlc("compile", "specs/graph_mlp.yaml", "-o", str(out), "--opset", str(opset),
                       "--verify").returncode == 0  # fmt: skip
        assert onnx.load(out).opset_import[0].version == opset
    bad = run_dlc("compile", "specs/xor.yaml", "-o", str(tmp_path / "x.onnx"), "--opset", "3")
    assert bad.returncode == 1 and "opset 3 is not supported" in bad.stderr


@pytest.mark.parametrize(
    ("name", "variance"),
    [
        ("lecun_normal", lambda i, o: 1 / i),
        ("lecun_uniform", lambda i, o: 1 / i),
        ("glorot_normal", lambda i, o: 2 / (i + o)),
        ("glorot_uniform", lambda i, o: 2 / (i + o)),
        ("he_normal", lambda i, o: 2 / i),
        ("he_uniform", lambda i, o: 2 / i),
    ],
)
def test_init_statistics_follow_the_course(name: str, variance) -> None:  # noqa: ANN001
    fan_out, fan_in = 512, 1024
    w = init_array(InitSpec(name), (fan_out, fan_in), np.random.default_rng(0))
    expected = variance(fan_in, fan_out) ** 0.5
    assert abs(w.std() / expected - 1) < 0.02
    assert abs(w.mean()) < 0.02 * expected
    if name.endswith("uniform"):
        assert np.abs(w).max() <= expected * 3**0.5 + 1e-7


def test_other_inits() -> None:
    rng = np.random.default_rng(0)
    q = init_array(InitSpec("orthogonal"), (64, 128), rng)
    np.testing.assert_allclose(q @ q.T, np.eye(64), atol=1e-5)
    u = init_array(InitSpec("uniform", (("a", -10.0), ("b", 10.0))), (100_000,), rng)
    assert -10 <= u.min() and u.max() <= 10 and abs(u.std() - 20 / 12**0.5) < 0.1
    n = init_array(InitSpec("normal", (("mean", 1.0), ("std", 0.5))), (100_000,), rng)
    assert abs(n.mean() - 1) < 0.01 and abs(n.std() - 0.5) < 0.01
    assert (init_array(InitSpec("constant", (("value", 0.25),)), (3,), rng) == 0.25).all()


def test_the_specs_init_reaches_torch() -> None:
    gm = to_torch(check_file(ROOT / "specs" / "xor.yaml").graph, seed=0)
    assert gm.state_dict()["dense.bias"].abs().max() == 0  # biases 0
    w = to_torch(dlc.load(ROOT / "specs" / "digits_mlp.yaml").graph).state_dict()["dense.weight"]
    assert abs(float(w.std()) / (2 / 64) ** 0.5 - 1) < 0.05  # he_uniform from training.init


def test_torch_compile_works() -> None:
    gm = to_torch(check_file(ROOT / "specs" / "graph_mlp.yaml").graph).eval()
    compiled = torch.compile(gm, backend="aot_eager")
    x = torch.randn(3, 64)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), gm(x))


def test_python_api(tmp_path: Path) -> None:
    model = dlc.load(ROOT / "specs" / "mnist_mlp.yaml", hidden=64)
    assert "parameters: 59,850" in model.summary()
    assert model.summary(as_dict=True)["total_params"] == 784 * 64 + 64 + 64 * 128 + 128 + 1290
    assert model.check() is model
    module = model.to_torch()
    proto = model.to_onnx(weights=module.state_dict())
    onnx.checker.check_model(proto)
    text = "dlc: 1\nname: tiny\ninputs: {x: [B, 3]}\nmodel: [dense(2)]\n"
    assert dlc.load(text).graph.num_params == 8
    with pytest.raises(DlcError, match="unknown op or block 'dens'"):
        dlc.load(text.replace("dense", "dens"))
    with pytest.raises(UsageError, match="unknown param"):
        dlc.load(ROOT / "specs" / "mnist_mlp.yaml", hiden=3)
    with pytest.raises(UsageError, match="missing: dense.bias"):
        model.to_torch({"dense.weight": np.zeros((64, 784))})
    assert json.dumps(model.summary(as_dict=True))
