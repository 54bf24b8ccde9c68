"""Samples as pictures: a grid of images, or a scatter plot of 2-D points beside the data.

`write_samples` picks the form from the array: [N, 2] points are scattered; images
([N, H, W], [N, 1|3, H, W], or [N, D] with D a square such as the digits' 64) are tiled in
a grid on one grey scale, the grid's own 1st to 99th percentile, so samples of any units
show. A `.npy`
path gets the array itself. Every file is written atomically (runtime/files.py).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from ...compiler.errors import UsageError
from ..files import atomic_write

MAX_TILES = 256


def as_images(samples: np.ndarray) -> np.ndarray | None:
    """[N, H, W] greyscale or [N, H, W, 3] colour images from what a model gives, or None
    when the rows are not images (2-D points, a vector whose length is not a square)."""
    a = np.asarray(samples)
    if a.ndim == 2:
        side = math.isqrt(a.shape[1])
        if a.shape[1] < 4 or side * side != a.shape[1]:
            return None
        return a.reshape(len(a), side, side)
    if a.ndim == 3:
        return a
    if a.ndim == 4 and a.shape[1] == 1:
        return a[:, 0]
    if a.ndim == 4 and a.shape[1] == 3:
        return a.transpose(0, 2, 3, 1)
    return None


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display needed; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, buf.getvalue())


def write_grid(images: np.ndarray, path: str | Path, *, title: str = "") -> Path:
    """The images tiled row by row (at most 16 columns, the first MAX_TILES of them), grey
    on a common scale."""
    tiles = as_images(images)
    if tiles is None or len(tiles) == 0:
        raise UsageError(f"cannot draw samples of shape {list(np.shape(images))} as images")
    if len(tiles) > MAX_TILES:  # a readable picture: the first 16 x 16 (the .npy has all)
        title = f"{title} (the first {MAX_TILES} of {len(tiles)})" if title else title
        tiles = tiles[:MAX_TILES]
    tiles = np.asarray(tiles, dtype=np.float64)
    # one scale for the grid, robust to a few wild pixels: the 1st to the 99th percentile
    lo, hi = (float(v) for v in np.percentile(tiles, [1, 99]))
    tiles = np.clip((tiles - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(tiles)
    n = len(tiles)
    cols = min(16, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    h, w = tiles.shape[1:3]
    pad = 1
    # a faint line between tiles (0 is white under the reversed grey map, 1 black ink)
    canvas = np.full(((h + pad) * rows + pad, (w + pad) * cols + pad, *tiles.shape[3:]), 0.12)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        canvas[y : y + h, x : x + w] = tile
    plt = _pyplot()
    inch = 0.6 * max(1.0, max(h, w) / 16)  # per tile: 8x8 digits at 0.6", 28x28 at 1"
    fig = plt.figure(figsize=(max(2.0, cols * inch), max(2.0, rows * inch + (0.3 if title else 0))))
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0 - (0.3 / (rows * inch + 0.3) if title else 0.0)))
    ax.imshow(canvas, cmap="gray_r", interpolation="nearest", vmin=0.0, vmax=1.0)
    ax.set_axis_off()
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, Path(path))


def write_scatter(
    points: np.ndarray,
    path: str | Path,
    *,
    reference: np.ndarray | None = None,
    title: str = "",
) -> Path:
    """[N, 2] samples as dots; `reference` (data, [M, 2]) drawn in grey beneath them."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise UsageError(f"a scatter plot needs [N, 2] points, got shape {list(pts.shape)}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    if reference is not None:
        ref = np.asarray(reference, dtype=np.float64)
        ax.scatter(ref[:, 0], ref[:, 1], s=6, c="0.75", label="data", linewidths=0)
    ax.scatter(pts[:, 0], pts[:, 1], s=6, c="tab:blue", label="samples", linewidths=0)
    if reference is not None:
        ax.legend(loc="best", fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, Path(path))


def write_samples(
    samples: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    reference: np.ndarray | None = None,
) -> Path:
    """`samples` to `path`: the array for `.npy`, else a scatter of 2-D points or a grid of
    images as PNG."""
    path = Path(path)
    a = np.asarray(samples)
    if path.suffix == ".npy":
        buf = io.BytesIO()
        np.save(buf, a)
        return atomic_write(path, buf.getvalue())
    if path.suffix != ".png":
        raise UsageError(f"{path}: samples are written as .png or .npy, not {path.suffix!r}")
    if a.ndim == 2 and a.shape[1] == 2:
        return write_scatter(a, path, reference=reference, title=title)
    return write_grid(a, path, title=title)
