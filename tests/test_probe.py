"""`dlc lint --probe` (runtime/probe.py) and `training: {log_gradients: true}`.

The probe's numbers are checked against torch's own modules computed by hand on the same
batch; the course's vanishing gradient is checked on the three deep MLPs of
tests/probe_cases/ (flagged at the right line and column for sigmoid, not for ReLU + He
nor residual); dead-ReLU and saturation detection on constructed cases; the PNG decoded;
log_gradients against the probe (a full-batch epoch is one step at the init weights) and
its cost when off (nothing runs)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, SPECS
from dlc.compiler.errors import DataError
from dlc.compiler.ir import Node
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.passes import prune
from dlc.compiler.pipeline import check_file, check_text
from dlc.runtime.cli import main
from dlc.runtime.probe import DEAD, SATURATED, VANISHING, plot_gradients, probe
from dlc.runtime.probe_run import output_stats
from dlc.runtime.train import loop
from dlc.runtime.train.data import load_source
from dlc.runtime.train.loop import epoch_order

CASES = ROOT / "tests" / "probe_cases"

IRIS = """\
dlc: 1
name: iris_probe
inputs: {x: [B, 4]}
model:
  - dense(6) -> tanh
  - dense(5) -> relu
  - dense(3)
training:
  loss: cross_entropy
  optimizer: sgd(lr=0.1)
  init: he_normal
  epochs: 2
  batch_size: 16
  seed: 3
  checkpoint_every: 0
  data: {train: "builtin:iris"}
