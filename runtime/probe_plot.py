"""The probe's picture: each layer's gradient norm at init, in graph order, log scale,
with the DLC201 line (VANISHING x the largest) drawn across it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

from .files import atomic_write

if TYPE_CHECKING:
    from .probe import ProbeReport


def plot_gradient_norms(report: ProbeReport, path: Path) -> Path:
    """A PNG of the per-layer gradient norms of `report`, written atomically to `path`."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; never opens a window
    import matplotlib.pyplot as plt

    from .probe import VANISHING

    rows = [r for r in report.rows if r.grad_norm is not None]
    largest = report.largest
    # a zero norm has no place on a log axis: drawn at the floor, marked
    floor = min([r.grad_norm for r in rows if r.grad_norm] + [largest * VANISHING or 1.0]) / 10
    heights = [r.grad_norm or floor for r in rows]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.45 * len(rows) + 2), 4.2))
    colors = ["tab:red" if "DLC201" in r.rules else "tab:blue" for r in rows]
    ax.bar(range(len(rows)), heights, color=colors)
    ax.set_yscale("log")
    if largest > 0:
        ax.axhline(largest * VANISHING, color="tab:red", linestyle="--", linewidth=1,
                   label=f"{VANISHING:g} x the largest (DLC201)")  # fmt: skip
        ax.legend(loc="best")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels([r.node for r in rows], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("gradient norm at init")
    ax.set_title(f"{report.name}: per-layer gradient norms ({report.loss}, batch {report.batch})")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())
