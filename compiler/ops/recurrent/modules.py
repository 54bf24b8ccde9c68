"""The torch modules and functions of recurrent nets.

Like every family's modules.py, this file imports only torch and math: `dlc compile
--emit torch` copies it, verbatim after its imports, into the standalone model.py.

SeqRNN, SeqGRU and SeqLSTM *are* nn.RNN, nn.GRU and nn.LSTM (subclasses, batch first),
so their state_dict is torch's own, key for key; they only choose what forward returns:
the node's value first, then torch's final state h_n (and c_n), which the nodes of a
reference `enc.h` take from the tuple. They may start from a given state (h0, c0).
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


def initial_state(h: torch.Tensor) -> torch.Tensor:
    """A given initial state as torch takes it, [layers·D, B, H]: as it is, or [B, H] of a
    one-layer, one-direction net with that axis added (contiguous, as cuDNN wants)."""
    return (h.unsqueeze(0) if h.dim() == 2 else h).contiguous()


# forward returns (value, h_n) where torch's returns (output, h_n), and the arguments pass
# through to the torch class after _Seq in the MRO: hence the ignores.
class _Seq(nn.RNNBase):
    """What SeqRNN and SeqGRU add to their torch class (the second base): batch_first=True,
    an optional initial state h0, and forward returns (the outputs or, with `last`, the
    final hidden state of each direction; h_n)."""

    def __init__(self, *args, last: bool = False, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, batch_first=True, **kwargs)  # type: ignore[misc]
        self.last = last

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, h0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        out, h_n = super().forward(x, None if h0 is None else initial_state(h0))
        return recurrent_output(out, h_n, self.bidirectional, self.last), h_n


class SeqRNN(_Seq, nn.RNN):  # type: ignore[misc]
    """nn.RNN with batch_first=True: (its outputs or, with `last`, its final state; h_n)."""


class SeqGRU(_Seq, nn.GRU):  # type: ignore[misc]
    """nn.GRU with batch_first=True: (its outputs or, with `last`, its final state; h_n)."""


class SeqLSTM(nn.LSTM):
    """nn.LSTM with batch_first=True and an optional initial state (h0, c0): forward
    returns (its outputs or, with `last`, its final hidden state; h_n; c_n)."""

    def __init__(self, *args, last: bool = False, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, batch_first=True, **kwargs)
        self.last = last

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, h0: torch.Tensor | None = None, c0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        start = None if h0 is None or c0 is None else (initial_state(h0), initial_state(c0))
        out, (h_n, c_n) = super().forward(x, start)
        return recurrent_output(out, h_n, self.bidirectional, self.last), h_n, c_n
