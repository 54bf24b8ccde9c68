"""The options of `training:` that the trainer reads, with their defaults, in one place.

`read_options` is the one reader of the plan's plain options (`plan.option(name,
default)`) and of the `data` mapping; the trainer and its helpers read `Options` only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from ...compiler.training import TrainingPlan
from .devices import pick_device

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
FULL_BATCH_OPTIMIZERS = ("gd", "lbfgs", "newton")


@dataclass
class Options:
    """The plain options of `training:` with their defaults, and the command line's."""

    epochs: int
    steps: int | None
    batch_size: int | None  # None: full batch
    seed: int
    device: torch.device
    precision: str
    warmup: int
    weight_decay: float
    l1: float
    regularize_all: bool
    clip_grad_norm: float | None
    early_stopping: dict[str, Any] | None
    task: str | None
    data: dict[str, Any]
    checkpoint_every: float = 2.0
    shuffle: bool = True
    metrics: list[str] = field(default_factory=list)


def read_options(plan: TrainingPlan, device: str | None) -> Options:
    option = plan.option
    batch = option("batch_size", None)
    if plan.optimizer.name in FULL_BATCH_OPTIMIZERS and (
        plan.optimizer.name == "gd" or batch is None
    ):
        batch = "full"  # gd is full-batch by definition; lbfgs and newton by default
    return Options(
        epochs=option("epochs", DEFAULT_EPOCHS),
        steps=option("steps", None),
        batch_size=None if batch == "full" else (batch or DEFAULT_BATCH),
        seed=option("seed", 0),
        device=pick_device(device or option("device", "auto")),
        precision=option("precision", "fp32"),
        warmup=option("warmup", 0),
        weight_decay=float(option("weight_decay", 0.0)),
        l1=float(option("l1", 0.0)),
        regularize_all=bool(option("regularize_all", False)),
        clip_grad_norm=option("clip_grad_norm", None),
        early_stopping=option("early_stopping", None),
        task=option("task", None),
        data=dict(option("data", {}) or {}),
        shuffle=bool((option("data", {}) or {}).get("shuffle", True)),
        checkpoint_every=float(option("checkpoint_every", 2.0)),
        metrics=list(option("metrics", []) or []),
    )
