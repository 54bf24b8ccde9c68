"""The torch modules and functions of recurrent nets.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.

SeqRNN, SeqGRU and SeqLSTM *are* nn.RNN, nn.GRU and nn.LSTM (subclasses, batch first),
so their state_dict is torch's own, key for key; they only choose what forward returns.
"""

from __future__ import annotations

import torch
from torch import nn


def recurrent_output(
    out: torch.Tensor, h_n: torch.Tensor, bidirectional: bool, last: bool
) -> torch.Tensor:
    """The sequence `out` [B, T, D·H], or with `last` the top layer's final hidden state of
    each direction, h_n[-D:] of [layers·D, B, H], as [B, D·H] (forward's first)."""
    if not last:
        return out
    top = h_n[-2:] if bidirectional else h_n[-1:]
    return top.transpose(0, 1).reshape(top.shape[1], -1)


# forward returns one tensor where torch's returns (output, state), and the arguments pass
# through to the torch class after _Seq in the MRO: hence the ignores.
class _Seq(nn.RNNBase):
    """What SeqRNN and SeqGRU add to their torch class (the second base): batch_first=True,
    and forward returns the outputs or (`last`) the final state."""

    def __init__(self, *args, last: bool = False, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, batch_first=True, **kwargs)  # type: ignore[misc]
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, h_n = super().forward(x)
        return recurrent_output(out, h_n, self.bidirectional, self.last)


class SeqRNN(_Seq, nn.RNN):  # type: ignore[misc]
    """nn.RNN with batch_first=True, returning its outputs or (`last`) its final state."""


class SeqGRU(_Seq, nn.GRU):  # type: ignore[misc]
    """nn.GRU with batch_first=True, returning its outputs or (`last`) its final state."""


class SeqLSTM(nn.LSTM):
    """nn.LSTM with batch_first=True, returning its outputs or (`last`) its final hidden
    state (not the cell state)."""

    def __init__(self, *args, last: bool = False, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, batch_first=True, **kwargs)
        self.last = last

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        out, (h_n, _) = super().forward(x)
        return recurrent_output(out, h_n, self.bidirectional, self.last)
