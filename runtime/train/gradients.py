"""`training: {log_gradients: true}`: each layer's gradient norm, logged once per epoch.

A layer is an IR node with trainable parameters (a dense, a conv, an LSTM, a norm's
scale and shift); its norm is the L2 norm of the gradient of all its parameters together,
the figure `dlc lint --probe` reports at init. Every optimizer step adds each layer's norm
to a running sum on the training device (one `torch._foreach_norm` over the gradients, an
`index_add_` and a sum: no device sync, ~20 µs a step on a CPU); the epoch's metrics row
gets the mean over its steps, `"grad_norms": {layer: value}` in metrics.jsonl, and
curves.png a panel of them.

The mean over the epoch's steps, not the last step's: one step's norm is as noisy as its
batch, and a mean shows the trend an epoch at a time. Under fp16 loss scaling, a step
whose norm is not finite (the scale overflowed; GradScaler skips the step) is left out of
the mean.

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

    def __init__(
        self, model: nn.Module, graph: Graph, device: torch.device, *, guard: bool = False
    ) -> None:
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
        self.norms = torch.zeros(len(self.names), device=device)  # one step's, reused
        self.sums = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        # steps counted per layer only when some are left out (no .grad, not finite)
        self.counts = torch.zeros(len(self.names), dtype=torch.float64, device=device)
        self.steps = 0  # steps where every layer counted
        # only fp16 loss scaling leaves non-finite gradients behind a finite loss (the
        # step is skipped); in fp32 and bf16 a non-finite loss stops the run before this
        self.guard = guard

    def record(self) -> None:
        """Add this step's norms (the gradients now in `.grad`) to the epoch's sums."""
        grads = [p.grad for p in self.params]
        present = [g for g in grads if g is not None]
        owner = self.owner
        if len(present) < len(grads):  # a parameter the loss did not reach
            if not present:
                return
            kept = [i for i, g in enumerate(grads) if g is not None]
            owner = owner[torch.tensor(kept, device=owner.device)]
        squares = torch.stack(torch._foreach_norm(present)).square_()
        norms = self.norms.zero_().index_add_(0, owner, squares).sqrt_()
        if owner is not self.owner:
            reached = torch.zeros_like(self.counts).index_fill_(0, owner, 1.0)
            self.sums += norms
            self.counts += reached
        elif self.guard:
            finite = torch.isfinite(norms)
            self.sums += torch.where(finite, norms, 0.0)
            self.counts += finite
        else:
            self.sums += norms
            self.steps += 1

    def epoch_values(self) -> dict[str, float]:
        """Each layer's mean norm over the steps recorded since the last call, and a new
        epoch's sums."""
        counts = (self.counts + self.steps).tolist()
        means = (self.sums / (self.counts + self.steps).clamp_min(1)).tolist()
        self.sums.zero_()
        self.counts.zero_()
        self.steps = 0
        return {n: m for n, m, c in zip(self.names, means, counts, strict=True) if c > 0}
