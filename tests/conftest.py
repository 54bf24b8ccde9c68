"""The tests' shared helpers: specs from snippets, running the real `dlc` CLI, random
weights for a graph, readable case ids, and the parity tolerances (the code's own, from
dlc.runtime.compile, not restated). Test modules import them from here (`from conftest
import ...`); no test module imports another."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from dlc.compiler.errors import DlcError
from dlc.compiler.ir import Graph
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked, check_text
from dlc.runtime.compile import ATOL, RTOL  # noqa: F401  (the parity criterion, for the tests)

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def one_layer(layer: str, shape: str = "[B, 16]", dtype: str | None = None) -> str:
    inp = f"{{shape: {shape}, dtype: {dtype}}}" if dtype else shape
    return f"dlc: 1\nname: t\ninputs:\n  x: {inp}\nmodel:\n  - {layer}\n"


def check_layer(layer: str, shape: str = "[B, 16]", **kw: str) -> Checked:
    return check_text(one_layer(layer, shape, **kw), "t.yaml")


def checked_example(e: Example) -> Checked:
    """An op's example (OpDef.examples) as a checked one-layer spec."""
    return check_layer(e.layer, e.shape, **({"dtype": e.dtype} if e.dtype else {}))


def error_of(text: str, name: str = "spec.yaml") -> DlcError:
    try:
        check_text(text, name)
    except DlcError as e:
        return e
    raise AssertionError("expected a DlcError")


def run_dlc(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("DLC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "dlc.runtime.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def random_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Normal weights (matrices scaled by 1/√fan_in); the op's positive_params (running
    variances, scales, widths) > 0; num_batches_tracked an int64 count."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        positive = REGISTRY[node.op].positive_params
        for p in node.params:
            key = f"{node.name}.{p.name}"
            if p.name == "num_batches_tracked":
                out[key] = np.array(7, np.int64)
                continue
            a = rng.standard_normal(p.shape)
            if len(p.shape) >= 2:
                a /= math.sqrt(p.shape[-1])
            out[key] = (0.5 + np.abs(a) if p.name in positive else a).astype(np.float32)
    return out


def case_id(v: Any) -> str:
    """A readable, stable test id: `adam-lr=0.1`, `int64[4, 1]`, no memory addresses."""
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "defaults"
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{list(v.shape)}"
    if callable(v):
        return "formula"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
