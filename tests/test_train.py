"""`dlc train` end to end: the run folder, determinism, resume after SIGKILL, NaN and
Ctrl-C, early stopping, schedules in the loop, several outputs, DDP on two processes,
and the located errors. Runs are in-process (`cli.main`) where a process is not the
point, and real subprocesses where it is (kill, interrupt, torchrun)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from conftest import ROOT, SPECS, run_dlc
from dlc.runtime.cli import main

# a spec with networks: trains by training.gan (tests/test_gan.py trains those)
TRAINABLE = [
    s for s in SPECS if "\ntraining:" in s.read_text() and "\nnetworks:" not in s.read_text()
]
QUICK = ["--set", "training.epochs=2", "--set", "training.checkpoint_every=0"]


def spec_file(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def train(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["train", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["model"]


LINREG = """\
dlc: 1
name: lin
params: {lr: 0.01}
inputs: {x: [B, 1]}
model: [dense(1)]
training:
  loss: mse
  optimizer: sgd(lr=lr)
  epochs: 6
  batch_size: 8
  checkpoint_every: 0
  data: {train: "builtin:linreg", val_split: 0.2}
"""


# ----------------------------------------------------------------- every spec trains


def with_stand_in_files(spec: Path, folder: Path) -> Path:
    """A copy of the spec in `folder`, with small random .npz files where its data are
    files a fresh checkout lacks (MNIST), shaped for the model's input."""
    import yaml

    from dlc.compiler.pipeline import check_file

    data = yaml.safe_load(spec.read_text())["training"]["data"]
    graph = check_file(spec).graph
    features = [d for d in graph.inputs[0].type.shape[1:]]
    rng = np.random.default_rng(0)
    for source in (v for k, v in data.items() if k in ("train", "val", "test")):
        if not source.startswith("builtin:"):
            path = folder / source
            path.parent.mkdir(parents=True, exist_ok=True)
            x = rng.random((64, *features), dtype=np.float32)
            np.savez(path, x=x, y=rng.integers(0, 10, 64))
    copy = folder / spec.name
    copy.write_text(spec.read_text())
    return copy


@pytest.mark.parametrize("spec", TRAINABLE, ids=lambda p: p.stem)
def test_every_spec_trains_and_its_onnx_model_runs(spec: Path, tmp_path: Path, capsys) -> None:
    spec = with_stand_in_files(spec, tmp_path)
    run = tmp_path / "run"
    code, out, err = train(capsys, str(spec), "--out", str(run), "-q", *QUICK)
    assert code == 0, err
    for name in ("spec.yaml", "run.json", "model.ir", "last.pt", "metrics.jsonl",
                 "curves.png", "model.onnx", "report.md", "report.json"):  # fmt: skip
        assert (run / name).is_file(), name
    assert [r["epoch"] for r in rows(run)] == [1, 2]
    assert f"run: {run}" in out and "model.onnx" in out
    # the ONNX model holds the trained weights: it agrees with the torch module
    from dlc.compiler.lower.torch import to_torch
    from dlc.compiler.pipeline import check_file

    checked = check_file(spec)
    module = to_torch(checked.graph, weights(run / "last.pt")).eval()
    session = ort.InferenceSession(str(run / "model.onnx"), providers=["CPUExecutionProvider"])
    from dlc.runtime.compile import sample_inputs

    feeds = sample_inputs(checked, 5, np.random.default_rng(1))
    theirs = session.run(None, feeds)[0]
    with torch.no_grad():
        ours = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    ours = ours if torch.is_tensor(ours) else next(iter(ours.values()))
    np.testing.assert_allclose(theirs, ours.numpy(), rtol=1e-4, atol=1e-5)


