"""The torch modules and functions of convolution and pooling.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class CausalConv1d(nn.Conv1d):
    """nn.Conv1d (its weight and bias) over [B, C, T] padded dilation·(kernel - 1) on the
    left only: output t sees the inputs up to t, and stride 1 keeps T."""

    def __init__(
        self,
        channels: int,
        filters: int,
        kernel: tuple[int],
        stride: tuple[int] = (1,),
        dilation: tuple[int] = (1,),
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__(
            channels, filters, kernel, stride=stride, dilation=dilation, groups=groups, bias=bias
        )
        self.left = self.dilation[0] * (self.kernel_size[0] - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, (self.left, 0)))


class _WeightNormed(nn.Module):
    """A conv module wrapped by torch.nn.utils.parametrizations.weight_norm (dim 0) as it
    is built: its weight is g·v/‖v‖, its state_dict holds g
    (`parametrizations.weight.original0`, [weight.shape[0], 1, ...]) and v (`...original1`),
    and g starts at ‖v‖, so the weight starts as v. The first base of a conv class."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        nn.utils.parametrizations.weight_norm(self)


class WeightNormConv1d(_WeightNormed, nn.Conv1d):
    """nn.Conv1d with weight_norm."""


class WeightNormConv2d(_WeightNormed, nn.Conv2d):
    """nn.Conv2d with weight_norm."""


class WeightNormConvTranspose2d(_WeightNormed, nn.ConvTranspose2d):
    """nn.ConvTranspose2d with weight_norm (dim 0, torch's default: g per input channel)."""


class WeightNormCausalConv1d(_WeightNormed, CausalConv1d):
    """CausalConv1d with weight_norm: the convolution of a temporal CNN's residual block."""


def global_avgpool(x: torch.Tensor) -> torch.Tensor:
    """The mean over every axis after the channels: [B, C, ...] -> [B, C]."""
    return x.flatten(2).mean(-1)


def global_maxpool(x: torch.Tensor) -> torch.Tensor:
    """The maximum over every axis after the channels: [B, C, ...] -> [B, C]."""
    return x.flatten(2).amax(-1)
