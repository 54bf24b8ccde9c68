"""The torch module of highway's gate.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn


class HighwayGate(nn.Module):
    """y = T ⊙ h + (1 − T) ⊙ x with the transform gate T = sigmoid(W_T x + b_T)."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(features, features))
        self.bias = nn.Parameter(torch.zeros(features))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(nn.functional.linear(x, self.weight, self.bias))
        return x + t * (h - x)
