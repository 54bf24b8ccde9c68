"""The torch pieces dlc's ops need beyond torch.nn: plain functions and small modules.

This file imports only torch and math: `dlc compile --emit torch` copies it, verbatim,
into the standalone model.py it writes. Parameter and buffer names are the IR's
(`ParamSpec.name`), so state_dict keys match the ONNX initializers.
"""

from __future__ import annotations

import torch
from torch import nn


def cat(*xs: torch.Tensor, dim: int) -> torch.Tensor:
    """torch.cat of the arguments (fx passes a node's inputs one by one)."""
    return torch.cat(xs, dim=dim)


def add(*xs: torch.Tensor) -> torch.Tensor:
    """The sum of two or more tensors (broadcasting)."""
    out = xs[0]
    for x in xs[1:]:
        out = out + x
    return out


def mul(*xs: torch.Tensor) -> torch.Tensor:
    """The product of two or more tensors (broadcasting)."""
    out = xs[0]
    for x in xs[1:]:
        out = out * x
    return out


def step(x: torch.Tensor) -> torch.Tensor:
    return (x >= 0).to(x.dtype)


def lecun_tanh(x: torch.Tensor) -> torch.Tensor:
    return 1.7159 * torch.tanh(x * (2.0 / 3.0))


def soboleva_tanh(x: torch.Tensor, a: float, b: float, c: float, d: float) -> torch.Tensor:
    return (torch.exp(a * x) - torch.exp(-b * x)) / (torch.exp(c * x) + torch.exp(-d * x))


def gaussian(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(-x * x)


def maxout(x: torch.Tensor, pieces: int) -> torch.Tensor:
    """The max over groups of `pieces` consecutive features of the last axis."""
    return x.unflatten(-1, (x.shape[-1] // pieces, pieces)).amax(dim=-1)


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


class Standardize(nn.Module):
    """(x − shift) / scale, or (x − shift) Wᵀ for ZCA; fitted on the training data."""

    shift: torch.Tensor
    scale: torch.Tensor
    whiten: torch.Tensor

    def __init__(self, features: int, method: str = "zscore") -> None:
        super().__init__()
        self.method = method
        self.register_buffer("shift", torch.zeros(features))
        if method == "zca":
            self.register_buffer("whiten", torch.eye(features))
        else:
            self.register_buffer("scale", torch.ones(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "zca":
            return (x - self.shift) @ self.whiten.T
        return (x - self.shift) / self.scale


class HighwayGate(nn.Module):
    """y = T ⊙ h + (1 − T) ⊙ x with the transform gate T = sigmoid(W_T x + b_T)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(features, features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(nn.functional.linear(x, self.weight, self.bias))
        return x + t * (h - x)
