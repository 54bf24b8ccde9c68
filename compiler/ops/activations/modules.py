"""The torch functions of the activations that torch has no function for.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch


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