def test_dlc_predict_runs_the_trained_model(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    code, _, err = train(capsys, str(ROOT / "specs/digits_mlp.yaml"), "--out", str(run), *QUICK)
    assert code == 0, err
    from sklearn.datasets import load_digits

    x = load_digits().data[:5].astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    result = run_dlc("predict", str(run / "model.onnx"), str(tmp_path / "x.npy"),
                     "-o", str(tmp_path / "y.npz"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    probs = np.load(tmp_path / "y.npz")["probs"]
    assert probs.shape == (5, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)


def test_standardize_is_fitted_on_the_training_split_and_baked_into_onnx(
    tmp_path: Path, capsys
) -> None:
    run = tmp_path / "run"
    # the digits MLP with a per-pixel z-score (the spec itself scales by min-max: DLC112)
    spec = (ROOT / "specs/digits_mlp.yaml").read_text()
    (tmp_path / "zscore.yaml").write_text(spec.replace("standardize(method=minmax)", "standardize"))
    code, _, err = train(capsys, str(tmp_path / "zscore.yaml"), "--out", str(run),
                         "--set", "training.epochs=1")  # fmt: skip
    assert code == 0, err
    from dlc.runtime.train.data import load_source, split

    ds = load_source("builtin:digits", base_dir=ROOT)
    assert "test_split: 0.2" in spec and "val_split: 0.1" in spec
    rest, _ = split(ds, 0.2, seed=0)
    train_part, _ = split(rest, 0.1, seed=1)
    x = train_part.arrays["x"].astype(np.float64)
    w = weights(run / "last.pt")
    np.testing.assert_allclose(w["standardize.shift"].numpy(), x.mean(0), rtol=1e-5, atol=1e-5)
    std = x.std(0)
    expected = np.where(std > 0, std + 1e-8, 1.0)  # constant pixels keep scale 1
    assert (std == 0).any()
    np.testing.assert_allclose(w["standardize.scale"].numpy(), expected, rtol=1e-4)
    import onnx

    names = {i.name for i in onnx.load(run / "model.onnx").graph.initializer}
    assert {"standardize.shift", "standardize.scale"} <= names


# ----------------------------------------------------------------- determinism, resume


def test_same_seed_same_weights_other_seed_other_weights(tmp_path: Path, capsys) -> None:
    spec = spec_file(
        tmp_path, LINREG.replace("[dense(1)]", "[dense(8) -> relu -> dropout(0.2), dense(1)]")
    )
    runs = []
    for k, seed in enumerate((0, 0, 1)):
        run = tmp_path / f"run{k}"
        assert train(capsys, str(spec), "--out", str(run), "--set", f"training.seed={seed}")[0] == 0
        runs.append(weights(run / "last.pt"))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    text = LINREG.replace("[dense(1)]", "[dense(32) -> relu -> dropout(0.1), dense(1)]")
    text = text.replace("epochs: 6", "epochs: 30").replace("linreg", "linreg(n=1000)")
    text = text.replace("batch_size: 8", "batch_size: 32")
    spec = spec_file(tmp_path, text)
    whole = tmp_path / "whole"
    assert run_dlc("train", str(spec), "--out", str(whole), "-q").returncode == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen([sys.executable, "-m", "dlc.runtime.cli", "train", str(spec),
                             "--out", str(cut), "-q"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # kill it in the middle of the run
            if (cut / "metrics.jsonl").exists() and len(rows(cut)) >= 5:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    killed_at = len(rows(cut))
    assert 5 <= killed_at < 30, "the run was killed in its middle"
    resumed = run_dlc("train", "--resume", str(cut), "-q")
    assert resumed.returncode == 0, resumed.stderr
    a, b = weights(whole / "last.pt"), weights(cut / "last.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["epoch"] for r in rows(cut)] == list(range(1, 31))
    assert [r["loss"] for r in rows(cut)] == [r["loss"] for r in rows(whole)]


def test_resume_refuses_another_model_and_an_existing_out(tmp_path: Path, capsys) -> None:
    spec = spec_file(tmp_path, LINREG)
    run = tmp_path / "run"
    assert train(capsys, str(spec), "--out", str(run))[0] == 0
    code, _, err = train(capsys, str(spec), "--out", str(run))
    assert code == 1 and f"'{run}' already holds a run" in err and "--resume" in err
    other = spec_file(tmp_path, LINREG.replace("[dense(1)]", "[dense(2), dense(1)]"), "b.yaml")
    code, _, err = train(capsys, str(other), "--resume", str(run))
    assert code == 1 and "is not the one the run" in err


def test_resume_with_more_epochs_continues(tmp_path: Path, capsys) -> None:
    spec = spec_file(tmp_path, LINREG)
    run = tmp_path / "run"
    assert train(capsys, str(spec), "--out", str(run))[0] == 0
    code, out, err = train(capsys, "--resume", str(run), "--set", "training.epochs=9")
    assert code == 0, err
    assert [r["epoch"] for r in rows(run)] == list(range(1, 10))


# ----------------------------------------------------------------- faults


def test_nan_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, LINREG.replace("params: {lr: 0.01}", "params: {lr: 0.3}")
                     .replace("epochs: 6", "epochs: 200"))  # fmt: skip
    run = tmp_path / "run"
    result = run_dlc("train", str(spec), "--out", str(run), "-q")
    assert result.returncode == 1
    assert "spec.yaml:8:14: error: the loss is " in result.stderr
    assert "in epoch " in result.stderr and ", step " in result.stderr
    assert f"the last good checkpoint is {run / 'last.pt'}" in result.stderr
    assert "Traceback" not in result.stderr
    state = torch.load(run / "last.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    assert json.loads((run / "report.json").read_text())["status"] == "stopped: non-finite loss"


def test_ctrl_c_saves_and_exits_cleanly(tmp_path: Path) -> None:
    spec = spec_file(tmp_path, LINREG.replace("epochs: 6", "epochs: 100000"))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "dlc.runtime.cli", "train", str(spec),
                             "--out", str(run), "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if (run / "metrics.jsonl").exists() and len(rows(run)) >= 3:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "dlc train: interrupted in epoch" in err and f"dlc train --resume {run}" in err
    assert "Traceback" not in err
    for name in ("interrupted.pt", "last.pt", "model.onnx", "report.md"):
        assert (run / name).is_file(), name
    assert json.loads((run / "report.json").read_text())["status"] == "interrupted"


# ----------------------------------------------------------------- what the loop does


def test_early_stopping_restores_the_best_epoch(tmp_path: Path, capsys) -> None:
    text = LINREG.replace("params: {lr: 0.01}", "params: {lr: 0.05}").replace(
        "epochs: 6", "epochs: 500\n  early_stopping: {monitor: val_loss, patience: 3}"
    )
    run = tmp_path / "run"
    code, _, err = train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))
    assert code == 0, err
    report = json.loads((run / "report.json").read_text())
    assert report["status"] == "stopped early"
    history = rows(run)
    best = min(history, key=lambda r: r["val_loss"])
    assert report["best_epoch"] == best["epoch"]
    assert len(history) - best["epoch"] == 4  # patience 3: the 4th bad epoch stops it
    # the exported model holds the best epoch's weights, not the last epoch's
    import onnx
    from onnx import numpy_helper

    exported = {
        i.name: numpy_helper.to_array(i) for i in onnx.load(run / "model.onnx").graph.initializer
    }
    best_w = weights(run / "best.pt")["dense.weight"].numpy()
    np.testing.assert_array_equal(exported["dense.weight"], best_w)
    assert not np.array_equal(weights(run / "last.pt")["dense.weight"].numpy(), best_w)


def test_the_schedule_sets_the_learning_rate_of_each_epoch(tmp_path: Path, capsys) -> None:
    text = LINREG.replace("optimizer: sgd(lr=lr)", "optimizer: sgd(lr=0.01)\n"
                          "  schedule: step(step_size=2, gamma=0.5)")  # fmt: skip
    run = tmp_path / "run"
    assert train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))[0] == 0
    assert [r["lr"] for r in rows(run)] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])


