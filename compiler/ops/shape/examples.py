"""The test cases of the shape ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "flatten": (
        Example("flatten", "[B, 3, 4, 4]", "[B, 48]"),
        Example("flatten", "[B, C, H, W]", "[B, C*H*W]"),
        Example("flatten(start=2)", "[B, T, 4, 2]", "[B, T, 8]"),
    ),
    "reshape": (
        Example("reshape([B, 1, 28, 28])", "[B, 784]", "[B, 1, 28, 28]"),
        Example("reshape([-1, 4, 196])", "[B, 784]", "[B, 4, 196]"),
        Example("reshape([B, T, 2, -1])", "[B, T, 8]", "[B, T, 2, 4]"),
    ),
    "permute": (Example("permute([0, 2, 1])", "[B, T, 8]", "[B, 8, T]"),),
    "slice": (
        Example("slice(1, none, axis=1)", "[B, T, 4]", "[B, T - 1, 4]"),
        Example("slice(0, 3)", "[B, 8]", "[B, 3]"),
        Example("slice(-3, none, axis=1)", "[B, 5, 2]", "[B, 3, 2]"),
        Example("slice(1, 20, step=2)", "[B, 7]", "[B, 3]"),
        Example("slice(-4, -1, axis=2, step=2)", "[B, 3, T + 4, 2]", "[B, 3, 2, 2]"),
        Example("slice(0, -2, axis=1)", "[B, T + 4]", "[B, T + 2]"),
        Example("slice(1, none, axis=0)", "[6, T]", "[5, T]"),
        Example("slice(2, 5, axis=1)", "[B, 8]", "int64[B, 3]", dtype="int64"),
    ),
    "pad": (
        Example("pad([1, 2])", "[B, 5]", "[B, 8]"),
        Example("pad([2, 0], value=-1.5)", "[B, 3, T]", "[B, 3, T + 2]"),
        Example("pad([1, 1, 0, 3])", "[B, C, H, W]", "[B, C, H + 3, W + 2]"),
        Example("pad([0, 0, 1, 1, 2, 0])", "[B, 2, 3, 4]", "[B, 4, 5, 4]"),
        Example("pad([3, 0])", "[B, T]", "int64[B, T + 3]", dtype="int64"),
        Example("pad([2, 1])", "[B, 3, T]", "[B, 3, T + 3]", torch="nn.ConstantPad1d((2, 1), 0.0)"),
        Example(
            "pad([1, 0, 2, 1], value=0.5)",
            "[B, 2, H, W]",
            "[B, 2, H + 3, W + 1]",
            torch="nn.ConstantPad2d((1, 0, 2, 1), 0.5)",
        ),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "slice": (
        Failure(
            "slice(8, none, axis=1)",
            "slice(8, none, axis=1, step=1) starts beyond axis 1 of [B, 8, 2], which has 8 "
            "elements",
            1,
            "[B, 8, 2]",
        ),
        Failure("slice(3, 3)", "slice(3, 3, axis=-1, step=1) is empty on [B, 16]", 1),
        Failure(
            "slice(-1, -3, axis=1)", "slice(-1, -3, axis=1, step=1) is empty on [B, T]", 1, "[B, T]"
        ),
        Failure("slice(0, 2, axis=3)", "axis 3 is out of range for [B, 16] (rank 2)", 1),
        Failure("slice(0, 2, step=0)", "argument 'step': expected an integer >= 1, got 0", 18),
    ),
    "pad": (
        Failure("pad([1, 2, 3])", "pad([1, 2, 3]) has 3 entries, not a (before, after) pair", 1),
        Failure(
            "pad([1, 1, 1, 1, 1, 1])", "pad([1, 1, 1, 1, 1, 1]) pads 3 axes, but [B, 16] has 2", 1
        ),
        Failure("pad([1, -1])", "argument 'pads': expected an integer >= 0, got -1", 5),
    ),
}
