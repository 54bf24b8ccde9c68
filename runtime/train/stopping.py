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
from .checkpoints import RunState


class EarlyStopping:
    def __init__(self, options: dict[str, Any] | None, has_val: bool) -> None:
        """`options`: the plan's `early_stopping` mapping (None: not stopping early).
        A UsageError for a val_ metric without validation data."""
        self.options = options
        es = options or {}
        monitor = es.get("monitor", "val_loss" if has_val else "loss")
        if monitor.startswith("val_") and not has_val:
            raise UsageError(
                f"early_stopping monitors {monitor}, but there is no validation data",
                hint="add val_split or val to training.data",
            )
        lower_better = not any(k in monitor for k in ("accuracy", "r2"))
        self.monitor: str = monitor
        self.mode: str = es.get("mode", "min" if lower_better else "max")

    def track(self, row: dict[str, Any], state: RunState) -> bool:
        """Record an epoch's metrics row in `state`; whether it is the best so far."""
        monitor, mode = self.monitor, self.mode
        if monitor not in row:
            raise UsageError(
                f"early_stopping monitors '{monitor}', which this run does not log",
                hint=f"logged: {', '.join(k for k in row if k not in ('epoch', 'step', 'time'))}",
            )
        value = row[monitor]
        delta = float((self.options or {}).get("min_delta", 0.0))
        better = state.best is None or (
            value < state.best - delta if mode == "min" else value > state.best + delta
        )
        if better:
            state.best, state.best_epoch, state.bad_epochs = value, row["epoch"], 0
        else:
            state.bad_epochs += 1
        return better

    def should_stop(self, state: RunState) -> bool:
        es = self.options
        if not es:
            return False
        return bool(state.bad_epochs > es.get("patience", 0))

    def restores_best(self) -> bool:
        """Whether the run ends with the best epoch's weights (`restore_best`, default
        true, with early stopping only)."""
        es = self.options
        if not es:
            return False
        return bool(es.get("restore_best", True))
