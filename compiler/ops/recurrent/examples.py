"""The test cases of the recurrent ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

MEAN = "x -> mean(axis=1)"  # a [B, F] summary of the input [B, T, F]: a state's source

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
        Example(f"rnn(6, initial={MEAN} -> dense(6) -> tanh)", "[B, T, 4]", "[B, T, 6]"),
        Example("rnn(4, layers=2, initial=x -> gru(4, layers=2))", "[B, T, 3]", "[B, T, 4]"),
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
        Example(f"gru(8, initial={MEAN} -> dense(8))", "[B, T, 4]", "[B, T, 8]"),
        Example("gru(5, initial=x -> lstm(5), return=last)", "[2, 6, 3]", "[2, 5]"),
        Example(
            "gru(3, layers=2, bidirectional=true, initial=x -> gru(3, layers=2, "
            "bidirectional=true))",
            "[B, T, 4]",
            "[B, T, 6]",
        ),
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
        Example("lstm(6, initial=x -> lstm(6))", "[B, T, 3]", "[B, T, 6]"),
        Example(
            f"lstm(5, bias=false, initial=[{MEAN} -> dense(5), {MEAN} -> dense(5) -> tanh])",
            "[B, T, 4]",
            "[B, T, 5]",
        ),
        Example(
            "lstm(4, layers=2, bidirectional=true, return=last, "
            "initial=x -> lstm(4, layers=2, bidirectional=true, return=last))",
            "[B, T, 3]",
            "[B, 8]",
        ),
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
    # a part of a final state: elaboration makes it from `initial=node` and `node.h`
    "state": (
        Example("gru(4, initial=x -> rnn(4))", "[B, T, 3]", "[B, T, 4]"),
        Example("lstm(4, layers=3, initial=x -> lstm(4, layers=3))", "[B, T, 2]", "[B, T, 4]"),
    ),
}

# The error cases of initial= (the layer text starts at column 1).
ERRORS: dict[str, tuple[Failure, ...]] = {
    "lstm": (
        Failure("lstm(8, initial=x)", "lstm's initial state is 2 tensors (h, c), got 1", 17,
                "[B, T, 8]"),
        Failure("lstm(8, initial=x -> gru(8))", "but gru node 'gru' has no c", 17, "[B, T, 8]"),
        Failure("lstm(4, layers=2, initial=x -> lstm(4))",
                "lstm starts from an initial h of [1, B, 4], but its state is [2, B, 4]", 1,
                "[B, T, 4]"),
    ),
    "gru": (
        Failure("gru(8, initial=[x, x])", "gru's initial state is 1 tensor (h), got 2", 16,
                "[B, T, 8]"),
        Failure("gru(8, initial=x)",
                "gru starts from an initial h of [B, T, 8], but its state is [1, B, 8] or [B, 8]",
                1, "[B, T, 8]"),
        Failure("gru(8, initial=x.h)", "'x.h': input 'x' has no final state", 16, "[B, T, 8]"),
        Failure("gru(8) -> x.h", "'x.h' is a tensor, not a layer", 11, "[B, T, 8]"),
    ),
    "rnn": (
        Failure("rnn(8, initial=x -> mean(axis=1) -> dense(4))",
                "rnn starts from an initial h of [B, 4], but its state is [1, B, 8] or [B, 8]", 1,
                "[B, T, 8]"),
    ),
}  # fmt: skip
