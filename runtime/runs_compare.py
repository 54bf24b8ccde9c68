"""`dlc runs --compare A B ...`: the runs' curves overlaid in one PNG, and how their
resolved specs differ.

The curves are metrics.jsonl's per-epoch rows: one panel per metric (loss first), a colour
per run, train solid and val dashed. The diff is a table of the hyperparameters (params and
training options, `--set` names) whose values differ, and, when the runs' models differ
(model.ir, or the spec's other sections), a unified diff of the rest of each spec against
the first run's: runs of different models still compare on their curves.
"""

from __future__ import annotations

import difflib
import io
import json
from pathlib import Path
from typing import Any

from ..compiler.errors import UsageError
from .files import atomic_write
from .runs_cmd import BOOKKEEPING, MARKERS, Run, _fmt, read_run


def compare_command(paths: list[str], output: str) -> str:
    """Plot the runs' curves into `output` and return the text `dlc runs --compare` prints."""
    if len(paths) < 2:
        raise UsageError("--compare takes two runs or more", hint="dlc runs --compare A B")
    runs = []
    for p in paths:
        path = Path(p)
        if not path.is_dir():
            raise UsageError(f"no such run folder '{p}'")
        if not any((path / m).exists() for m in MARKERS):
            raise UsageError(f"'{p}' is not a run folder (no {', '.join(MARKERS)})",
                             hint="list the runs with: dlc runs DIR")  # fmt: skip
        runs.append(read_run(path))
    lines = [f"{r.name}: {r.spec or '?'}, {r.status}, {r.epochs} epochs"
             + (f" ({'; '.join(r.problems)})" if r.problems else "") for r in runs]  # fmt: skip
    plotted = plot_compare(runs, Path(output))
    lines += ["", *hyperparameter_diff(runs), *model_diff(runs)]
    lines.append(f"wrote {output}" if plotted else "no epochs to plot: no PNG written")
    return "\n".join(lines)


def hyperparameter_diff(runs: list[Run]) -> list[str]:
    """A table of the hyperparameters whose values differ between the runs."""
    keys = list(dict.fromkeys(k for r in runs for k in r.hyperparameters))
    missing = object()
    keys = [k for k in keys
            if len({json.dumps(r.hyperparameters.get(k, missing), default=str)
                    for r in runs}) > 1]  # fmt: skip
    if not keys:
        return ["hyperparameters: the same in every run"]
    header = ("hyperparameter", *(f"[{i + 1}]" for i in range(len(runs))))
    body = [(k, *(_fmt(r.hyperparameters[k]) if k in r.hyperparameters else "(none)"
                  for r in runs)) for k in keys]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    legend = [f"  [{i + 1}] {r.name}" for i, r in enumerate(runs)]
    table = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, *body)]  # fmt: skip
    return ["hyperparameters that differ:", *legend, *table]


def model_diff(runs: list[Run]) -> list[str]:
    """When the models differ: a note, and a unified diff of each run's spec (its
    sections other than params and training) against the first run's."""
    texts = [_model_text(r) for r in runs]
    if len(set(texts)) <= 1:
        return []
    specs = ", ".join(dict.fromkeys(r.spec or "?" for r in runs))
    out = ["", f"the runs' models differ ({specs}): their curves are compared all the same"]
    first = runs[0]
    for run, text in zip(runs[1:], texts[1:], strict=True):
        diff = difflib.unified_diff(
            texts[0].splitlines(), text.splitlines(),
            f"{first.name}/spec.yaml", f"{run.name}/spec.yaml", lineterm="", n=2,
        )  # fmt: skip
        out += list(diff)
    return out


def _model_text(run: Run) -> str:
    import yaml

    if run.resolved is None:
        return ""
    rest = {k: v for k, v in run.resolved.items() if k not in ("params", "training")}
    return str(yaml.safe_dump(rest, sort_keys=False, default_flow_style=None, width=100))


def plot_compare(runs: list[Run], path: Path) -> Path | None:
    """One panel per metric, each run's train (solid) and val (dashed) curve; None when
    no run has a row."""
    if not any(r.rows for r in runs):
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed; never opens a window
    import matplotlib.pyplot as plt

    metrics = _metrics(runs)
    cols = min(len(metrics), 3)
    nrows = -(-len(metrics) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows + 0.4 * len(runs)),
                             squeeze=False)  # fmt: skip
    flat = [ax for row in axes for ax in row]
    for ax in flat[len(metrics) :]:
        ax.set_visible(False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, m in zip(flat, metrics, strict=False):
        for i, run in enumerate(runs):
            colour = colours[i % len(colours)]
            epochs = [r["epoch"] for r in run.rows]
            for key, style, split in ((m, "-", "train"), (f"val_{m}", "--", "val")):
                ys = [r.get(key) for r in run.rows]
                if any(isinstance(y, int | float) for y in ys):
                    ax.plot(epochs, [y if isinstance(y, int | float) else float("nan")
                                     for y in ys],
                            style, color=colour, label=f"[{i + 1}] {split}")  # fmt: skip
        ax.set_xlabel("epoch")
        ax.set_title(m)
        if m == "loss" and all(_positive(r.get(k)) for run in runs for r in run.rows
                               for k in ("loss", "val_loss")):  # fmt: skip
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    names = "\n".join(f"[{i + 1}] {r.name}" for i, r in enumerate(runs))
    fig.suptitle(names, fontsize=9)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def _positive(v: Any) -> bool:
    return v is None or (isinstance(v, int | float) and v > 0)


def _metrics(runs: list[Run]) -> list[str]:
    keys = {k.removeprefix("val_") for run in runs for r in run.rows for k, v in r.items()
            if k not in BOOKKEEPING and isinstance(v, int | float)}  # fmt: skip
    return sorted(keys, key=lambda k: (k != "loss", k))
