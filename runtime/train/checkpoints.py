"""The checkpoints of a training run: what `last.pt`, `best.pt` and `interrupted.pt` hold,
when they are written, and how a resumed run takes its state back from them.

- `RunState` is what a run resumes from besides the tensors: the epochs completed, the
  optimizer steps taken and the early-stopping record.
- `Checkpoints.save`, at the end of an epoch: `last.pt` (model, optimizer, schedule,
  gradient scaler, torch RNG, RunState, the IR hash of the model) and `best.pt` when the
  best epoch changed since it was last written; at most once every `checkpoint_every`
  seconds unless the run ends; on rank 0 only, and with Ctrl-C held until the files are
  whole, so `last.pt` always holds the last complete epoch.
- `Checkpoints.restore` puts all of it back, so a resumed run ends with the weights of
  an uninterrupted one, and cuts metrics.jsonl back to the checkpoint's epoch.

The files themselves are written and read by runs.py (`save_checkpoint`,
`load_checkpoint`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ... import __version__
from ...compiler.pipeline import Checked
from .devices import Precision
from .runs import MetricsLog, held_interrupts, ir_hash, load_checkpoint, save_checkpoint
from .schedules import Schedule


@dataclass
class RunState:
    best: float | None
    best_epoch: int | None
    bad_epochs: int
    epoch: int  # epochs completed
    step: int  # optimizer steps taken

    def as_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "epoch": self.epoch,
            "step": self.step,
        }


class Checkpoints:
    """The checkpoints of one run in `run_dir` (None: a run that keeps no files), and the
    best epoch's weights, kept in memory for `restore_best` and `best.pt`."""

    def __init__(self, checked: Checked, run_dir: Path | None, *, main: bool, every: float):
        self.checked = checked
        self.run_dir = run_dir
        self.main = main  # rank 0 writes; the other processes of a distributed run do not
        self.every = every  # seconds between two saves of last.pt
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.best_saved: int | None = None  # the epoch best.pt holds
        self.saved_at = -math.inf

    def keep_best(self, model: nn.Module) -> None:
        """The model's weights as the best so far (a copy on the CPU)."""
        self.best_weights = {
            k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
        }

    def save(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule,
        precision: Precision,
        state: RunState,
        *,
        force: bool = False,
    ) -> None:
        """`last.pt` (and `best.pt` when the best changed since) at the end of an epoch,
        when `checkpoint_every` seconds have passed since the last save or the run ends."""
        if self.run_dir is None or not self.main:
            return
        now = time.perf_counter()
        if not force and now - self.saved_at < self.every:
            return
        ckpt = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": precision.state_dict(),
            "rng": torch.get_rng_state(),
            "state": state.as_dict(),
            "ir_sha256": ir_hash(self.checked),
            "version": __version__,
        }
        with held_interrupts():  # a Ctrl-C waits until the files are whole
            if self.best_weights is not None and state.best_epoch != self.best_saved:
                best = {"model": self.best_weights, "epoch": state.best_epoch,
                        "ir_sha256": ckpt["ir_sha256"]}  # fmt: skip
                save_checkpoint(self.run_dir / "best.pt", best)
                self.best_saved = state.best_epoch
            save_checkpoint(self.run_dir / "last.pt", ckpt)
        self.saved_at = time.perf_counter()

    def save_interrupted(self, model: nn.Module, state: RunState) -> None:
        """`interrupted.pt`: the weights at a Ctrl-C, in the middle of an epoch (a resume
        starts from `last.pt`, the last complete epoch)."""
        if self.run_dir is not None and self.main:
            save_checkpoint(
                self.run_dir / "interrupted.pt",
                {"model": model.state_dict(), "epoch": state.epoch, "step": state.step},
            )

    def restore(
        self,
        ckpt: dict[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Schedule,
        precision: Precision,
        state: RunState,
        log: MetricsLog | None,
    ) -> list[dict[str, Any]]:
        """Everything `save` wrote into `ckpt` put back; the metric rows of the epochs it
        covers."""
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        precision.load_state_dict(ckpt.get("scaler"))
        torch.set_rng_state(ckpt["rng"])
        for k, v in ckpt["state"].items():
            setattr(state, k, v)
        best = self.run_dir / "best.pt" if self.run_dir else None
        if best is not None and best.exists():
            self.best_weights = load_checkpoint(best)["model"]
            self.best_saved = state.best_epoch
        return log.keep_until(state.epoch) if log is not None else []