"""


def by_name(report):  # noqa: ANN001, ANN201
    return {r.node: r for r in report.rows}


# ------------------------------------------------------------------ against torch by hand


def test_gradient_norms_and_stats_equal_torch_by_hand() -> None:
    checked = check_text(IRIS, "iris.yaml")
    report = probe(checked)
    # the batch dlc train's first step takes: epoch 1's order, the spec's batch and seed
    ds = load_source("builtin:iris", base_dir=Path("."))
    idx = epoch_order(len(ds), 3, 1)[:16]
    x = torch.from_numpy(ds.arrays["x"]).float()[idx]
    y = torch.from_numpy(ds.arrays["y"]).long()[idx]
    w = {k: torch.from_numpy(v) for k, v in initial_weights(checked.graph, 3).items()}
    layers = [torch.nn.Linear(4, 6), torch.nn.Linear(6, 5), torch.nn.Linear(5, 3)]
    for layer, name in zip(layers, ("dense", "dense_1", "dense_2"), strict=True):
        layer.load_state_dict({"weight": w[f"{name}.weight"], "bias": w[f"{name}.bias"]})
    h1 = torch.tanh(layers[0](x))
    h2 = torch.relu(layers[1](h1))
    F.cross_entropy(layers[2](h2), y).backward()
    h1, h2 = h1.detach(), h2.detach()
    rows = by_name(report)
    assert report.batch == 16 and not report.random_inputs
    for layer, name in zip(layers, ("dense", "dense_1", "dense_2"), strict=True):
        want = math.sqrt(float(layer.weight.grad.double().square().sum()
                               + layer.bias.grad.double().square().sum()))  # fmt: skip
        assert rows[name].grad_norm == pytest.approx(want, rel=1e-5), name
        assert rows[name].params == layer.weight.numel() + layer.bias.numel()
    assert rows["tanh"].mean == pytest.approx(float(h1.mean()), rel=1e-5)
    assert rows["tanh"].std == pytest.approx(float(h1.std(unbiased=False)), rel=1e-5)
    assert rows["tanh"].saturated == pytest.approx(float((h1.abs() >= 0.99).float().mean()))
    assert rows["relu"].zero == pytest.approx(float((h2 == 0).float().mean()))
    assert rows["relu"].dead == pytest.approx(float((h2 == 0).all(0).float().mean()))
    assert rows["relu"].shape == (16, 5) and rows["tanh"].grad_norm is None
    # rows in graph order, one per node
    assert [r.node for r in report.rows] == [n.name for n in prune(checked.graph).nodes]


def test_without_training_data_random_inputs_and_a_sum_of_squares() -> None:
    text = IRIS.split("training:")[0]
    checked = check_text(text, "plain.yaml")
    report = probe(checked, batch_size=8)
    assert report.random_inputs and "random inputs" in report.source
    assert "no training section" in report.source and report.loss.startswith("sum of squares")
    from dlc.runtime.compile import sample_inputs

    x = torch.from_numpy(sample_inputs(checked, 8, np.random.default_rng(0))["x"])
    module_w = {k: torch.from_numpy(v) for k, v in initial_weights(checked.graph, 0).items()}
    params = {k: v.clone().requires_grad_() for k, v in module_w.items()}
    h = torch.relu(torch.tanh(x @ params["dense.weight"].T + params["dense.bias"])
                   @ params["dense_1.weight"].T + params["dense_1.bias"])  # fmt: skip
    out = h @ params["dense_2.weight"].T + params["dense_2.bias"]
    out.double().square().sum().backward()
    want = math.sqrt(sum(float(params[f"dense_2.{p}"].grad.double().square().sum())
                         for p in ("weight", "bias")))  # fmt: skip
    assert by_name(report)["dense_2"].grad_norm == pytest.approx(want, rel=1e-5)
    assert json.loads(json.dumps(report.to_json()))["random_inputs"] is True


# ------------------------------------------------------------ the course's three networks


def first_line(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def test_sigmoid_stack_vanishes_and_is_flagged_at_its_first_layers() -> None:
    path = CASES / "sigmoid_deep.yaml"
    report = probe(check_file(path))
    vanishing = [f for f in report.findings if f.rule == "DLC201"]
    assert vanishing, report.table()
    first = vanishing[0]
    assert first.node == "dense"
    assert (first.loc.line, first.loc.col) == (first_line(path, "- dense(64)"), 5)
    rendered = first.render()
    assert rendered.startswith(f"{path}:{first.loc.line}:5: warning: vanishing gradient")
    assert "[DLC201]" in rendered and "hint: use relu" in rendered
    # the numbers: the first layer's gradient ~1e-6 of the last's
    rows = by_name(report)
    assert rows["dense"].grad_norm < 1e-5 * rows["dense_10"].grad_norm
    # every flagged layer is below the threshold, every other one above it
    largest = report.largest
    for r in report.rows:
        if r.grad_norm is not None:
            assert ("DLC201" in r.rules) == (r.grad_norm < VANISHING * largest), r.node
    (row,) = [line for line in report.table().splitlines() if line.startswith("dense ")]
    assert row.endswith("DLC201")


@pytest.mark.parametrize("case", ["relu_he_deep", "residual_sigmoid_deep"])
def test_relu_he_and_residual_stacks_do_not_vanish(case: str) -> None:
    report = probe(check_file(CASES / f"{case}.yaml"))
    assert not [f for f in report.findings if f.rule == "DLC201"], report.table()
    norms = [r.grad_norm for r in report.rows if r.grad_norm is not None]
    assert len(norms) == 11 and min(norms) > 1e-2 * max(norms)


# ------------------------------------------------------------------ constructed cases


def test_output_stats_on_constructed_outputs() -> None:
    relu = Node("r", "relu", ("x",))
    y = torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]])
    stats = output_stats(relu, y)
    assert stats["zero"] == pytest.approx(9 / 12)
    assert stats["dead"] == pytest.approx(2 / 4)  # columns 0 and 3: 0 for every example
    assert "saturated" not in stats and stats["shape"] == (3, 4)
    sig = Node("s", "sigmoid", ("x",))
    stats = output_stats(sig, torch.tensor([[0.005, 0.5], [0.9905, 0.2], [0.011, 0.98]]))
    assert stats["saturated"] == pytest.approx(2 / 6) and "dead" not in stats
    tanh = Node("t", "tanh", ("x",))
    assert output_stats(tanh, torch.tensor([[-0.995, 0.0, 0.989, 0.999]]))["saturated"] == 0.5


DEAD_RELU = """\
dlc: 1
name: dead
inputs: {x: [B, 16]}
model:
  - dense(32, bias_init=constant(-30)) -> relu
  - dense(32) -> relu
  - dense(2)
