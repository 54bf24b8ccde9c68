"""`training: {tensorboard: true}`: each epoch's metrics row also as TensorBoard scalars,
in the run folder's tb/ (`tensorboard --logdir runs/`), as Lightning's TensorBoardLogger.

Never required: without the `tensorboard` package (`pip install 'dlc[tensorboard]'`) the
run trains all the same, after a warning located at the option. Tags are `train/METRIC`,
`val/METRIC`, `lr` and, with log_gradients, `grad_norm/LAYER`; the step is the epoch. A
resumed run purges the events past its checkpoint's epoch, as metrics.jsonl drops its
rows (they will be rerun).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ...compiler.errors import Diagnostic
from ...compiler.pipeline import Checked
from .gradients import ROW_KEY

SKIPPED = ("epoch", "step", "time")


class TensorBoardLog:
    """A SummaryWriter on `run_dir/tb`, fed one metrics row per epoch."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    @classmethod
    def open(cls, checked: Checked, run_dir: Path, resumed_epoch: int) -> TensorBoardLog | None:
        """The log, or None (after a located warning) when tensorboard is not installed."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch raises it when the tensorboard package is missing
            loc = checked.spec.document.key_loc(("training", "tensorboard"))
            warning = Diagnostic(
                "tensorboard: true, but the tensorboard package is not installed: "
                "this run writes no TensorBoard log (metrics.jsonl and curves.png as always)",
                loc,
                "pip install tensorboard  (or: pip install 'dlc[tensorboard]')",
                severity="warning",
            )
            print(warning.render(), file=sys.stderr)
            return None
        purge = resumed_epoch + 1 if resumed_epoch else None
        return cls(SummaryWriter(log_dir=str(run_dir / "tb"), purge_step=purge))

    def write(self, row: dict[str, Any]) -> None:
        epoch = row["epoch"]
        for key, value in row.items():
            if key == ROW_KEY:
                for layer, norm in (value or {}).items():
                    self.writer.add_scalar(f"grad_norm/{layer}", norm, epoch)
            elif key not in SKIPPED and isinstance(value, int | float):
                split, name = ("val", key[4:]) if key.startswith("val_") else ("train", key)
                self.writer.add_scalar(key if key == "lr" else f"{split}/{name}", value, epoch)
        self.writer.flush()  # a killed run keeps every epoch it logged

    def close(self) -> None:
        self.writer.close()
