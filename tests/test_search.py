"""`dlc search`: the `search:` section's located errors, the pre-check of the space before
any trial, a real search's study folder and its best spec, and resume after SIGKILL (a
real subprocess). Trials are tiny: an MLP on the irises for a few epochs."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import ROOT
from dlc.compiler.pipeline import check_file
from dlc.compiler.search import with_args
from dlc.runtime.cli import main

IRIS = """\
dlc: 1
name: iris_search
params: {hidden: 8, p: 0.1}
inputs: {x: [B, 4]}
model:
  - standardize
  - dense(hidden) -> relu -> dropout(p)
  - dense(3)
outputs: {logits: y}
training:
  loss: cross_entropy
  optimizer: adam(lr=1e-2)
  epochs: EPOCHS
  batch_size: 32
  seed: 0
  checkpoint_every: 0
  data: {train: "builtin:iris", test_split: 0.2, val_split: 0.2}
search:
  space:
    params.hidden: int(4, 32, log=true)
    training.optimizer.lr: float(1e-3, 1e-1, log=true)
  metric: val_accuracy
  pruner: none
"""

# A residual whose body must keep the width 8 and attention heads that must divide it.
REGION = """\
dlc: 1
name: region
params: {width: 8, heads: 2}
inputs: {x: [B, 6, 8]}
model:
  - residual(dense(width) -> relu)
  - self_attention(heads)
  - mean(axis=1)
  - dense(3)
search:
  space:
    params.width: choice(8, 12)
    params.heads: choice(2, 3)
  sampler: grid
