"""What a search leaves in its folder besides the trials' runs: results.csv and
results.md (one row per trial), history.png and importance.png (Optuna's matplotlib
plots), and best.yaml, the spec with the best trial's values and no `search:` section,
which `dlc train best.yaml` trains as that trial did."""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from ...compiler.search import SearchSpec, show
from ..files import atomic_write
from .study import KILLED


def trial_rows(study: optuna.Study, search: SearchSpec) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(KILLED):
            continue
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name.lower()}
        for d in search.dims:
            v = t.params.get(d.path)
            row[d.path] = show(v) if v is not None else ""
        row[search.metric] = "" if t.value is None else f"{t.value:.6g}"
        row["epochs"] = t.user_attrs.get("epochs", 0)
        row["seconds"] = t.user_attrs.get("seconds", "")
        row["note"] = t.user_attrs.get("error") or t.user_attrs.get("run", "")
        rows.append(row)
    return rows


def write_tables(rows: list[dict[str, Any]], out: Path, best: int | None) -> None:
    if not rows:
        return
    keys = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, keys, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write(out / "results.csv", buf.getvalue())
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        cells = [str(r[k]).replace("|", "\\|") for k in keys]
        if r["trial"] == best:
            cells[0] = f"**{cells[0]}** (best)"
        lines.append("| " + " | ".join(cells) + " |")
    atomic_write(out / "results.md", "\n".join(lines) + "\n")


def write_plots(study: optuna.Study, search: SearchSpec, out: Path) -> list[str]:
    """history.png and importance.png; what could not be drawn, as notes."""
    import matplotlib

    matplotlib.use("Agg")
    from optuna.visualization import matplotlib as ovm

    notes: list[str] = []
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if complete:
            ax = ovm.plot_optimization_history(study, target_name=search.metric)
            _save(ax.figure, out / "history.png", (8, 5))
        else:
            notes.append("no trial completed: no history.png")
        if len(complete) < 2 or len(search.dims) < 2:
            notes.append("importance.png needs 2 completed trials and 2 parameters")
            return notes
        try:
            ax = ovm.plot_param_importances(study, target_name=search.metric)
        except (ValueError, RuntimeError, ZeroDivisionError) as e:
            notes.append(f"no importance.png: {e}")
            return notes
        _save(ax.figure, out / "importance.png", (8, 4))
    return notes


def _save(figure: Any, path: Path, size: tuple[int, int]) -> None:
    import matplotlib.pyplot as plt

    figure.set_size_inches(*size)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def best_spec_text(spec_text: str, overrides: list[str], header: str) -> str:
    """The spec with the best point's values and no `search:` section, as YAML text."""
    data = yaml.safe_load(spec_text)
    data.pop("search", None)
    for o in overrides:
        name, _, raw = o.partition("=")
        # the value as the trial's `--set` gave it (a float shown to 6 digits), so the
        # spec trains exactly as the trial did
        value = yaml.safe_load(raw) if not name.startswith("training.optimizer") else raw
        if name.startswith("training."):
            data["training"][name.removeprefix("training.")] = value
        else:
            old = data.setdefault("params", {}).get(name)
            data["params"][name] = str(value) if isinstance(old, str) else value
    body = yaml.safe_dump(data, sort_keys=False, width=100, allow_unicode=True)
    return header + body