"""

SATURATING = """\
dlc: 1
name: saturating
inputs: {x: [B, 32]}
model:
  - dense(16, init=normal(0, 10)) -> sigmoid
  - dense(16, init=normal(0, 10)) -> tanh
  - dense(2)
"""


def test_dead_relus_are_flagged_at_the_relu() -> None:
    report = probe(check_text(DEAD_RELU, "dead.yaml"))
    rows = by_name(report)
    assert rows["relu"].dead == 1.0 and rows["relu"].zero == 1.0
    # relu_1 reads only zeros (dense_1's bias is 0): dead too, for the first one's sake
    assert rows["relu_1"].dead == 1.0 > DEAD
    finding, second = [f for f in report.findings if f.rule == "DLC203"]
    assert finding.node == "relu" and (finding.loc.line, finding.loc.col) == (5, 43)
    assert second.node == "relu_1" and (second.loc.line, second.loc.col) == (6, 18)
    assert "100% of the units of relu 'relu'" in finding.message
    # nothing reaches the first layer's weights through dead units
    assert rows["dense"].grad_norm == 0.0


def test_saturated_sigmoid_and_tanh_are_flagged() -> None:
    report = probe(check_text(SATURATING, "sat.yaml"))
    found = {f.node: f for f in report.findings if f.rule == "DLC202"}
    assert set(found) == {"sigmoid", "tanh"}, report.table()
    assert (found["sigmoid"].loc.line, found["sigmoid"].loc.col) == (5, 38)
    assert (found["tanh"].loc.line, found["tanh"].loc.col) == (6, 38)
    assert all(by_name(report)[n].saturated > SATURATED for n in found)
    data = report.to_json()
    assert {f["rule"] for f in data["findings"]} == {"DLC202"}
    assert data["findings"][0]["line"] == 5 and data["findings"][0]["col"] == 38


def test_table_and_png(tmp_path: Path) -> None:
    report = probe(check_file(CASES / "sigmoid_deep.yaml"), batch_size=32)
    table = report.table()
    assert table.splitlines()[0].startswith("probe sigmoid_deep: a batch of 32 from builtin:digits")
    for r in report.rows:
        assert any(line.startswith(r.node + " ") for line in table.splitlines()), r.node
    path = plot_gradients(report, tmp_path / "grads.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 400
    assert not list(tmp_path.glob(".*.tmp"))  # written whole, then renamed


# ------------------------------------------------------------------------ log_gradients


def train(tmp_path: Path, text: str, *args: str) -> Path:
    tmp_path.mkdir(exist_ok=True)
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    run = tmp_path / "run"
    assert main(["train", str(spec), "--out", str(run), "-q", *args]) == 0
    return run


def test_log_gradients_writes_each_layers_norm_and_a_panel(tmp_path: Path) -> None:
    full = IRIS.replace("batch_size: 16", "batch_size: full")
    run = train(tmp_path / "on", full, "--set", "training.log_gradients=true")
    off = train(tmp_path / "off", full)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for row in rows:
        assert list(row["grad_norms"]) == ["dense", "dense_1", "dense_2"]
        assert all(v > 0 and math.isfinite(v) for v in row["grad_norms"].values())
    # full batch: epoch 1 is one step at the init weights on all the data, the probe's batch
    report = probe(check_text(full, "iris.yaml"))
    for name, value in rows[0]["grad_norms"].items():
        assert value == pytest.approx(by_name(report)[name].grad_norm, rel=1e-4), name
    assert rows[1]["grad_norms"] != rows[0]["grad_norms"]
    # the report keeps it out of the metrics; curves.png gains one panel (4.5 in at 100 dpi)
    assert "grad_norms" not in json.loads((run / "report.json").read_text())["train"]
    width_on = matplotlib.image.imread(run / "curves.png").shape[1]
    width_off = matplotlib.image.imread(off / "curves.png").shape[1]
    assert width_on - width_off == 450
    assert "grad_norms" not in (off / "metrics.jsonl").read_text()


def test_log_gradients_off_runs_nothing(tmp_path: Path, monkeypatch) -> None:
    class Refuses:
        def __init__(self, *args: object) -> None:
            raise AssertionError("GradientLog built with log_gradients off")

    monkeypatch.setattr(loop, "GradientLog", Refuses)
    run = train(tmp_path, IRIS)
    assert "grad_norms" not in (run / "metrics.jsonl").read_text()


def test_log_gradients_mean_over_the_epochs_steps(tmp_path: Path, monkeypatch) -> None:
    """With several steps an epoch, each layer's value is the mean of its per-step norms:
    recorded here by wrapping the log's own record()."""
    from dlc.runtime.train.gradients import GradientLog

    per_step: list[dict[str, float]] = []
    record = GradientLog.record

    def spy(self: GradientLog) -> None:
        grads = {}
        for name in self.names:
            ps = [p for p, o in zip(self.params, self.owner.tolist(), strict=True)
                  if self.names[o] == name]  # fmt: skip
            grads[name] = math.sqrt(sum(float(p.grad.double().square().sum()) for p in ps))
        per_step.append(grads)
        record(self)

    monkeypatch.setattr(GradientLog, "record", spy)
    run = train(tmp_path, IRIS.replace("epochs: 2", "epochs: 1"),
                "--set", "training.log_gradients=true")  # fmt: skip
    (row,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(per_step) == row["step"] == math.ceil(150 / 16)
    for name, value in row["grad_norms"].items():
        want = sum(s[name] for s in per_step) / len(per_step)
        assert value == pytest.approx(want, rel=1e-6), name  # float32 norms


def test_gradient_log_means_skip_missing_and_non_finite_gradients() -> None:
    """A layer the loss did not reach (no .grad) in a step, or (under fp16 loss scaling,
    `guard`) a step whose norm is not finite, is left out of that layer's mean."""
    from dlc.compiler.lower.torch import to_torch
    from dlc.runtime.train.gradients import GradientLog

    graph = check_text(IRIS, "iris.yaml").graph
    model = to_torch(graph)
    params = dict(model.named_parameters())

    def step(log: GradientLog, scales: dict[str, float | None]) -> None:
        for name, p in params.items():
            scale = scales[name.split(".")[0]]
            p.grad = None if scale is None else torch.full_like(p, scale)
        log.record()

    def norm(layer: str, scale: float) -> float:  # every element of the layer = scale
        return abs(scale) * math.sqrt(sum(p.numel() for n, p in params.items()
                                          if n.startswith(layer + ".")))  # fmt: skip

    log = GradientLog(model, graph, torch.device("cpu"))
    assert log.names == ["dense", "dense_1", "dense_2"]
    step(log, {"dense": 1.0, "dense_1": 2.0, "dense_2": 3.0})
    step(log, {"dense": 3.0, "dense_1": None, "dense_2": None})
    step(log, {"dense": None, "dense_1": None, "dense_2": None})  # nothing reached: no step
    values = log.epoch_values()
    assert values["dense"] == pytest.approx((norm("dense", 1) + norm("dense", 3)) / 2)
    assert values["dense_1"] == pytest.approx(norm("dense_1", 2))
    assert values["dense_2"] == pytest.approx(norm("dense_2", 3))
    assert log.epoch_values() == {}  # a new epoch starts empty
    guarded = GradientLog(model, graph, torch.device("cpu"), guard=True)
    step(guarded, {"dense": math.inf, "dense_1": 1.0, "dense_2": 1.0})
    step(guarded, {"dense": 2.0, "dense_1": 3.0, "dense_2": 1.0})
    values = guarded.epoch_values()
    assert values["dense"] == pytest.approx(norm("dense", 2))
    assert values["dense_1"] == pytest.approx((norm("dense_1", 1) + norm("dense_1", 3)) / 2)


@pytest.mark.parametrize("spec", SPECS, ids=lambda p: p.stem)
def test_every_spec_probes(spec: Path) -> None:
    """Every example spec probes on a small batch of its data (random inputs without a
    training section): a row per node, a finite gradient norm for every node with weights."""
    checked = check_file(spec)
    data = checked.training.options.data.train if checked.training else None
    if data is not None and not data.startswith("builtin:"):
        if not (spec.parent / data).exists():  # MNIST's files: a located data error
            with pytest.raises(DataError) as e:
                probe(checked, batch_size=4)
            assert e.value.loc is not None and e.value.loc.line > 1
            return
    report = probe(checked, batch_size=4)
    assert [r.node for r in report.rows] == [n.name for n in prune(checked.graph).nodes]
    for row, node in zip(report.rows, prune(checked.graph).nodes, strict=True):
        if node.num_params:
            assert row.grad_norm is not None and math.isfinite(row.grad_norm), row.node
    assert json.loads(json.dumps(report.to_json()))["name"] == checked.graph.name


# --- `dlc lint --probe`, through the real CLI ------------------------------------------


def test_lint_probe_prints_the_table_and_the_findings_at_their_places(tmp_path: Path) -> None:
    from conftest import run_dlc

    png = tmp_path / "grads.png"
    result = run_dlc("lint", str(CASES / "sigmoid_deep.yaml"), "--probe", "-o", str(png))
    assert result.returncode == 0, result.stderr  # warnings only
    out = result.stdout
    assert out.index("probe sigmoid_deep") < out.index("[DLC201]")  # the table, then findings
    assert "sigmoid_deep.yaml:10:5: warning: vanishing gradient: the gradient of 'dense' " in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    relu = run_dlc("lint", str(CASES / "relu_he_deep.yaml"), "--probe", "--json")
    assert relu.returncode == 0, relu.stderr
    assert json.loads(relu.stdout)["probe"]["findings"] == []  # nothing for the probe to flag


def test_lint_probe_findings_are_silenced_like_the_static_lints(tmp_path: Path) -> None:
    from conftest import run_dlc

    text = (CASES / "sigmoid_deep.yaml").read_text()
    spec = tmp_path / "quiet.yaml"
    spec.write_text(text.replace("training:\n", "lint: {ignore: [DLC201]}\ntraining:\n"))
    result = run_dlc("lint", str(spec), "--probe", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [x["rule"] for x in report["lints"] if x["rule"].startswith("DLC2")] == []
    assert {f["rule"] for f in report["probe"]["findings"]} == {"DLC201"}  # found, silenced
    # one line's comment silences that line only
    quiet_line = "  - dense(64) -> sigmoid  # dlc: ignore DLC201\n"
    spec.write_text(text.replace("  - dense(64) -> sigmoid\n", quiet_line, 1))
    report = json.loads(run_dlc("lint", str(spec), "--probe", "--json").stdout)
    lines = [x["line"] for x in report["lints"] if x["rule"] == "DLC201"]
    assert lines == [11, 12, 13]


def test_lint_output_needs_the_probe(tmp_path: Path) -> None:
    from conftest import run_dlc

    result = run_dlc("lint", str(CASES / "relu_he_deep.yaml"), "-o", str(tmp_path / "g.png"))
    assert result.returncode == 1
    assert "-o writes the probe's gradient plot: add --probe" in result.stderr
    assert not (tmp_path / "g.png").exists()
