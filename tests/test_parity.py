"""Differential tests of the lowerings: for every op of the registry (over each op's own
examples, `OpDef.examples`) and every spec in specs/, the torch
module in eval mode, onnxruntime and onnx's reference evaluator agree on random inputs
within 1e-5 relative / 1e-6 absolute (float32)."""

from __future__ import annotations

from importlib import import_module

import numpy as np
import onnxruntime as ort
import pytest
import torch
from onnx.reference import ReferenceEvaluator

from conftest import ATOL, ROOT, RTOL, SPECS, checked_example
from dlc.compiler.dims import evaluate, free_symbols, is_sym
from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.onnx import ONNX_RULES, to_onnx
from dlc.compiler.lower.torch import TORCH_RULES, to_torch
from dlc.compiler.ops import FAMILIES, REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked, check_file
from dlc.runtime.compile import sample_inputs


def _weights(checked: Checked, seed: int) -> dict[str, np.ndarray]:
    """The spec's init, then perturbed so that no weight is trivially 0 or 1 (running
    statistics positive where they must be: the op's `positive_params`)."""
    rng = np.random.default_rng(seed)
    positive = {
        f"{n.name}.{p}" for n in checked.graph.nodes for p in REGISTRY[n.op].positive_params
    }
    out = {}
    for k, v in initial_weights(checked.graph, seed).items():
        if v.dtype.kind == "f":
            scale = 0.2 * float(v.std()) if v.size > 1 and v.std() > 0 else 0.1
            v = v + rng.normal(0, scale, v.shape).astype(np.float32)
            if k in positive:
                v = np.abs(v) + 0.5
        out[k] = v
    return out


def _run_all(checked: Checked, feeds: dict[str, np.ndarray], seed: int = 0):  # noqa: ANN202
    weights = _weights(checked, seed)
    module = to_torch(checked.graph, weights).eval()
    with torch.no_grad():
        result = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    names = [n for n, _ in checked.graph.outputs]
    ours = result if isinstance(result, dict) else {names[0]: result}
    model = to_onnx(checked.graph, weights)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds),
                      strict=True))  # fmt: skip
    return names, {k: v.numpy() for k, v in ours.items()}, theirs, model


def _close(a: np.ndarray, b: np.ndarray, atol: float = ATOL) -> None:
    """Within RTOL of the output's scale (its largest magnitude) plus ATOL: elementwise
    relative error is meaningless where a float32 sum of hundreds of terms cancels."""
    scale = float(np.abs(b).max(initial=0.0))
    np.testing.assert_allclose(a, b, rtol=0, atol=atol + RTOL * scale)


CASES = [(name, e) for name, opdef in REGISTRY.items() for e in opdef.examples if e.parity]


@pytest.mark.parametrize(("op", "example"), CASES,
                         ids=[f"{c[0]}:{c[1].layer}:{c[1].shape}" for c in CASES])  # fmt: skip
def test_op_parity_torch_onnxruntime_reference(op: str, example: Example) -> None:
    checked = checked_example(example)
    rng = np.random.default_rng(1)
    for batch in (1, 3):
        feeds = sample_inputs(checked, batch, rng)
        names, ours, theirs, model = _run_all(checked, feeds)
        for name in names:
            assert ours[name].shape == _inferred(checked, feeds, name), name
            _close(ours[name], theirs[name])
    # onnx's reference evaluator is numpy: its float32 matmul sums in another order, so a
    # 784-term dot product that nearly cancels differs by ~1e-6 absolute from onnxruntime.
    reference = ReferenceEvaluator(model).run(None, feeds)
    for name, value in zip([o.name for o in model.graph.output], reference, strict=True):
        _close(np.asarray(value), theirs[name], atol=1e-5)


def _inferred(checked: Checked, feeds: dict[str, np.ndarray], output: str) -> tuple[int, ...]:
    """The output's inferred shape, its symbolic dims evaluated with the sizes the
    inputs' symbols got in `feeds`: what torch must actually produce."""
    env: dict[str, int] = {}
    for i in checked.graph.inputs:  # solve each input dim for its one unknown symbol
        for k, d in enumerate(i.type.shape):
            unknown = [s for s in free_symbols(d) if s not in env] if is_sym(d) else []
            for n in range(1, feeds[i.name].shape[k] + 1) if len(unknown) == 1 else ():
                if evaluate(d, {**env, unknown[0]: n}) == feeds[i.name].shape[k]:
                    env[unknown[0]] = n
                    break
    value = dict(checked.graph.outputs)[output]
    return tuple(evaluate(d, env) for d in checked.graph.types()[value].shape)


@pytest.mark.parametrize("path", SPECS, ids=[p.stem for p in SPECS])
def test_spec_parity(path) -> None:  # noqa: ANN001
    checked = check_file(path)
    feeds = sample_inputs(checked, 5, np.random.default_rng(2))
    names, ours, theirs, _ = _run_all(checked, feeds, seed=3)
    for name in names:
        assert ours[name].shape == _inferred(checked, feeds, name), name
        _close(ours[name], theirs[name])


def test_the_rule_tables_cover_exactly_the_registry_ops() -> None:
    ops = {name for name, opdef in REGISTRY.items() if opdef.kind == "op"}
    assert set(TORCH_RULES) == ops
    # an op that is the identity at inference is no node of the ONNX graph: no rule
    assert set(ONNX_RULES) == {name for name in ops if not REGISTRY[name].inference_identity}


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_each_family_has_its_folder_and_lowers_its_ops_once(backend: str) -> None:
    seen: dict[str, str] = {}
    for family in FAMILIES:
        folder = ROOT / "compiler" / "ops" / family
        assert {"__init__.py", "torch.py", "onnx.py"} <= {p.name for p in folder.iterdir()}
        table = import_module(f"dlc.compiler.ops.{family}.{backend}")
        rules = table.TORCH_RULES if backend == "torch" else table.ONNX_RULES
        for op in rules:
            assert op not in seen, f"{op} is lowered by {seen[op]} and {family}"
            seen[op] = family


# -- parameters: the same names and shapes as the equivalent torch.nn module ----------

TORCH_CASES = [(name, e) for name, d in REGISTRY.items() for e in d.examples if e.torch is not None]


@pytest.mark.parametrize(("op", "example"), TORCH_CASES, ids=[c[1].layer for c in TORCH_CASES])
def test_param_count_matches_torch(op: str, example: Example) -> None:
    assert example.torch is not None
    m = eval(example.torch, {"nn": torch.nn, "torch": torch})  # noqa: S307 - our own text
    checked = checked_example(example)
    assert checked.graph.num_params == sum(p.numel() for p in m.parameters())
    node = checked.graph.nodes[0]
    assert node.op == op
    ours = {p.name: p.shape for p in node.params}
    theirs = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert ours == theirs  # same names and shapes: weights move by name
