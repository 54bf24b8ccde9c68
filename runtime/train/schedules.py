"""The learning-rate schedules that `training:` names.

Each name in `compiler/training.py`'s SCHEDULES is built here with the same arguments:
`make_schedule` returns a `Schedule` wrapping a `torch.optim.lr_scheduler` class, plus
a linear warmup over the first optimizer steps. The wrapper keeps the scheduled lr
apart from the warmup factor, so neither corrupts the other, and its state dict
resumes a run exactly where it stopped. A user's mistake raises `TrainError`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import lr_scheduler

from ...compiler.errors import TrainError
from .arguments import bind_args

SchedulerBuilder = Callable[[torch.optim.Optimizer, dict[str, Any], int, int], Any]

SCHEDULER_BUILDERS: dict[str, SchedulerBuilder] = {
    "constant": lambda opt, args, epochs, steps_per_epoch: None,
    "step": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.StepLR(
        opt, step_size=args["step_size"], gamma=args["gamma"]
    ),
    "multistep": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.MultiStepLR(
        opt, milestones=list(args["milestones"]), gamma=args["gamma"]
    ),
    "exponential": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.ExponentialLR(
        opt, gamma=args["gamma"]
    ),
    "cosine": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.CosineAnnealingLR(
        opt, T_max=args["t_max"], eta_min=args["eta_min"]
    ),
    "linear": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.LinearLR(
        opt,
        start_factor=args["start_factor"],
        end_factor=args["end_factor"],
        total_iters=args["total_iters"] or epochs,
    ),
    "plateau": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.ReduceLROnPlateau(
        opt, mode="min", factor=args["factor"], patience=args["patience"], min_lr=args["min_lr"]
    ),
    # the lr only: cycling momentum too (torch's default) would overwrite the momentum
    # or β₁ the spec wrote, and turn plain SGD into SGD with momentum
    "onecycle": lambda opt, args, epochs, steps_per_epoch: lr_scheduler.OneCycleLR(
        opt,
        max_lr=args["max_lr"],
        total_steps=max(1, epochs * steps_per_epoch),
        pct_start=args["pct_start"],
        cycle_momentum=False,
    ),
    "warm_restarts": lambda opt, args, epochs, steps_per_epoch: (
        lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=args["t_0"], T_mult=args["t_mult"], eta_min=args["eta_min"]
        )
    ),
}

PER_BATCH = frozenset({"onecycle"})  # the rest step once per epoch, as in PyTorch


class Schedule:
    """A learning-rate schedule with optional linear warmup, driven by the trainer:

        for epoch ...:
            for batch ...:
                opt.step(...); schedule.step_batch()
            schedule.step_epoch(val_loss, train_loss=train_loss)

    At optimizer step k (from 0) each group's lr is scheduled·min(1, (k+1)/warmup). The
    scheduled lr is kept here, handed back to the torch scheduler before each of its
    steps (torch's chainable schedulers read the group's lr) and the warmup factor
    applied after, so neither sees the other. `lrs()` is what the next step uses.
    """

    def __init__(
        self,
        name: str,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
        *,
        warmup: int = 0,
    ) -> None:
        self.name = name
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.warmup = warmup
        self.per_batch = name in PER_BATCH
        self.steps = 0  # optimizer steps taken; the next one is step k = self.steps
        self._scheduled = [float(g["lr"]) for g in optimizer.param_groups]
        self._apply()

    def step_batch(self) -> None:
        """Call after every optimizer step."""
        self.steps += 1
        if self.per_batch and self._can_step():
            self._advance()
        self._apply()

    def step_epoch(self, val_loss: float | None = None, *, train_loss: float | None = None) -> None:
        """Call at the end of every epoch. `plateau` watches `val_loss`; without a
        validation set it watches `train_loss` (the epoch's mean training loss)."""
        if not self.per_batch and self.scheduler is not None:
            if self.name == "plateau":
                metric = val_loss if val_loss is not None else train_loss
                if metric is None:
                    raise TrainError("schedule plateau needs a loss to watch at each epoch's end")
                self._advance(float(metric))
            else:
                self._advance()
        self._apply()

    def lrs(self) -> list[float]:
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        sched = self.scheduler.state_dict() if self.scheduler is not None else None
        return {"name": self.name, "steps": self.steps, "scheduled": list(self._scheduled),
                "scheduler": sched}  # fmt: skip

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state.get("name") != self.name:
            raise TrainError(
                f"the checkpoint's schedule is '{state.get('name')}', the spec's '{self.name}'"
            )
        self.steps = int(state["steps"])
        self._scheduled = [float(v) for v in state["scheduled"]]
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self._apply()

    def _factor(self) -> float:
        return min(1.0, (self.steps + 1) / self.warmup) if self.warmup > 0 else 1.0

    def _apply(self) -> None:
        factor = self._factor()
        for group, lr in zip(self.optimizer.param_groups, self._scheduled, strict=True):
            group["lr"] = lr * factor

    def _advance(self, metric: float | None = None) -> None:
        for group, lr in zip(self.optimizer.param_groups, self._scheduled, strict=True):
            group["lr"] = lr
        if metric is None:
            self.scheduler.step()
        else:
            self.scheduler.step(metric)
        self._scheduled = [float(g["lr"]) for g in self.optimizer.param_groups]

    def _can_step(self) -> bool:
        # OneCycleLR raises past its last step; the lr stays at its final value
        total = getattr(self.scheduler, "total_steps", math.inf)
        return self.scheduler is not None and self.scheduler.last_epoch < total - 1


def make_schedule(
    name: str | None,
    args: Mapping[str, Any],
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    warmup: int = 0,
) -> Schedule:
    """The schedule `name(args)` (None: constant) for `optimizer`, over a run of
    `epochs` epochs of `steps_per_epoch` optimizer steps, after `warmup` steps of
    linear warmup. onecycle steps per batch (total_steps = epochs·steps_per_epoch);
    the others per epoch."""
    name = name or "constant"
    bound = bind_args("schedule", name, args)
    if warmup < 0:
        raise TrainError(f"warmup must be >= 0 optimizer steps, got {warmup}")
    try:
        scheduler = SCHEDULER_BUILDERS[name](optimizer, bound, epochs, steps_per_epoch)
    except ValueError as e:  # torch's own argument checks
        raise TrainError(f"schedule {name}: {e}") from None
    return Schedule(name, optimizer, scheduler, warmup=warmup)