def test_regression_reports_mse_mae_r2_and_the_test_split(tmp_path: Path, capsys) -> None:
    text = LINREG.replace("val_split: 0.2", "val_split: 0.2, test_split: 0.2")
    run = tmp_path / "run"
    code, out, _ = train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))
    assert code == 0
    report = json.loads((run / "report.json").read_text())
    assert set(report["test"]) >= {"loss", "mse", "mae", "r2"}
    assert "test: loss" in out and " r2 " in out


def test_two_outputs_with_weighted_loss_terms(tmp_path: Path, capsys) -> None:
    text = """\
dlc: 1
name: two
inputs: {x: [B, 1]}
model:
  h: x -> dense(8) -> tanh
  a: h -> dense(1)
  b: h -> dense(1)
outputs: {a: a, b: b}
training:
  loss:
    - {loss: mse, output: a, weight: 1.0}
    - {loss: l1, output: b, target: x, weight: 0.5}
  optimizer: adam(lr=0.01)
  epochs: 3
  data: {train: "builtin:linreg"}
"""
    run = tmp_path / "run"
    code, _, err = train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))
    assert code == 0, err
    assert len(rows(run)) == 3


@pytest.mark.parametrize("optimizer", ["gd(lr=0.01)", "lbfgs", "newton(damping=0.001)",
                                       "ngd(lr=0.01)", "adagrad", "rmsprop", "adadelta",
                                       "adamw"])  # fmt: skip
def test_every_optimizer_runs_in_the_loop(optimizer: str, tmp_path: Path, capsys) -> None:
    text = LINREG.replace("optimizer: sgd(lr=lr)", f"optimizer: {optimizer}")
    run = tmp_path / "run"
    code, _, err = train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))
    assert code == 0, err
    history = rows(run)
    assert history[-1]["loss"] < history[0]["loss"]


