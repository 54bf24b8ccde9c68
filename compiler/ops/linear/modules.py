"""The torch modules of a tied dense layer (`dense(tie=emb)`) and of a weight-normalized
one (`dense(weight_norm=true)`).

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TiedLinear(nn.Module):
    """y = x Eᵀ + b, where E [units, features] is another layer's weight (an embedding's
    table) that the caller passes in, so the model holds it once; the bias is this one's."""

    def __init__(self, units: int, bias: bool = True) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(units)) if bias else None

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight, self.bias)


class WeightNormLinear(nn.Linear):
    """nn.Linear wrapped by torch.nn.utils.parametrizations.weight_norm (dim 0): its
    weight is g·v/‖v‖, its state_dict holds g (`parametrizations.weight.original0`,
    [out, 1]) and v (`...original1`), and g starts at ‖v‖, so the weight starts as v."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__(in_features, out_features, bias=bias)
        nn.utils.parametrizations.weight_norm(self)
