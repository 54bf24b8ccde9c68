"""The torch module of drop_path (what stochastic_depth becomes).

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth on a residual branch (torchvision.ops.stochastic_depth): in
    training, each sample's branch (mode="row"), or the whole batch's (mode="batch"), is
    zeroed with probability p and the survivors scaled by 1/(1 - p); the identity in eval."""

    def __init__(self, p: float, mode: str = "row") -> None:
        super().__init__()
        self.p = p
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        survival = 1.0 - self.p
        size = [x.shape[0]] + [1] * (x.ndim - 1) if self.mode == "row" else [1] * x.ndim
        noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival)
        if survival > 0.0:
            noise.div_(survival)
        return x * noise
