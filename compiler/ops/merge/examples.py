"""The test cases of the merge ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read. The ops of
tensor arithmetic are written as a spec writes them, `x * 0.5`, in a one-layer stack
whose input is x (in a stack, a layer operand applies to what flows in: `1 - sigmoid` is
1 - sigmoid(x)). The rows of add and mul use only the core ops that test_lower_onnx has a
numpy reference of."""

from __future__ import annotations

from ..registry import Example, Failure

SE_GATE = "(global_avgpool -> dense(8) -> sigmoid -> reshape([B, 8, 1, 1]))"  # squeeze-excite

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "add": (
        Example("parallel(dense(4), dense(4), merge=add)", "[B, 3]", "[B, 4]"),
        Example("add(identity, relu, tanh)", "[B, 3]", "[B, 3]"),
        Example("x + (flatten -> dense(4) -> reshape([B, 4, 1]))", "[B, 4, 5]", "[B, 4, 5]"),
        Example("x + x", "[B, 3]", "int64[B, 3]", dtype="int64"),
    ),
    "sub": (
        Example("x - relu", "[B, 3]", "[B, 3]"),
        Example("sub(identity, tanh)", "[B, 2, 3]", "[B, 2, 3]"),
        Example("x - (global_avgpool -> reshape([B, 8, 1, 1]))", "[B, 8, 4, 4]", "[B, 8, 4, 4]"),
        Example("x - x", "[B, 3]", "int64[B, 3]", dtype="int64"),
    ),
    "mul": (
        Example("mul(identity, sigmoid)", "[B, 3]", "[B, 3]"),
        Example("mul(identity, sigmoid, tanh)", "[B, 3]", "[B, 3]"),
        Example(
            "x * (flatten -> dense(8) -> sigmoid -> reshape([B, 8, 1, 1]))",
            "[B, 8, 4, 4]",
            "[B, 8, 4, 4]",
        ),
        Example(
            "x * (permute([0, 2, 1]) -> dense(1) -> permute([0, 2, 1]))", "[B, 5, T]", "[B, 5, T]"
        ),
    ),
    "div": (
        Example("x / (1 + sigmoid)", "[B, 3]", "[B, 3]"),
        Example("div(identity, softplus)", "[B, T, 4]", "[B, T, 4]"),
        Example(f"x / (1 + {SE_GATE})", "[B, 8, 4, 4]", "[B, 8, 4, 4]"),
    ),
    "concat": (
        Example("concat(dense(4), dense(2))", "[B, 3]", "[B, 6]"),
        Example("concat(identity, identity, axis=1)", "[B, T, 3]", "[B, 2*T, 3]"),
    ),
    "add_scalar": (
        Example("x + 1", "[B, 3]", "[B, 3]"),
        Example("0.5 + tanh", "[B, T, 3]", "[B, T, 3]"),
        Example("x + 1", "[B, T]", "int64[B, T]", dtype="int64"),
    ),
    "sub_scalar": (
        Example("x - 0.5", "[B, 3]", "[B, 3]"),
        Example("x - 3", "[B, T]", "int32[B, T]", dtype="int32"),
    ),
    "rsub_scalar": (
        Example("1 - sigmoid", "[B, 3]", "[B, 3]"),
        Example("7 - x", "[B, T]", "int64[B, T]", dtype="int64"),
    ),
    "mul_scalar": (
        Example("x * 0.5", "[B, 3]", "[B, 3]"),
        Example("2 * x", "[B, 3]", "[B, 3]"),
        Example("x * (1 / 3)", "[B, 8, 4, 4]", "[B, 8, 4, 4]"),
        Example("x * -2", "[B, T]", "int64[B, T]", dtype="int64"),
    ),
    "div_scalar": (
        Example("x / 4", "[B, 3]", "[B, 3]"),
        Example("tanh / 0.3", "[B, 2, 3]", "[B, 2, 3]"),
    ),
    "rdiv_scalar": (
        Example("2 / (1 + sigmoid)", "[B, 3]", "[B, 3]"),
        Example("1 / (x * x + 1)", "[B, 4, 5]", "[B, 4, 5]"),
    ),
    "neg": (
        Example("-x", "[B, 3]", "[B, 3]"),
        Example("-relu", "[B, T, 3]", "[B, T, 3]"),
        Example("-x", "[B, T]", "int64[B, T]", dtype="int64"),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "add": (Failure("x + dense(4)", "add cannot broadcast [B, 16] and [B, 4]", 1),),
    "sub": (Failure("x - dense(4)", "sub cannot broadcast [B, 16] and [B, 4]: axis -1", 1),),
    "mul": (
        Failure(
            "x * (global_avgpool -> dense(8))",
            "mul cannot broadcast [B, 8, 4, 4] and [B, 8]: axis -2 is 4 and B",
            1,
            "[B, 8, 4, 4]",
        ),
        Failure("relu + x * dense(4)", "mul cannot broadcast [B, 16] and [B, 4]", 8),
    ),
    "div": (
        Failure("x / 0", "division by zero", 5),
        Failure("x / (2 - 2.0)", "division by zero", 5),
        Failure("div(x, relu, tanh)", "div needs 2 tensors, got 3", 1),
    ),
}
