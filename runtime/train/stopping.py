"""Early stopping, and the best epoch that `best.pt` and `restore_best` follow.

Every run tracks a monitored metric (`early_stopping.monitor`, else `val_loss` with
validation data, else the training `loss`) and its best epoch; only a run with
`early_stopping:` stops when it has not improved by `min_delta` for more than
`patience` epochs. The record lives in the checkpointed `RunState`, so a resumed run
stops where an uninterrupted one would.
"""

from __future__ import annotations

from typing import Any

from ...compiler.errors import UsageError
from ...compiler.training import EarlyStopping
from .checkpoints import RunState


class Monitor:
    """The monitored metric of a run, its best epoch, and whether early stopping stops."""

    def __init__(self, options: EarlyStopping | None, has_val: bool) -> None:
        """`options`: the plan's `early_stopping` (None: not stopping early). A UsageError
        for a val_ metric without validation data."""
        self.options = options
        es = options or EarlyStopping()  # not stopping early still tracks the best epoch
        monitor = es.monitor if es.monitor is not None else ("val_loss" if has_val else "loss")
        if monitor.startswith("val_") and not has_val:
            raise UsageError(
                f"early_stopping monitors {monitor}, but there is no validation data",
                hint="add val_split or val to training.data",
            )
        lower_better = not any(k in monitor for k in ("accuracy", "r2"))
        self.monitor: str = monitor
        self.mode: str = es.mode if es.mode is not None else ("min" if lower_better else "max")

    def track(self, row: dict[str, Any], state: RunState) -> bool:
        """Record an epoch's metrics row in `state`; whether it is the best so far."""
        monitor, mode = self.monitor, self.mode
        if monitor not in row:
            raise UsageError(
                f"early_stopping monitors '{monitor}', which this run does not log",
                hint=f"logged: {', '.join(k for k in row if k not in ('epoch', 'step', 'time'))}",
            )
        value = row[monitor]
        delta = self.options.min_delta if self.options is not None else 0.0
        better = state.best is None or (
            value < state.best - delta if mode == "min" else value > state.best + delta
        )
        if better:
            state.best, state.best_epoch, state.bad_epochs = value, row["epoch"], 0
        else:
            state.bad_epochs += 1
        return better

    def should_stop(self, state: RunState) -> bool:
        return self.options is not None and state.bad_epochs > self.options.patience

    def restores_best(self) -> bool:
        """Whether the run ends with the best epoch's weights (`restore_best`, default
        true, with early stopping only)."""
        return self.options is not None and self.options.restore_best
