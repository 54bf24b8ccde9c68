"""The probe's run (runtime/probe.py says what it measures): the batch, the module at
init, one forward pass that records every node's output, the loss, one backward pass.

The batch is made by the trainer's own code (runtime/train: `Trainer.setup` loads the
data, builds the module with the spec's init and seed and fits its `standardize` layers;
`epoch_order` gives epoch 1's order), so the probe sees what the first step of
`dlc train` sees. Each node's output is read by running the fx module under an
`fx.Interpreter` that knows which IR node each fx node computes (the lowering marks
them, `meta["dlc_node"]`); nothing is traced and the module is the one `dlc train` runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx as fx

from ..compiler.ir import Node
from ..compiler.passes import prune
from ..compiler.pipeline import Checked
from .probe import (
    FULL_BATCH_CAP,
    RANDOM_BATCH,
    RECTIFIERS,
    SATURATION_BAND,
    ProbeRow,
    saturation_bounds,
)

Outputs = dict[str, torch.Tensor]


@dataclass
class ProbeRun:
    rows: list[ProbeRow]
    source: str
    loss: str
    batch: int
    random_inputs: bool


@dataclass
class _Setup:
    model: fx.GraphModule
    inputs: dict[str, torch.Tensor]
    loss: Callable[[Outputs], torch.Tensor]
    source: str
    loss_text: str
    batch: int
    random_inputs: bool = False


def run_probe(checked: Checked, batch_size: int | None, seed: int) -> ProbeRun:
    why = _no_training_data(checked)
    setup = (
        _random_batch(checked, batch_size, seed, why)
        if why
        else _training_batch(checked, batch_size, seed)
    )
    graph, model = checked.graph, setup.model
    nodes = {n.name: n for n in prune(graph).nodes}
    recorder = _Recorder(model, nodes)
    model.train()  # as a training step runs it: dropout on, batchnorm on batch statistics
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    result = recorder.run(*(setup.inputs[i.name] for i in graph.inputs))
    names = [name for name, _ in graph.outputs]
    outputs = result if isinstance(result, dict) else {names[0]: result}
    setup.loss(outputs).backward()
    rows = []
    for node in nodes.values():
        stats = recorder.stats.get(node.name)
        if stats is None and node.inputs and node.inputs[0] in recorder.stats:
            stats = recorder.stats[node.inputs[0]]  # a passthrough (identity) node
        stats = stats or {}
        rows.append(ProbeRow(
            node.name, node.op, tuple(stats.pop("shape", ())), **stats,
            params=node.num_params, grad_norm=grad_norm(model, node), loc=node.loc,
        ))  # fmt: skip
    return ProbeRun(rows, setup.source, setup.loss_text, setup.batch, setup.random_inputs)


def grad_norm(model: torch.nn.Module, node: Node) -> float | None:
    """The L2 norm of the gradient of all of `node`'s trainable parameters together (a
    parameter that got no gradient counts 0); None for a node without any."""
    grads = []
    for p in node.params:
        if not p.trainable:
            continue
        try:
            param = model.get_parameter(f"{node.name}.{p.name}")
        except AttributeError:  # a weight another node owns (tie=)
            continue
        grads.append(param.grad)
    if not grads:
        return None
    total = sum(float(g.detach().double().pow(2).sum()) for g in grads if g is not None)
    return math.sqrt(total)


def output_stats(node: Node, y: torch.Tensor) -> dict[str, Any]:
    """The shape, mean and std of one node's output `y` (its first axis the batch), and
    for relu / saturating ops the zero, dead and saturated fractions."""
    x = y.detach().double()
    out: dict[str, Any] = {"shape": tuple(y.shape), "mean": float(x.mean()),
                           "std": float(x.std(unbiased=False)) if x.numel() else 0.0}  # fmt: skip
    if node.op in RECTIFIERS:
        zero = x == 0
        out["zero"] = float(zero.double().mean())
        # a unit: one position apart from the batch axis; dead when 0 for every example
        out["dead"] = float(zero.all(0).double().mean()) if x.dim() else float(zero)
    bounds = saturation_bounds(node)
    if bounds is not None:
        lo, hi = bounds
        near = (x - lo <= SATURATION_BAND) | (hi - x <= SATURATION_BAND)
        out["saturated"] = float(near.double().mean())
    return out


class _Recorder(fx.Interpreter):
    """Runs the module node by node and keeps the stats of each IR node's output."""

    def __init__(self, module: fx.GraphModule, nodes: dict[str, Node]) -> None:
        super().__init__(module)
        self.nodes = nodes
        self.stats: dict[str, dict[str, Any]] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        node = self.nodes.get(n.meta.get("dlc_node", ""))
        if node is not None and isinstance(out, torch.Tensor) and out.is_floating_point():
            self.stats[node.name] = output_stats(node, out)
        return out


