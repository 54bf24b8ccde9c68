"""`dlc runs`: the run folders of `dlc train` under a folder, as one table.

A run folder is any folder holding run.json, report.json or metrics.jsonl (what
runtime/train/runs.py writes); the search does not descend into one. Each run is read
without torch, and whatever is wrong with it (a truncated metrics.jsonl, bad JSON, a spec
that no longer parses) becomes its `problem`, shown in the table: listing never fails on a
run.

A run's status, from its files:

- report.json present: the trainer finished it and says how: `finished`, `stopped early`,
  `interrupted` (Ctrl-C; resumable), or `failed` (a non-finite loss stopped it);
- no report.json, and the process of run.json's `pid` is alive and a Python/dlc
  process: `running`;
- no report.json and no live process: `killed` when an epoch was logged (SIGKILL, out of
  memory, a power cut; resumable from last.pt), `failed` when none was (it died in its
  setup, e.g. on its data).

Hyperparameters are the resolved spec's params and training options (spec.yaml with
run.json's `--set` overrides applied), flattened to the names `--set` takes. The table
shows the ones that vary among runs of the same spec (a spec with one run: its params);
`--json` gives them all.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.errors import UsageError, did_you_mean

MARKERS = ("run.json", "report.json", "metrics.jsonl")
# a metrics row's keys that are not a metric
BOOKKEEPING = ("epoch", "step", "time", "lr", "grad_norms")
# metrics where smaller is better; every other one (accuracy, r2) is better larger
SMALLER_BETTER = ("loss", "mse", "mae", "rmse", "error", "perplexity")


@dataclass
class Run:
    """One run folder as `dlc runs` reads it."""

    path: Path
    name: str  # the path relative to the listed folder
    spec: str | None = None
    started: str | None = None
    status: str = "failed"
    epochs: int = 0
    metrics: dict[str, float] = field(default_factory=dict)  # train_loss, val_accuracy, ...
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # metrics.jsonl
    resolved: dict[str, Any] | None = None  # spec.yaml with the overrides applied
    overrides: list[str] = field(default_factory=list)

    def to_json(self, varies: list[str]) -> dict[str, Any]:
        return {
            "path": self.name,
            "spec": self.spec,
            "started": self.started,
            "status": self.status,
            "epochs": self.epochs,
            "metrics": self.metrics,
            "hyperparameters": self.hyperparameters,
            "varies": varies,
            "overrides": self.overrides,
            "problems": self.problems,
        }


def find_runs(root: str | Path) -> list[Path]:
    """The run folders under `root` (itself included), in path order."""
    root = Path(root)
    if not root.exists():
        raise UsageError(f"no such folder '{root}'", hint="dlc runs lists the run folders "
                         "that dlc train writes (default: runs/)")  # fmt: skip
    if not root.is_dir():
        raise UsageError(f"'{root}' is a file, not a folder of runs")
    found = []
    for folder, dirs, files in os.walk(root):
        if any(m in files for m in MARKERS):
            found.append(Path(folder))
            dirs.clear()  # a run's own subfolders (tb/) hold no runs
        dirs.sort()
    return sorted(found)


def read_run(path: Path, root: Path | None = None) -> Run:
    """Everything `dlc runs` shows of one run folder; never raises on a damaged one."""
    name = str(path.relative_to(root)) if root is not None and path != root else str(path)
    run = Run(path=path, name=name)
    info = _json_file(run, "run.json", required=True)
    report = _json_file(run, "report.json", required=False)
    run.rows = _metric_rows(run)
    run.started = info.get("started") if isinstance(info.get("started"), str) else None
    overrides = info.get("overrides", [])
    run.overrides = [str(o) for o in overrides] if isinstance(overrides, list) else []
    run.resolved = _resolved_spec(run)
    if run.resolved is not None:
        run.hyperparameters = hyperparameters(run.resolved)
        if isinstance(run.resolved.get("name"), str):
            run.spec = run.resolved["name"]
    _status(run, info, report)
    return run


def _json_file(run: Run, file: str, *, required: bool) -> dict[str, Any]:
    path = run.path / file
    if not path.exists():
        if required:
            run.problems.append(f"no {file}")
        return {}
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as e:
        run.problems.append(f"cannot read {file}: {e}")
        return {}
    except json.JSONDecodeError as e:
        run.problems.append(f"{file}:{e.lineno}:{e.colno}: bad JSON: {e.msg}")
        return {}
    if not isinstance(value, dict):
        run.problems.append(f"{file}: not a JSON object")
        return {}
    return value


def _metric_rows(run: Run) -> list[dict[str, Any]]:
    """metrics.jsonl's rows up to the first bad line (a crash cuts the last one)."""
    path = run.path / "metrics.jsonl"
    if not path.exists():
        return []
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        run.problems.append(f"cannot read metrics.jsonl: {e}")
        return []
    rows: list[dict[str, Any]] = []
    for i, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            row = None
        if not isinstance(row, dict) or not isinstance(row.get("epoch"), int):
            kept = f"; the {len(rows)} rows before it are shown" if rows else ""
            run.problems.append(f"metrics.jsonl:{i}: not a metrics row (cut short?){kept}")
            break
        rows.append(row)
    return rows


