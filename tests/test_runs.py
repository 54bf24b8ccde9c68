"""`dlc runs`: real run folders (tiny specs trained for two epochs, in-process) listed with
their metrics and the hyperparameter that varies, sorted, as JSON; damaged folders listed
with their problem; `--compare`'s PNG and spec diff; the usage errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from conftest import ROOT
from dlc.runtime.cli import main

LIN = """\
dlc: 1
name: lin
params: {lr: 0.01}
inputs: {x: [B, 1]}
model: [dense(1)]
training:
  loss: mse
  optimizer: sgd(lr=lr)
  epochs: 2
  batch_size: 16
  checkpoint_every: 0
  data: {train: "builtin:linreg(n=200)", val_split: 0.2, test_split: 0.2}
"""


def dlc(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """runs/lin/slow (lr 0.01), runs/lin/fast (lr 0.2), runs/xor/a (another model)."""
    root = tmp_path_factory.mktemp("runs")
    spec = root.parent / "lin.yaml"
    spec.write_text(LIN)
    for name, lr in (("slow", "0.01"), ("fast", "0.2")):
        out = root / "runs" / "lin" / name
        assert main(["train", str(spec), "--out", str(out), "-q", "--set", f"lr={lr}"]) == 0
    xor = ["--set", "training.epochs=2", "--set", "training.checkpoint_every=0"]
    out = root / "runs" / "xor" / "a"
    assert main(["train", str(ROOT / "specs/xor.yaml"), "--out", str(out), "-q", *xor]) == 0
    return root / "runs"


def report(run: Path) -> dict:
    return json.loads((run / "report.json").read_text())


def test_lists_runs_with_their_metrics_and_what_varies(
    runs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = dlc(capsys, "runs", str(runs))
    assert code == 0
    lines = out.splitlines()
    header = lines[1].split()
    for col in ("run", "spec", "status", "epochs", "train_loss", "val_loss", "test_loss",
                "val_r2", "train_accuracy", "hyperparameters"):  # fmt: skip
        assert col in header, col
    slow = next(line for line in lines if line.startswith("lin/slow"))
    assert "finished" in slow and "lr=0.01" in slow
    test_loss = report(runs / "lin/slow")["test"]["loss"]
    assert f"{test_loss:.4g}" in slow
    assert "lr=0.2" in next(line for line in lines if line.startswith("lin/fast"))
    xor = next(line for line in lines if line.startswith("xor/a"))
    assert "init=lecun_normal" in xor  # a spec listed once: its params
    assert lines[-1] == "3 runs"


def test_json_and_sort(runs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = dlc(capsys, "runs", str(runs), "--json")
    assert code == 0
    listed = {r["path"]: r for r in json.loads(out)}
    assert set(listed) == {"lin/slow", "lin/fast", "xor/a"}
    slow = listed["lin/slow"]
    assert slow["status"] == "finished" and slow["epochs"] == 2 and slow["spec"] == "lin"
    assert slow["metrics"]["val_loss"] == report(runs / "lin/slow")["val"]["loss"]
    assert slow["hyperparameters"]["lr"] == 0.01
    assert slow["hyperparameters"]["training.batch_size"] == 16
    assert slow["varies"] == ["lr"] and slow["overrides"] == ["lr=0.01"]
    by_loss = sorted(["lin/slow", "lin/fast"], key=lambda p: listed[p]["metrics"]["val_loss"])
    code, out, _ = dlc(capsys, "runs", str(runs), "--json", "--sort", "val_loss")
    # best (smallest) first; the xor run has no val_loss: last
    assert [r["path"] for r in json.loads(out)] == [*by_loss, "xor/a"]
    code, out, _ = dlc(capsys, "runs", str(runs), "--json", "--sort", "val_r2")
    assert [r["path"] for r in json.loads(out)] == [*by_loss, "xor/a"]  # larger first


def test_damaged_and_unfinished_runs_are_listed_with_their_problem(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    cut, bad, live, dead = (root / n for n in ("cut", "bad", "live", "dead"))
    for run in (cut, bad, live, dead):
        shutil.copytree(runs / "lin/slow", run)
    text = (cut / "metrics.jsonl").read_text()
    (cut / "metrics.jsonl").write_text(text[: len(text) - 9])  # a crash cut the last line
    (cut / "report.json").unlink()
    (bad / "run.json").write_text('{"spec": "x",\n  "started": }')
    (bad / "spec.yaml").write_text("name: [unclosed\n")
    gone = subprocess.Popen(["true"])  # its pid is a process that has ended
    gone.wait()
    for run, pid in ((live, os.getpid()), (dead, gone.pid), (cut, gone.pid)):
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "pid": pid}))
    (live / "report.json").unlink()
    (dead / "report.json").unlink()
    (dead / "metrics.jsonl").write_text("")
    code, out, _ = dlc(capsys, "runs", str(root), "--json")
    assert code == 0
    listed = {r["path"]: r for r in json.loads(out)}
    assert listed["cut"]["status"] == "killed" and listed["cut"]["epochs"] == 1
    assert listed["cut"]["problems"][0] == (
        "metrics.jsonl:2: not a metrics row (cut short?); the 1 rows before it are shown"
    )
    assert "val_loss" in listed["cut"]["metrics"]
    assert listed["bad"]["problems"][:2] == [
        "run.json:2:14: bad JSON: Expecting value",
        "spec.yaml:2:1: cannot read: expected ',' or ']', but got '<stream end>'",
    ]
    assert listed["bad"]["status"] == "finished"  # its report.json is sound
    assert listed["live"]["status"] == "running"
    assert listed["dead"]["status"] == "failed"
    assert listed["dead"]["problems"] == ["stopped before its first epoch"]
    code, out, _ = dlc(capsys, "runs", str(root))  # the table shows the problems too
    assert "not a metrics row" in out and "bad JSON" in out


def test_compare_plots_the_curves_and_diffs_the_specs(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = tmp_path / "cmp.png"
    a, b = runs / "lin/slow", runs / "lin/fast"
    code, out, _ = dlc(capsys, "runs", "--compare", str(a), str(b), "-o", str(png))
    assert code == 0, out
    pixels = matplotlib.image.imread(png)
    assert pixels.ndim == 3 and pixels.shape[1] >= 1500  # three panels a row
    assert pixels.std() > 0.05  # something is drawn
    table = out[out.index("hyperparameters that differ:") :].splitlines()
    assert table[1:3] == [f"  [1] {a}", f"  [2] {b}"]
    assert table[4].split() == ["lr", "0.01", "0.2"]
    assert "models differ" not in out
    png2 = tmp_path / "cmp2.png"
    code, out, _ = dlc(capsys, "runs", "--compare", str(a), str(runs / "xor/a"), "-o", str(png2))
    assert code == 0
    assert "the runs' models differ (lin, xor): their curves are compared all the same" in out
    assert "-name: lin" in out and "+name: xor" in out
    assert matplotlib.image.imread(png2).shape[2] in (3, 4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "{tmp}/nowhere"], "no such folder '{tmp}/nowhere'"),
        (["runs", "{tmp}/empty"], "no runs in '{tmp}/empty'"),
        (["runs", "{runs}", "--sort", "val_los"], "--sort: no run has a metric 'val_los' "
         "(did you mean 'val_loss'?)"),
        (["runs", "--compare", "{runs}/lin/slow"], "--compare takes two runs or more"),
        (["runs", "--compare", "{runs}/lin/slow", "{tmp}/empty"],
         "'{tmp}/empty' is not a run folder (no run.json, report.json, metrics.jsonl)"),
        (["runs", "--compare", "{runs}/lin/slow", "{tmp}/nope"], "no such run folder"),
        (["runs", "{runs}", "--compare", "{runs}/lin/slow", "{runs}/lin/fast"],
         "--compare takes the run folders themselves: no DIR, --json or --sort"),
    ],
)  # fmt: skip
def test_errors(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    (tmp_path / "empty").mkdir()
    fill = {"tmp": str(tmp_path), "runs": str(runs)}
    code, out, err = dlc(capsys, *(a.format(**fill) for a in args))
    assert code == 1 and out == ""
    assert message.format(**fill) in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------ tensorboard


def test_tensorboard_writes_each_epochs_scalars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    spec, run = tmp_path / "lin.yaml", tmp_path / "runs" / "tb"
    spec.write_text(LIN)
    code, _, err = dlc(capsys, "train", str(spec), "--out", str(run), "-q",
                       "--set", "training.tensorboard=true")  # fmt: skip
    assert code == 0, err
    events = EventAccumulator(str(run / "tb"))
    events.Reload()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for tag, key in (("train/loss", "loss"), ("val/loss", "val_loss"), ("val/r2", "val_r2"),
                     ("lr", "lr")):  # fmt: skip
        logged = events.Scalars(tag)
        assert [e.step for e in logged] == [1, 2]
        assert [e.value for e in logged] == pytest.approx([r[key] for r in rows], rel=1e-6)
    code, out, _ = dlc(capsys, "runs", str(tmp_path / "runs"), "--json")
    assert [r["path"] for r in json.loads(out)] == ["tb"]  # tb/ is part of the run


def test_tensorboard_without_the_package_warns_and_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    spec, run = tmp_path / "lin.yaml", tmp_path / "run"
    spec.write_text(LIN.replace("  epochs: 2\n", "  epochs: 2\n  tensorboard: true\n"))
    code, _, err = dlc(capsys, "train", str(spec), "--out", str(run), "-q")
    assert code == 0
    assert f"{spec}:10:3: warning: tensorboard: true, but the tensorboard package is not " \
        "installed" in err  # fmt: skip
    assert "hint: pip install tensorboard" in err
    assert (run / "report.json").exists() and not (run / "tb").exists()