def test_bf16_autocast_trains_on_the_cpu(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    code, _, err = train(capsys, str(spec_file(tmp_path, LINREG)), "--out", str(run),
                         "--set", "training.precision=bf16")  # fmt: skip
    assert code == 0, err


def test_idx_files_train_end_to_end(tmp_path: Path, capsys) -> None:
    """MNIST's own format, written small: images reshape to the model's [B, 16]."""
    import struct

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 4, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, 40, dtype=np.uint8)
    (tmp_path / "train-images-idx3-ubyte").write_bytes(
        struct.pack(">IIII", 0x803, 40, 4, 4) + images.tobytes())  # fmt: skip
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        struct.pack(">II", 0x801, 40) + labels.tobytes())  # fmt: skip
    text = """\
dlc: 1
name: idx
inputs: {x: [B, 16]}
model: [dense(10)]
training:
  loss: cross_entropy
  epochs: 2
  data: {train: train-images-idx3-ubyte}
"""
    run = tmp_path / "run"
    code, _, err = train(capsys, str(spec_file(tmp_path, text)), "--out", str(run))
    assert code == 0, err
    assert "accuracy" in rows(run)[0]


# ----------------------------------------------------------------- several processes


def test_two_processes_follow_the_curve_of_one(tmp_path: Path) -> None:
    text = LINREG.replace("[dense(1)]", "[dense(16) -> tanh, dense(1)]").replace(
        "linreg", "linreg(n=250)").replace("batch_size: 8", "batch_size: 32")  # fmt: skip
    spec = spec_file(tmp_path, text)
    one, two = tmp_path / "one", tmp_path / "two"
    r1 = run_dlc("train", str(spec), "--out", str(one), "-q")
    assert r1.returncode == 0, r1.stderr
    env = {"OMP_NUM_THREADS": "1"}
    r2 = subprocess.run([sys.executable, "-m", "dlc.runtime.cli", "train", str(spec), "--out",
                         str(two), "-q", "--nproc", "2"], capture_output=True, text=True,
                        timeout=300, env=dict(os.environ, **env))  # fmt: skip
    assert r2.returncode == 0, r2.stderr[-3000:]
    assert json.loads((two / "report.json").read_text())["processes"] == 2
    a = [r["loss"] for r in rows(one)]
    b = [r["loss"] for r in rows(two)]
    assert len(a) == len(b) == 6
    np.testing.assert_allclose(b, a, rtol=1e-4)
    np.testing.assert_allclose([r["val_loss"] for r in rows(two)],
                               [r["val_loss"] for r in rows(one)], rtol=1e-4)  # fmt: skip


# ----------------------------------------------------------------- located errors


@pytest.mark.parametrize(
    ("text", "message", "where"),
    [
        (LINREG.replace('"builtin:linreg"', '"builtin:linregg"'),
         "unknown built-in data set 'linregg' (did you mean 'linreg'?)", "spec.yaml:12:18"),
        (LINREG.replace('"builtin:linreg"', "missing.npz"),
         "does not exist", "spec.yaml:12:17"),
        (LINREG.replace("[B, 1]", "[B, 3]"),
         "gives examples of shape [1] for input 'x', which takes [B, 3]", "spec.yaml:12:18"),
        (LINREG.replace("optimizer: sgd(lr=lr)", "optimizer: newton")
         .replace("[dense(1)]", "[dense(80), dense(80)]"),
         "newton needs the exact", "spec.yaml:8:14"),
        (LINREG.replace("  data: {train: \"builtin:linreg\", val_split: 0.2}\n", ""),
         "training needs data", "spec.yaml:7:3"),
        (LINREG.replace("  loss: mse\n", ""), "training needs a loss", "spec.yaml:7:3"),
        (LINREG.replace("training:", "other: 1\ntraining:").split("other")[0],
         "has no training section", ""),
    ],
)  # fmt: skip
def test_errors_are_located_and_exit_1(text: str, message: str, where: str, tmp_path: Path,
                                       capsys) -> None:  # fmt: skip
    spec = spec_file(tmp_path, text)
    code, _, err = train(capsys, str(spec), "--out", str(tmp_path / "run"))
    assert code == 1, err
    assert message in err
    if where:
        assert f"{tmp_path / 'spec.yaml'}:{where.split(':', 1)[1]}" in err
    assert "Traceback" not in err and "internal error" not in err