def _resolved_spec(run: Run) -> dict[str, Any] | None:
    """spec.yaml as a mapping, with run.json's `--set` overrides written into it."""
    import yaml

    from ..compiler.overrides import parse_override

    path = run.path / "spec.yaml"
    if not path.exists():
        run.problems.append("no spec.yaml")
        return None
    try:
        doc = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        where = getattr(e, "problem_mark", None)
        at = f":{where.line + 1}:{where.column + 1}" if where is not None else ""
        run.problems.append(f"spec.yaml{at}: cannot read: {getattr(e, 'problem', None) or e}")
        return None
    if not isinstance(doc, dict):
        run.problems.append("spec.yaml: not a mapping")
        return None
    for text in run.overrides:
        try:
            key, value, _ = parse_override(text)
        except UsageError as e:
            run.problems.append(f"run.json: override {text!r}: {e.message}")
            continue
        section, _, rest = key.partition(".")
        if section == "training" and rest:
            training = doc.setdefault("training", {})
            if isinstance(training, dict):
                training[rest] = value
        else:
            params = doc.setdefault("params", {})
            if isinstance(params, dict):
                params[key] = value
    return doc


def hyperparameters(doc: dict[str, Any]) -> dict[str, Any]:
    """The params (by name) and training options (`training.KEY`, mappings flattened
    with dots) of a resolved spec, as `--set` names them."""
    out: dict[str, Any] = {}
    params = doc.get("params")
    if isinstance(params, dict):
        out.update({str(k): v for k, v in params.items()})
    training = doc.get("training")
    if isinstance(training, dict):
        _flatten(training, "training", out)
    return out


