"""The test cases of the recurrent ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "rnn": (
        Example("rnn(16)", "[B, T, 8]", "[B, T, 16]"),
        Example(
            "rnn(6, layers=2, bidirectional=true, bias=false)",
            "[B, T, 3]",
            "[B, T, 12]",
            torch="nn.RNN(3, 6, 2, bias=False, bidirectional=True)",
        ),
        Example("rnn(8, return=last)", "[B, 5, 4]", "[B, 8]"),
        Example(
            "rnn(16, nonlinearity=relu)",
            "[B, T, 8]",
            "[B, T, 16]",
            torch='nn.RNN(8, 16, nonlinearity="relu")',
            parity=False,
        ),
    ),
    "gru": (
        Example("gru(16)", "[B, T, 8]", "[B, T, 16]"),
        Example("gru(8, layers=2, return=last)", "[B, T, 4]", "[B, 8]", torch="nn.GRU(4, 8, 2)"),
        Example("gru(5, bidirectional=true, return=last)", "[B, 7, 3]", "[B, 10]"),
        Example(
            "gru(5, bidirectional=true)",
            "[B, 7, 3]",
            "[B, 7, 10]",
            torch="nn.GRU(3, 5, bidirectional=True)",
            parity=False,
        ),
    ),
    "lstm": (
        Example("lstm(16)", "[B, T, 8]", "[B, T, 16]", torch="nn.LSTM(8, 16)"),
        Example("lstm(8, layers=2, bidirectional=true, dropout=0.2)", "[B, T, 4]", "[B, T, 16]"),
        Example("lstm(6, layers=2, bidirectional=true, return=last)", "[B, T, 5]", "[B, 12]"),
        Example("lstm(4, bias=false)", "[2, 3, 5]", "[2, 3, 4]"),
        Example(
            "lstm(8, layers=2, bidirectional=true)",
            "[B, T, 4]",
            "[B, T, 16]",
            torch="nn.LSTM(4, 8, 2, bidirectional=True)",
            parity=False,
        ),
        Example(
            "lstm(6, layers=3, bidirectional=true, bias=false, dropout=0.1)",
            "[B, T, 5]",
            "[B, T, 12]",
            torch="nn.LSTM(5, 6, 3, bias=False, bidirectional=True, dropout=0.1)",
            parity=False,
        ),
    ),
}