def _no_training_data(checked: Checked) -> str | None:
    """Why the probe cannot use the spec's training data, or None when it can."""
    plan = checked.training
    if plan is None:
        return "the spec has no training section"
    if plan.options.data.train is None:
        return "the spec names no training data"
    if not plan.losses:
        return "the spec's training section has no loss"
    return None


def _training_batch(checked: Checked, batch_size: int | None, seed: int) -> _Setup:
    from .train.diffusion import DiffusionTrainer, trainer_class
    from .train.loop import epoch_order

    spec_path = Path(checked.source.name)
    kind = trainer_class(checked)
    trainer = kind(checked, spec_path, None, device="cpu", quiet=True)
    trainer.opts = replace(trainer.opts, seed=seed)
    run = trainer.setup()
    n = run.train.n
    batch = min(n, batch_size or trainer.opts.batch_size or FULL_BATCH_CAP)
    idx = epoch_order(n, seed, 1, trainer.opts.data.shuffle)[:batch]
    inputs, targets = run.train.take(idx)
    if isinstance(trainer, DiffusionTrainer):  # the denoiser sees x_t and t, and learns ε
        inputs, targets = trainer.noised(inputs[trainer.diffusion.input],
                                         torch.Generator().manual_seed(seed))  # fmt: skip
    fitted = any(node.op == "standardize" for node in checked.graph.nodes)
    plan = trainer.plan
    source = (f"a batch of {batch} from {plan.options.data.train} (the training data"
              f"{', standardize fitted on it' if fitted else ''})")  # fmt: skip
    loss_text = " + ".join(
        (f"{t.weight:g} * " if t.weight != 1 else "") + t.call.name for t in plan.losses
    )

    def loss(outputs: Outputs) -> torch.Tensor:
        return trainer.loss(outputs, targets)

    model = trainer.model
    assert isinstance(model, fx.GraphModule)
    return _Setup(model, inputs, loss, source, loss_text, batch)


def _random_batch(checked: Checked, batch_size: int | None, seed: int, why: str) -> _Setup:
    from ..compiler.lower.initial_weights import initial_weights
    from ..compiler.lower.torch import to_torch
    from .compile import sample_inputs

    torch.manual_seed(seed)
    model = to_torch(checked.graph, initial_weights(checked.graph, seed))
    batch = batch_size or RANDOM_BATCH
    feeds = sample_inputs(checked, batch, np.random.default_rng(seed))
    inputs = {k: torch.from_numpy(v) for k, v in feeds.items()}

    def loss(outputs: Outputs) -> torch.Tensor:
        # Σ y² over every float output: a loss with a gradient everywhere, no target
        terms = [y.double().pow(2).sum() for y in outputs.values() if y.is_floating_point()]
        return torch.stack(terms).sum()

    source = f"a batch of {batch} random inputs ({why}; drawn as `dlc compile --verify` draws them)"
    return _Setup(model, inputs, loss, source, "sum of squares of the outputs", batch, True)
