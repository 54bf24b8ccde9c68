"""The torch modules and functions of generative pieces and more normalization.

Like torch_modules.py, this file imports only torch and math: `dlc compile --emit torch`
copies it, verbatim after its imports, into the standalone model.py it writes.
"""

from __future__ import annotations

import math  # noqa: F401

import torch  # noqa: F401
from torch import nn  # noqa: F401
from torch.nn import functional as F  # noqa: F401


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


class GaussianSample(nn.Module):
    """z = μ + exp(½·logvar) ⊙ ε, ε ~ N(0, I): the reparameterization, drawn in training
    (and in eval when `sample`); μ itself in eval otherwise."""

    def __init__(self, sample: bool = False) -> None:
        super().__init__()
        self.sample = sample

    def forward(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not (self.training or self.sample):
            return mu
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
