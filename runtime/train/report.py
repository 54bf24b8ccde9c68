"""The end of a training run: the result `Trainer.run` returns (and `dlc train` prints),
and the files that close the run folder: model.onnx (the trained weights, exported from
the same checked spec), curves.png, report.md and report.json.

A run that stops on a non-finite loss reports without exporting: its weights are not
worth a model.onnx, and its test split is not evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...compiler.pipeline import Checked
from ...compiler.training import TrainingOptions
from ..compile import build_onnx
from ..files import atomic_write
from .checkpoints import RunState
from .gradients import ROW_KEY
from .runs import MetricsLog, plot_curves, write_report

# the keys of a metrics row that are not a metric (log_gradients' per-layer norms included)
BOOKKEEPING = ("epoch", "step", "time", ROW_KEY)


def summarize(
    checked: Checked,
    opts: TrainingOptions,
    device: torch.device,
    *,
    status: str,
    message: str,
    seconds: float,
    state: RunState,
    processes: int,
    rows: list[dict[str, Any]],
    has_val: bool,
) -> dict[str, Any]:
    """The result of a run, from its last metrics row (the test split is added after)."""
    result: dict[str, Any] = {
        "status": status,
        "spec": checked.graph.name,
        "epochs": state.epoch,
        "steps": state.step,
        "seconds": round(seconds, 2),
        "device": str(device),
        "processes": processes,
        "monitor": None,
        "best_epoch": state.best_epoch,
        "message": message,
    }
    if opts.early_stopping or state.best_epoch is not None:
        es = opts.early_stopping
        result["monitor"] = (es.monitor if es is not None else None) or (
            "val_loss" if has_val else "loss"
        )
    if rows:
        result["train"] = {
            k: v for k, v in rows[-1].items() if not k.startswith("val_") and k not in BOOKKEEPING
        }
        if has_val:
            result["val"] = {
                k.removeprefix("val_"): v for k, v in rows[-1].items() if k.startswith("val_")
            }
    return result


def write_run_files(
    checked: Checked,
    run_dir: Path,
    model: nn.Module,
    result: dict[str, Any],
    *,
    export: bool,
    metadata: Mapping[str, str] | None = None,
) -> None:
    """model.onnx (when `export`, with the trainer's own `metadata` entries), curves.png and
    the report, into `run_dir`; `result` gains the paths of the ONNX file and the curves."""
    if export:
        weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
        metrics: dict[str, Any] = {k: result[k] for k in ("train", "val", "test") if k in result}
        proto = build_onnx(checked, weights, None, weights_from="trained", metrics=metrics,
                           extra_metadata=metadata)  # fmt: skip
        atomic_write(run_dir / "model.onnx", proto.SerializeToString())
        result["onnx"] = str(run_dir / "model.onnx")
    all_rows = MetricsLog(run_dir / "metrics.jsonl").read()
    if plot_curves(all_rows, run_dir / "curves.png", checked.graph.name):
        result["curves"] = str(run_dir / "curves.png")
    write_report(run_dir, checked.graph.name, result)
