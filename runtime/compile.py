"""`dlc compile`: a checked spec to an ONNX file (and a standalone model.py), with the
weights of a checkpoint or freshly initialised, and `--verify`: the torch module and
onnxruntime on the same random inputs.

Without `--verify` and `--emit torch` nothing here imports torch: the initial weights come
from numpy and the ONNX graph from onnx.helper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..compiler.dims import Dim, evaluate, free_symbols, is_sym
from ..compiler.dtypes import NUMPY_DTYPES
from ..compiler.errors import UsageError
from ..compiler.ir import format_graph
from ..compiler.lower.initial_weights import initial_weights
from ..compiler.pipeline import Checked
from .files import atomic_write
from .weights import match_weights, read_weights

RTOL, ATOL = 1e-5, 1e-6
NP_DTYPES = {d: np.dtype(d) for d in NUMPY_DTYPES}


@dataclass
class Compiled:
    onnx_path: Path | None
    parameters: int
    size: int
    written: list[Path] = field(default_factory=list)
    max_diff: float | None = None
    tolerance_ok: bool = True


def spec_hash(checked: Checked) -> str:
    """A hash of the resolved spec: the canonical IR text, params and export applied."""
    text = format_graph(checked.graph) + repr(checked.export_outputs)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_weights(checked: Checked, path: str | None, seed: int = 0) -> dict[str, np.ndarray]:
    if path is None:
        return initial_weights(checked.graph, seed)
    return match_weights(checked.graph, read_weights(path), path)


def build_onnx(checked: Checked, weights: Mapping[str, np.ndarray], opset: int | None) -> Any:
    from ..compiler.lower.onnx import DEFAULT_OPSET, supported_opsets, to_onnx

    opset = opset or (checked.spec.export.opset if checked.spec.export else None) or DEFAULT_OPSET
    if opset not in supported_opsets():
        r = supported_opsets()
        raise UsageError(f"opset {opset} is not supported: use {r.start}..{r.stop - 1}")
    metadata = {"dlc.spec": checked.graph.name, "dlc.spec_sha256": spec_hash(checked),
                "dlc.version": __version__}  # fmt: skip
    return to_onnx(
        checked.graph,
        weights,
        opset=opset,
        extra_outputs=checked.export_outputs,
        metadata=metadata,
        doc=checked.spec.doc,
    )


def sample_inputs(checked: Checked, batch: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random inputs with every symbolic dim made concrete (the batch dim = `batch`)."""
    env: dict[str, int] = {}
    for i in checked.graph.inputs:
        for k, d in enumerate(i.type.shape):
            for s in free_symbols(d) if is_sym(d) else ():
                env.setdefault(s, batch if k == 0 else 3)
    out: dict[str, np.ndarray] = {}
    for i in checked.graph.inputs:
        shape = tuple(_concrete(d, env) for d in i.type.shape)
        dtype = NP_DTYPES.get(i.type.dtype, np.float32)
        if np.issubdtype(dtype, np.integer):
            out[i.name] = rng.integers(0, 8, shape).astype(dtype)
        else:
            out[i.name] = rng.standard_normal(shape).astype(dtype)
    return out


def _concrete(d: Dim, env: dict[str, int]) -> int:
    return d if isinstance(d, int) else evaluate(d, env)


def verify(checked: Checked, weights: Mapping[str, np.ndarray], model: Any) -> tuple[float, bool]:
    """The largest |torch - onnxruntime| over all outputs on random inputs (batch 1 and
    4), and whether every element is within ATOL + RTOL x the output's largest magnitude."""
    import onnxruntime as ort
    import torch

    from ..compiler.lower.torch import to_torch

    module = to_torch(checked.graph, weights).eval()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [name for name, _ in checked.graph.outputs]
    worst, ok = 0.0, True
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        feeds = sample_inputs(checked, batch, rng)
        with torch.no_grad():
            result = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        ours = result if isinstance(result, dict) else {names[0]: result}
        out_names = [o.name for o in session.get_outputs()]
        theirs = dict(zip(out_names, session.run(None, feeds), strict=True))
        for name in names:
            a, b = ours[name].numpy(), theirs[name]
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            worst = max(worst, float(diff.max(initial=0.0)))
            # relative to the output's scale: a float32 sum that cancels has no relative
            # precision of its own
            ok = ok and bool(np.all(diff <= ATOL + RTOL * float(np.abs(b).max(initial=0.0))))
    return worst, ok


def compile_spec(
    checked: Checked,
    spec_path: str | Path,
    *,
    out: str | Path | None = None,
    weights_path: str | None = None,
    emit: Sequence[str] = ("onnx",),
    check: bool = False,
    opset: int | None = None,
    seed: int = 0,
) -> Compiled:
    unknown = set(emit) - {"onnx", "torch"}
    if unknown:
        raise UsageError(f"--emit takes onnx and torch, not {', '.join(sorted(unknown))}")
    target = Path(out) if out else Path(spec_path).with_suffix(".onnx")
    weights = resolve_weights(checked, weights_path, seed)
    model = build_onnx(checked, weights, opset)
    data = model.SerializeToString()
    result = Compiled(None, checked.graph.num_params, len(data))
    if "onnx" in emit:
        result.onnx_path = atomic_write(target, data)
        result.written.append(target)
    if "torch" in emit:
        from ..compiler.lower.model_py import model_py

        result.written.append(
            atomic_write(target.with_suffix(".py"), model_py(checked.graph, __version__))
        )
    if check:
        result.max_diff, result.tolerance_ok = verify(checked, weights, model)
    return result