def _flatten(value: dict[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in value.items():
        if isinstance(v, dict):
            _flatten(v, f"{prefix}.{k}", out)
        else:
            out[f"{prefix}.{k}"] = v


def _status(run: Run, info: dict[str, Any], report: dict[str, Any]) -> None:
    last = run.rows[-1] if run.rows else {}
    run.epochs = last.get("epoch", 0)
    if report:
        status = str(report.get("status", "?"))
        if isinstance(report.get("spec"), str):
            run.spec = report["spec"]
        if isinstance(report.get("epochs"), int):
            run.epochs = report["epochs"]
        if status.startswith("stopped:"):  # "stopped: non-finite loss"
            run.problems.append(status.removeprefix("stopped:").strip())
            status = "failed"
        run.status = status
        for split in ("train", "val", "test"):
            values = report.get(split)
            if isinstance(values, dict):
                run.metrics.update(
                    {
                        f"{split}_{k}": v
                        for k, v in values.items()
                        if k not in BOOKKEEPING and isinstance(v, int | float)
                    }  # fmt: skip
                )
        return
    for k, v in last.items():
        if k not in BOOKKEEPING and isinstance(v, int | float):
            run.metrics[k if k.startswith("val_") else f"train_{k}"] = v
    if _alive(info.get("pid")):
        run.status = "running"
    elif run.rows:
        run.status = "killed"
        if (run.path / "last.pt").exists():
            run.problems.append(f"no report; resume: dlc train --resume {run.path}")
        else:
            run.problems.append("no report")
    elif info:
        run.status = "failed"
        run.problems.append("stopped before its first epoch")
    else:
        run.status = "?"


def _alive(pid: Any) -> bool:
    """Whether `pid` is a live Python (or dlc) process: a pid reused by another program
    does not count. Where /proc is missing, a live pid is enough."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, another user's
    except OSError:
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        text = cmdline.read_bytes().decode(errors="replace")
    except OSError:
        return not Path("/proc").is_dir()
    return "python" in text or "dlc" in text


# ---------------------------------------------------------------- the table


def varying(runs: list[Run]) -> dict[str, list[str]]:
    """Per run name: the hyperparameters that differ among the runs of its spec (a spec
    listed once: its params)."""
    groups: dict[str | None, list[Run]] = {}
    for r in runs:
        groups.setdefault(r.spec, []).append(r)
    out: dict[str, list[str]] = {}
    for group in groups.values():
        keys = list(dict.fromkeys(k for r in group for k in r.hyperparameters))
        if len(group) > 1:
            missing = object()
            keys = [k for k in keys
                    if len({json.dumps(r.hyperparameters.get(k, missing), default=str)
                            for r in group}) > 1]  # fmt: skip
        else:
            keys = [k for k in keys if not k.startswith("training.")]
        for r in group:
            out[r.name] = keys
    return out


def metric_names(runs: list[Run]) -> list[str]:
    """The table's metric columns: train loss, then each val and test metric, loss first;
    the training metrics too when a run has no validation split (they are all it has)."""
    names = {k for r in runs for k in r.metrics}
    shown = ["train_loss"] if "train_loss" in names else []
    unvalidated = {k for r in runs if not any(m.startswith("val_") for m in r.metrics)
                   for k in r.metrics if k.startswith("train_") and k != "train_loss"}  # fmt: skip
    shown += sorted(unvalidated)
    for split in ("val", "test"):
        mine = sorted(k for k in names if k.startswith(f"{split}_"))
        mine.sort(key=lambda k: k != f"{split}_loss")
        shown += mine
    # an mse metric that is the loss (loss: mse) in every run is a column said twice
    return [k for k in shown if not (k.endswith("_mse") and _same(runs, k, k[:-3] + "loss"))]


def _same(runs: list[Run], a: str, b: str) -> bool:
    return all(
        isinstance(r.metrics.get(b), int | float)
        and math.isclose(r.metrics[a], r.metrics[b], rel_tol=1e-5, abs_tol=1e-12)
        for r in runs
        if a in r.metrics
    )


def sort_runs(runs: list[Run], metric: str) -> list[Run]:
    """Best first by `metric` (smaller first for losses and errors, larger for accuracy
    and r2); runs without it last."""
    names = sorted({k for r in runs for k in r.metrics})
    key = metric if metric in names or metric.startswith(("train_", "val_", "test_")) else None
    if key is None and f"train_{metric}" in names:
        key = f"train_{metric}"  # `--sort loss` is the training loss, as in metrics.jsonl
    if key is None or key not in names:
        raise UsageError(
            f"--sort: no run has a metric '{metric}'{did_you_mean(metric, names)}",
            hint=f"metrics of these runs: {', '.join(names) or 'none'}",
        )
    smaller = any(key.endswith(s) for s in SMALLER_BETTER)
    have = [r for r in runs if key in r.metrics]
    have.sort(key=lambda r: r.metrics[key] if smaller else -r.metrics[key])
    return have + [r for r in runs if key not in r.metrics]


def runs_table(runs: list[Run]) -> str:
    metrics = metric_names(runs)
    varies = varying(runs)
    header = ("run", "spec", "started", "status", "epochs", *metrics, "hyperparameters", "problem")
    body = [
        (
            r.name,
            r.spec or "?",
            r.started or "?",
            r.status,
            str(r.epochs),
            *(_fmt(r.metrics.get(m)) for m in metrics),
            " ".join(f"{k}={_fmt(r.hyperparameters.get(k))}" for k in varies[r.name]),
            "; ".join(r.problems),
        )
        for r in runs
    ]
    if not any(r.problems for r in runs):  # no column of blanks
        header, body = header[:-1], [row[:-1] for row in body]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    numeric = range(4, 5 + len(metrics))

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in numeric else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        return "  ".join(cells).rstrip()

    rule = "-" * len(line(header))
    n = len(runs)
    return "\n".join([rule, line(header), rule, *map(line, body), rule,
                      f"{n} run{'s' if n != 1 else ''}"])  # fmt: skip


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list | dict):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def runs_command(folder: str, *, as_json: bool, sort: str | None) -> str:
    """The text `dlc runs FOLDER` prints."""
    root = Path(folder)
    paths = find_runs(root)
    if not paths:
        raise UsageError(f"no runs in '{root}'", hint="a run folder is what dlc train writes "
                         "(run.json, metrics.jsonl, report.json)")  # fmt: skip
    runs = [read_run(p, root) for p in paths]
    if sort:
        runs = sort_runs(runs, sort)
    if as_json:
        varies = varying(runs)
        return json.dumps([r.to_json(varies[r.name]) for r in runs], indent=2, default=str)
    return runs_table(runs)
