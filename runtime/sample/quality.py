"""How good samples are: distances to held-out data and a classifier's verdict.

- `mmd_rbf(a, b)`: the squared maximum mean discrepancy between two samples under a
  Gaussian kernel (Gretton et al. 2012, the unbiased estimate), its bandwidth the median
  distance between rows of `b` (the median heuristic), so it is 0 in expectation when a
  and b come from one distribution and grows as they part;
- `nearest_neighbour(a, b)`: the mean distance from each row of `a` to its nearest row of
  `b` (how far samples fall from the data; small for samples on the data's support);
- `judge(samples, classifier)`: a dlc classifier of the same data (an ONNX file or an
  onnxruntime session) reads the samples: its mean confidence (the softmax's largest
  probability) and how many classes appear among its answers, the figures that say
  whether a digits generator draws digits, and all ten of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ...compiler.errors import UsageError


def _pairwise_sq(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def _rows(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x.reshape(len(x), -1)


def mmd_rbf(a: np.ndarray, b: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased squared MMD between samples `a` and `b` (rows), Gaussian kernel."""
    x, y = _rows(a), _rows(b)
    if len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        raise UsageError(f"mmd needs two samples of >= 2 rows of one width: {x.shape}, {y.shape}")
    if bandwidth is None:
        d = np.sqrt(_pairwise_sq(y, y)[np.triu_indices(len(y), 1)])
        bandwidth = float(np.median(d)) or 1.0
    gamma = 1.0 / (2.0 * bandwidth**2)
    kxx, kyy, kxy = (np.exp(-gamma * _pairwise_sq(p, q)) for p, q in ((x, x), (y, y), (x, y)))
    m, n = len(x), len(y)
    xx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    yy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(xx + yy - 2.0 * kxy.mean())


def nearest_neighbour(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance of each row of `a` to its nearest row of `b`."""
    x, y = _rows(a), _rows(b)
    return float(np.sqrt(_pairwise_sq(x, y).min(axis=1)).mean())


def _session(classifier: Any) -> Any:
    if isinstance(classifier, str | Path):
        from ..predict import open_session

        return open_session(classifier)
    return classifier


def judge(samples: np.ndarray, classifier: Any) -> dict[str, Any]:
    """A classifier's reading of `samples`: mean confidence, classes present, per-class counts.

    The samples are reshaped to the classifier's one input (same number of values per row)
    and cast to its type; its first output is taken as logits or probabilities (rows that
    sum to 1 are used as they are, else softmax)."""
    session = _session(classifier)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise UsageError(f"the judge must be a classifier with one input, it has {len(inputs)}")
    shape = [d if isinstance(d, int) else -1 for d in inputs[0].shape]
    x = np.asarray(samples, dtype=np.float32)
    per_row = int(np.prod([d for d in shape[1:] if d > 0])) if len(shape) > 1 else 1
    if x.reshape(len(x), -1).shape[1] != per_row:
        raise UsageError(
            f"the judge reads rows of {per_row} values ({inputs[0].shape}); the samples have "
            f"{x.reshape(len(x), -1).shape[1]}"
        )
    x = x.reshape([len(x), *[d if d > 0 else 1 for d in shape[1:]]])
    out = np.asarray(session.run(None, {inputs[0].name: x})[0], dtype=np.float64)
    out = out.reshape(len(x), -1)
    if not (np.all(out >= 0) and np.allclose(out.sum(1), 1.0, atol=1e-3)):
        out = np.exp(out - out.max(1, keepdims=True))
        out /= out.sum(1, keepdims=True)
    pred = out.argmax(1)
    counts = np.bincount(pred, minlength=out.shape[1])
    return {
        "confidence": float(out.max(1).mean()),
        "classes": int((counts > 0).sum()),
        "counts": [int(c) for c in counts],
    }
