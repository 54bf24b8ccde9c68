"""The torch pieces of the basis functions: polynomial and Fourier features, RBF units.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
Parameter and buffer names are the IR's (`ParamSpec.name`).
"""

from __future__ import annotations

import torch
from torch import nn


def polynomial(x: torch.Tensor, degree: int) -> torch.Tensor:
    """[x, x², ..., x^degree] along the last axis."""
    return torch.cat([x**k for k in range(1, degree + 1)], dim=-1)


def fourier(x: torch.Tensor, n: int) -> torch.Tensor:
    """[sin(x), ..., sin(nx), cos(x), ..., cos(nx)] along the last axis."""
    ks = range(1, n + 1)
    return torch.cat([torch.sin(k * x) for k in ks] + [torch.cos(k * x) for k in ks], dim=-1)


class RBF(nn.Module):
    """Gaussian radial basis units: φ_k(x) = exp(-‖x − μ_k‖² / (2σ_k²))."""

    sigma: torch.Tensor

    def __init__(self, features: int, units: int, learn_sigma: bool = True) -> None:
        super().__init__()
        self.centers = nn.Parameter(torch.zeros(units, features))
        sigma = torch.ones(units)
        if learn_sigma:
            self.sigma = nn.Parameter(sigma)
        else:
            self.register_buffer("sigma", sigma)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d2 = (x * x).sum(-1, keepdim=True) - 2 * x @ self.centers.T
        d2 = (d2 + (self.centers * self.centers).sum(-1)).clamp_min(0)
        return torch.exp(-d2 / (2 * self.sigma * self.sigma))
