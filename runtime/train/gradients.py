"""`training: {log_gradients: true}`: each layer's gradient norm, logged once per epoch.

A layer is an IR node with trainable parameters (a dense, a conv, an LSTM, a norm's
scale and shift); its norm is the L2 norm of the gradient of all its parameters together,
the figure `dlc lint --probe` reports at init. Every optimizer step adds each layer's norm
to a running sum on the training device (one `torch._foreach_norm` over the gradients and
one `index_add_`, no device sync); the epoch's metrics row gets the mean over its steps,
`"grad_norms": {layer: value}` in metrics.jsonl, and curves.png a panel of them.

The mean over the epoch's steps, not the last step's: one step's norm is as noisy as its
batch, and a mean shows the trend an epoch at a time. A step whose norm is not finite
(fp16 loss scaling overflows now and then; the step is skipped) is left out of the mean.

Gradients are read after backward, unscaled (fp16) and before clipping: the gradient the
loss gives, not the clipped update. Optimizers that step on a closure (lbfgs) log the
gradient of the closure's last call; the functional ones (newton) have no `.grad`, so
their rows have no grad_norms. With log_gradients off nothing here runs: the step tests
one attribute against None.
"""

from __future__ import annotations

import torch
from torch import nn

from ...compiler.ir import Graph

ROW_KEY = "grad_norms"


class GradientLog:
    """Per-layer gradient norms of the steps of one epoch, summed on `device`."""

    def __init__(self, model: nn.Module, graph: Graph, device: torch.device) -> None:
        self.names: list[str] = []
        self.params: list[nn.Parameter] = []
        owner: list[int] = []
        live = graph.live()
        for node in graph.nodes:
            if node.name not in live:
                continue
            found = []
            for p in node.params:
                if p.trainable:
                    try:
                        found.append(model.get_parameter(f"{node.name}.{p.name}"))
                    except AttributeError:  # a weight another node owns (tie=)
                        continue
            if found:
                owner += [len(self.names)] * len(found)
                self.names.append(node.name)
                self.params += found
        self.owner = torch.tensor(owner, dtype=torch.long, device=device)
        self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        self.counts = torch.zeros(len(self.names), dtype=torch.float64, device=device)

    def record(self) -> None:
        """Add this step's norms (the gradients now in `.grad`) to the epoch's sums."""
        present = [(i, p.grad) for i, p in enumerate(self.params) if p.grad is not None]
        if not present:
            return
        grads = [g for _, g in present]
        squares = torch.stack(torch._foreach_norm(grads)).double().square()
        owner = self.owner
        if len(present) < len(self.params):  # a parameter the loss did not reach
            owner = owner[torch.tensor([i for i, _ in present], device=owner.device)]
        norms = torch.zeros_like(self.sums).index_add_(0, owner, squares).sqrt_()
        finite = torch.isfinite(norms)
        self.sums += torch.where(finite, norms, 0.0)
        self.counts += finite

    def epoch_values(self) -> dict[str, float]:
        """Each layer's mean norm over the steps recorded since the last call, and a new
        epoch's sums."""
        if not bool((self.counts > 0).any()):
            return {}
        means = (self.sums / self.counts.clamp_min(1)).tolist()
        seen = (self.counts > 0).tolist()
        self.sums.zero_()
        self.counts.zero_()
        return {n: m for n, m, s in zip(self.names, means, seen, strict=True) if s}