"""


def spec_file(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def search(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["search", *args])
    out, err = capsys.readouterr()
    return code, out, err


def iris(epochs: int = 1) -> str:
    return IRIS.replace("EPOCHS", str(epochs))


@pytest.mark.parametrize(
    ("old", "new", "message", "where"),
    [
        ("params.hidden: int", "params.hiden: int",
         "unknown path 'params.hiden' (did you mean 'params.hidden'?)", ":20:5:"),
        ("training.optimizer.lr: float", "training.optimizer.lrr: float",
         "unknown path 'training.optimizer.lrr' (did you mean 'training.optimizer.lr'?)",
         ":21:5:"),
        ("training.optimizer.lr: float", "training.epoch: float",
         "unknown path 'training.epoch' (did you mean 'training.epochs'?)", ":21:5:"),
        ("int(4, 32, log=true)", "int(4)", "int(LOW, HIGH) takes two bounds, got 1", ":20:20:"),
        ("int(4, 32, log=true)", "intt(4, 32)", "(did you mean 'int'?)", ":20:20:"),
        ("int(4, 32, log=true)", "int(32, 4)", "a range needs LOW < HIGH", ":20:20:"),
        ("int(4, 32, log=true)", "int(4, 32, lg=true)", "has no argument 'lg'", ":20:31:"),
        ("float(1e-3, 1e-1, log=true)", "float(0, 1e-1, log=true)",
         "a log=true range needs LOW > 0", ":21:34:"),
        ("int(4, 32, log=true)", "choice(relu, gelu)",
         "params.hidden is a number param (8), but the choice 'relu' is not", ":20:5:"),
        ("pruner: none", "pruner: none\n  sampler: tpee", "tpee", ":24:12:"),
    ],
)  # fmt: skip
def test_search_section_errors_are_located(tmp_path, capsys, old, new, message, where) -> None:
    assert old in IRIS
    spec = spec_file(tmp_path, iris().replace(old, new))
    code, out, err = search(capsys, str(spec), "--out", str(tmp_path / "s"))
    assert code == 1, err
    assert message in err and f"{spec}{where}" in err, err
    assert not (tmp_path / "s").exists()  # nothing ran


def test_the_section_leaves_check_and_train_alone(tmp_path) -> None:
    assert check_file(spec_file(tmp_path, iris())).graph.name == "iris_search"


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("adam(lr=1e-3)", {"lr": 0.01}, "adam(lr=0.01)"),
        ("adam", {"lr": 0.01}, "adam(lr=0.01)"),
        ("sgd(0.1, momentum=0.9)", {"lr": 0.5, "momentum": 0.8}, "sgd(0.5, momentum=0.8)"),
        ("adam(lr=1e-3)", {"weight_decay": 0.1}, "adam(lr=1e-3, weight_decay=0.1)"),
        ("adam()", {"lr": 2}, "adam(lr=2)"),
    ],
)
def test_with_args_rewrites_the_optimizer_call(text, args, expected) -> None:
    assert with_args(text, args) == expected


def test_precheck_reports_each_failing_region_before_any_trial(tmp_path, capsys) -> None:
    spec = spec_file(tmp_path, REGION)
    out_dir = tmp_path / "s"
    code, out, err = search(capsys, str(spec), "--trials", "4", "--out", str(out_dir))
    # a located error per region, once, with the values that made it fail
    assert err.count("residual adds") == 1 and err.count("not a multiple of 3") == 1, err
    assert f"{spec}:6:5: error: with params.width=12, any params.heads: residual adds" in err
    assert f"{spec}:7:5: error: with params.width=8, params.heads=3: self_attention" in err
    assert "pre-check: 1 of 4 points check, 2 failing region(s) skipped" in out
    assert out.index("pre-check") < out.index("trial ")
    # the grid's 4 points: only width 8 with 2 heads trained; the others were not
    study = optuna.load_study(study_name="region", storage=f"sqlite:///{out_dir}/study.db")
    states = {(t.params["params.width"], t.params["params.heads"]): t.state.name
              for t in study.trials}  # fmt: skip
    assert states == {(8, 2): "FAIL", (8, 3): "PRUNED", (12, 2): "PRUNED", (12, 3): "PRUNED"}
    assert sorted(p.name for p in (out_dir / "trials").iterdir()) == [
        f"{t.number:03d}" for t in study.trials if t.params["params.width"] == 8
        and t.params["params.heads"] == 2
    ]  # fmt: skip
    assert code == 1  # REGION has no training data: the one valid trial fails, no best


def test_a_space_that_fails_everywhere_stops_before_any_trial(tmp_path, capsys) -> None:
    spec = spec_file(tmp_path, REGION.replace("choice(8, 12)", "choice(12, 16)"))
    code, out, err = search(capsys, str(spec), "--out", str(tmp_path / "s"))
    assert code == 1 and "all 4 points checked fail: nothing to search" in err
    assert f"{spec}:6:5: error: with params.width=12, params.heads=2: residual adds" in err
    assert "(4 of 4 points checked fail here; also params.width=12, params.heads=3;" in err
    assert not (tmp_path / "s" / "study.db").exists()


def test_a_search_writes_its_folder_and_best_yaml_reproduces(tmp_path, capsys) -> None:
    spec = spec_file(tmp_path, iris(epochs=2))
    out_dir = tmp_path / "s"
    code, out, err = search(capsys, str(spec), "--trials", "3", "--out", str(out_dir))
    assert code == 0, err
    for name in ("results.csv", "results.md", "history.png", "importance.png", "best.yaml"):
        assert (out_dir / name).stat().st_size > 0, name
    rows = list(csv.DictReader((out_dir / "results.csv").open()))
    assert [r["state"] for r in rows] == ["complete"] * 3
    assert all((out_dir / "trials" / f"{int(r['trial']):03d}" / "model.onnx").exists()
               for r in rows)  # fmt: skip
    best = max(rows, key=lambda r: float(r["val_accuracy"]))
    assert f"| **{best['trial']}** (best)" in (out_dir / "results.md").read_text()
    # best.yaml: a plain spec (no search section) with the best trial's values
    best_spec = out_dir / "best.yaml"
    checked = check_file(best_spec)
    assert "search" not in checked.spec.document.data
    params = {p.name: p.value for p in checked.spec.params}
    assert params["hidden"] == int(best["params.hidden"])
    assert checked.training is not None
    lr = float(checked.training.optimizer.kwargs()["lr"])
    assert lr == float(best["training.optimizer.lr"])
    # ... which `dlc train` trains to the trial's validation accuracy
    assert main(["train", str(best_spec), "--out", str(tmp_path / "again"), "-q"]) == 0
    out, _ = capsys.readouterr()
    assert f"accuracy {float(best['val_accuracy']):.4g}" in out.split("val:")[1], out


def test_a_killed_search_resumes_from_its_storage(tmp_path) -> None:
    spec = spec_file(tmp_path, iris(epochs=20))
    out_dir = tmp_path / "s"
    storage = f"sqlite:///{out_dir}/study.db"
    argv = [sys.executable, "-m", "dlc.runtime.cli", "search", str(spec), "--trials", "3",
            "--out", str(out_dir)]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 90
        first: list[optuna.trial.FrozenTrial] = []
        while time.monotonic() < deadline and not first:
            time.sleep(0.2)
            if (out_dir / "trials" / "001").exists():
                study = optuna.load_study(study_name="iris_search", storage=storage)
                first = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        assert first, "the first trial did not complete"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
    study = optuna.load_study(study_name="iris_search", storage=storage)
    assert len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) < 3, "killed early"
    report = out_dir / "trials" / "000" / "report.json"
    mtime = report.stat().st_mtime_ns
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "resuming: 1 trials done, 1 killed ones re-run" in again.stdout
    study = optuna.load_study(study_name="iris_search", storage=storage)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 3
    assert (complete[0].number, complete[0].value) == (first[0].number, first[0].value)
    assert report.stat().st_mtime_ns == mtime  # the completed trial was not trained again
    assert all(t.params != first[0].params for t in complete[1:])  # new draws, not replays
    assert len(list(csv.DictReader((out_dir / "results.csv").open()))) == 3


SEARCH = """search:
  trials: 1
  metric: val_loss
  space:
    training.epochs: int(1, 2)
"""


def test_a_spec_with_several_networks_is_refused_located(tmp_path, capsys) -> None:
    text = (ROOT / "specs" / "moons_gan.yaml").read_text() + SEARCH
    spec = spec_file(tmp_path, text)
    line = text.splitlines().index("networks:") + 1
    code, out, err = search(capsys, str(spec), "--out", str(tmp_path / "s"))
    assert code == 1
    assert f"{spec}:{line}:1: error: dlc search trains one network: a spec with several" in err
    assert not (tmp_path / "s").exists()


def test_a_diffusion_spec_trains_its_trials_with_the_diffusion_objective(tmp_path, capsys) -> None:
    text = (ROOT / "specs" / "diffusion_moons.yaml").read_text() + SEARCH
    spec = spec_file(tmp_path, text.replace("n=8000", "n=300").replace("hidden: 256", "hidden: 16"))
    code, out, err = search(capsys, str(spec), "--out", str(tmp_path / "s"), "--trials", "1")
    assert code == 0, err
    assert "trial   0 complete val_loss" in out
