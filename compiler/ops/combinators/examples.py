"""The test cases of the combinators ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "residual": (Example("residual(dense(16) -> relu -> dense(16))", "[B, T, 16]", "[B, T, 16]"),),
    "highway": (Example("highway(dense(8), gate_bias=-1)", "[B, 8]", "[B, 8]"),),
    "repeat": (
        Example("repeat(3, dense(8) -> relu)", "[B, 4]", "[B, 8]"),
        # the index form: copy i has the width 4 * 2**i
        Example("repeat(3, i -> dense(4 * 2**i) -> relu)", "[B, 4]", "[B, 16]"),
        Example(
            "repeat(2, i -> conv2d(4 * (i + 1), 3, stride=2, padding=1) -> relu)",
            "[B, 3, 8, 8]",
            "[B, 8, 2, 2]",
        ),
        Example("repeat(2, i -> repeat(i + 1, j -> dense(6 // (i + j + 1))))", "[B, 4]", "[B, 2]"),
    ),
    "parallel": (Example("parallel(dense(3), dense(5))", "[B, 4]", "[B, 8]"),),
    "stochastic_depth": (
        Example(
            "residual(dense(16) -> relu -> dense(16) -> stochastic_depth(0.2))",
            "[B, T, 16]",
            "[B, T, 16]",
        ),
    ),
    "residual_add": (Example("residual(dense(16) -> relu)", "[B, 16]", "[B, 16]"),),
    "highway_gate": (Example("highway(dense(16) -> relu)", "[B, 16]", "[B, 16]"),),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "repeat": (
        # which copy fails is the note `in repeat copy i = 2` (tests/test_repeat_index.py)
        Failure("repeat(3, i -> dense(16 - 8 * i))", "expected an integer >= 1, got 0", 22),
        Failure("repeat(2, i -> dense(8) -> i)", "'i' is the number 0, not a layer", 28),
        Failure("repeat(2, k -> dense(8))", "repeat's index 'k' is not used in its body", 11),
        Failure("repeat(2, rleu -> dense(8))", "unknown op or block 'rleu' (did you mean", 11),
        Failure("repeat(2, B -> dense(B))", "repeat's index 'B' is also a symbolic dim", 11),
        Failure("repeat(2, true -> dense(8))", "repeat's index 'true' is also a constant", 11),
        Failure(
            "repeat(2, i -> repeat(2, i -> dense(8 * i)))",
            "repeat's index 'i' is also the index of an enclosing repeat",
            26,
        ),
    ),
}
