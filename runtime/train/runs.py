"""The run folder of `dlc train`: where a run's files live and how they are written.

    runs/<name>/<timestamp>/
        spec.yaml      the spec as given            run.json     overrides, device, versions
        model.ir       the resolved model (IR text) metrics.jsonl one JSON line per epoch
        last.pt        the end of the last epoch    best.pt      the best epoch so far
        curves.png     loss and metric curves       model.onnx   the trained model
        report.md      the final metrics            report.json  the same, for tools

Checkpoints are written whole to a temporary file and renamed over the old one, so a
crash, SIGKILL or Ctrl-C at any moment leaves the previous checkpoint intact. They are
read with `torch.load(weights_only=True)`: a checkpoint is data, never code.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ... import __version__
from ...compiler.errors import UsageError
from ...compiler.ir import format_graph
from ...compiler.pipeline import Checked
from ..files import atomic_write

CHECKPOINT_FORMAT = "dlc-checkpoint/1"


def new_run_dir(root: str | Path, name: str) -> Path:
    """`root/name/YYYYmmdd-HHMMSS`, with a suffix when that second is taken."""
    base = Path(root) / name / time.strftime("%Y%m%d-%H%M%S")
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    path.mkdir(parents=True)
    return path


def claim_run_dir(path: str | Path) -> Path:
    """An explicit `--out DIR`: new or empty, never a folder that holds a run already."""
    path = Path(path)
    if (path / "last.pt").exists():
        raise UsageError(
            f"'{path}' already holds a run",
            hint=f"continue it with `dlc train --resume {path}`, or choose another --out",
        )
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out '{path}' is a file, not a folder")
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    import torch

    buf = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buf)
    atomic_write(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    import torch

    if not path.is_file():
        raise UsageError(f"no checkpoint '{path}'", hint="--resume takes a run folder of dlc train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a damaged or foreign file, whatever torch says
        raise UsageError(f"cannot read checkpoint '{path}': {type(e).__name__}: {e}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"'{path}' is not a dlc checkpoint")
    return state


def write_json(path: Path, obj: Any) -> None:
    atomic_write(path, json.dumps(obj, indent=2, default=str) + "\n")


class MetricsLog:
    """metrics.jsonl: one line per epoch, flushed as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def keep_until(self, epoch: int) -> list[dict[str, Any]]:
        """On resume: drop the lines of epochs after the checkpoint (they will be rerun)."""
        rows = [r for r in self.read() if r.get("epoch", 0) <= epoch]
        atomic_write(self.path, "".join(json.dumps(r) + "\n" for r in rows))
        return rows

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut by a crash: everything before it is sound
        return rows

    def append(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()


def plot_curves(rows: Iterable[dict[str, Any]], path: Path, title: str) -> Path | None:
    """Loss curves (train and val) and each metric, one panel each, as a PNG; with
    log_gradients' rows, a last panel of each layer's gradient norm."""
    rows = list(rows)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display needed; never opens a window
    import matplotlib.pyplot as plt

    keys = [k for k in rows[-1] if isinstance(rows[-1][k], int | float)]
    metrics = sorted({k.removeprefix("val_") for k in keys} - {"epoch", "step", "lr", "time"})
    metrics.sort(key=lambda k: (k != "loss", k))
    grads = any(r.get("grad_norms") for r in rows)
    panels = len(metrics) + grads
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.6), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    if grads:
        _gradient_panel(axes[0][-1], rows, epochs)
    for ax, m in zip(axes[0][: len(metrics)], metrics, strict=True):
        for key, label in ((m, "train"), (f"val_{m}", "val")):
            ys = [r.get(key) for r in rows]
            if any(y is not None for y in ys):
                ax.plot(epochs, [float("nan") if y is None else y for y in ys], label=label)
        ax.set_xlabel("epoch")
        ax.set_title(m)
        if m == "loss" and all((r.get("loss") or 0) > 0 for r in rows):
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def _gradient_panel(ax: Any, rows: list[dict[str, Any]], epochs: list[int]) -> None:
    """Each layer's gradient norm over the epochs (log scale), coloured first layer (dark)
    to last (light); named in a legend when there are few enough to read."""
    import matplotlib

    layers = list(dict.fromkeys(k for r in rows for k in r.get("grad_norms") or {}))
    cmap = matplotlib.colormaps["viridis"]
    for i, layer in enumerate(layers):
        ys = [(r.get("grad_norms") or {}).get(layer) for r in rows]
        ys = [float("nan") if y is None or y <= 0 else y for y in ys]
        shown = len(layers) <= 10 or i in (0, len(layers) - 1)
        ax.plot(epochs, ys, color=cmap(i / max(len(layers) - 1, 1)),
                label=layer if shown else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("gradient norm per layer")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def write_report(run: Path, name: str, result: dict[str, Any]) -> None:
    write_json(run / "report.json", result)
    lines = [f"# {name}: {result['status']}", ""]
    lines.append(
        f"- epochs: {result['epochs']} ({result['steps']} optimizer steps), "
        f"{result['seconds']:.1f} s on {result['device']}"
    )
    if result.get("best_epoch") is not None:
        lines.append(f"- best epoch: {result['best_epoch']} ({result['monitor']})")
    for split in ("train", "val", "test"):
        values = result.get(split) or {}
        if values:
            shown = ", ".join(f"{k} {_format_value(v)}" for k, v in values.items())
            lines.append(f"- {split}: {shown}")
    if result.get("message"):
        lines += ["", result["message"]]
    atomic_write(run / "report.md", "\n".join(lines) + "\n")


def _format_value(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def ir_hash(checked: Checked) -> str:
    """Identifies the model a checkpoint belongs to: the hash of its canonical IR text."""
    return hashlib.sha256(format_graph(checked.graph).encode()).hexdigest()


@contextlib.contextmanager
def held_interrupts() -> Iterator[None]:
    """Hold Ctrl-C while a file is being written; deliver it afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[Any] = []
    old = signal.signal(signal.SIGINT, lambda s, f: pending.append(s))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if pending:
            raise KeyboardInterrupt


def start_run(
    checked: Checked,
    spec_path: Path,
    run_dir: Path,
    overrides: list[str],
    device: str | None,
    nproc: int,
) -> None:
    """The files a run starts with: the spec as given, the resolved model, run.json."""
    atomic_write(run_dir / "spec.yaml", spec_path.read_bytes())
    atomic_write(run_dir / "model.ir", format_graph(checked.graph) + "\n")
    write_json(
        run_dir / "run.json",
        {
            "spec": str(spec_path),
            "overrides": overrides,
            "device": device,
            "nproc": nproc,
            "dlc": __version__,
            "torch": _torch_version(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "pid": os.getpid(),
        },
    )


def _torch_version() -> str:
    import torch

    return str(torch.__version__)
