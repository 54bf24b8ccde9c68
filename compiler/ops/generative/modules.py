"""The torch module of gaussian_sample, the reparameterization of a VAE.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn


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
