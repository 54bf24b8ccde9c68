"""Weights files: reading a checkpoint or state dict safely and matching it to a graph.

A weights file is a `.npz` archive of arrays (read with allow_pickle=False) or a torch
file (`.pt`, `.pth`, `.ckpt`, read with `torch.load(weights_only=True)`: nothing in it can
run code) holding a state dict, or a checkpoint dict with the state dict under `model`,
`state_dict` or `model_state_dict`. Its keys must be exactly the graph's weight names
(`dense.weight`, ...) with the graph's shapes; every difference is listed in one error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.errors import UsageError
from ..compiler.ir import Graph

TORCH_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin")
STATE_KEYS = ("model", "state_dict", "model_state_dict")


def read_weights(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        if path.suffix in TORCH_SUFFIXES:
            return _torch_state(path)
    except UsageError:
        raise
    except Exception as e:  # noqa: BLE001 - a corrupt or foreign file, whatever the library says
        raise UsageError(f"cannot read weights from '{path}': {type(e).__name__}: {e}") from None
    raise UsageError(
        f"unknown weights format '{path.suffix}' ('{path}')",
        hint="use a .npz of arrays or a torch state dict (.pt, .pth, .ckpt)",
    )


def _torch_state(path: Path) -> dict[str, np.ndarray]:
    import torch

    obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        for key in STATE_KEYS:
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not all(torch.is_tensor(v) for v in obj.values()):
        raise UsageError(
            f"'{path}' holds no state dict",
            hint="save one with torch.save(model.state_dict(), path)",
        )
    return {str(k): v.detach().cpu().numpy() for k, v in obj.items()}


def expected_weights(graph: Graph) -> dict[str, tuple[int, ...]]:
    return {f"{n.name}.{p.name}": p.shape for n in graph.nodes for p in n.params}


def match_weights(
    graph: Graph, weights: Mapping[str, np.ndarray], source: str
) -> dict[str, np.ndarray]:
    """The weights as float32 arrays keyed like the graph, or one error listing every
    missing, unexpected and wrongly shaped key."""
    expected = expected_weights(graph)
    missing = [k for k in expected if k not in weights]
    extra = [k for k in weights if k not in expected]
    wrong = [
        f"{k}: {list(np.shape(weights[k]))} where the spec needs {list(shape)}"
        for k, shape in expected.items()
        if k in weights and tuple(np.shape(weights[k])) != shape
    ]
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(missing))
    if extra:
        problems.append("unexpected: " + ", ".join(extra))
    if wrong:
        problems.append("wrong shape: " + "; ".join(wrong))
    if problems:
        raise UsageError(
            f"the weights in '{source}' do not fit the spec '{graph.name}': "
            + " | ".join(problems),
            hint="weights are matched by name and shape; train or export them from this spec",
        )
    return {
        k: np.asarray(weights[k]).astype(
            np.int64 if k.endswith("num_batches_tracked") else np.float32
        )
        for k in expected
    }
