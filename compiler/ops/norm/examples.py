"""The test cases of the norm ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "dropout": (
        Example("dropout(0.3)", "[B, 3]", "[B, 3]"),
        Example("dropout", "[B, T, 3]", "[B, T, 3]"),
        Example("dropout(0.5)", "[B, 8]", "[B, 8]", torch="nn.Dropout(0.5)", parity=False),
    ),
    "drop_path": (
        Example(
            "residual(groupnorm(2) -> stochastic_depth(0.1, mode=batch))",
            "[B, 4, H, W]",
            "[B, 4, H, W]",
        ),
        Example("residual(stochastic_depth(0.5))", "[B, 3]", "[B, 3]"),
    ),
    "batchnorm": (
        Example("batchnorm", "[B, 16]", "[B, 16]", torch="nn.BatchNorm1d(16)"),
        Example("batchnorm", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example(
            "batchnorm(affine=false)",
            "[B, 6, H, W]",
            "[B, 6, H, W]",
            torch="nn.BatchNorm2d(6, affine=False)",
            parity=False,
        ),
        Example("batchnorm", "[B, 4, T]", "[B, 4, T]", torch="nn.BatchNorm1d(4)", parity=False),
        Example(
            "batchnorm(momentum=0.2, eps=0.001)",
            "[B, 3, H, W]",
            "[B, 3, H, W]",
            torch="nn.BatchNorm2d(3, eps=1e-3, momentum=0.2)",
            parity=False,
        ),
    ),
    "layernorm": (
        Example("layernorm", "[B, T, 32]", "[B, T, 32]", torch="nn.LayerNorm(32)"),
        Example("layernorm(eps=1e-12)", "[B, 6]", "[B, 6]"),
        Example(
            "layernorm(eps=1e-12, affine=false)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.LayerNorm(8, eps=1e-12, elementwise_affine=False)",
            parity=False,
        ),
    ),
    "rmsnorm": (
        Example("rmsnorm", "[B, T, 32]", "[B, T, 32]", torch="nn.RMSNorm(32)"),
        Example("rmsnorm", "[B, 6]", "[B, 6]"),
        Example("rmsnorm(eps=1e-6)", "[B, T, 8]", "[B, T, 8]"),
        Example("rmsnorm(affine=false)", "[2, 3, 5]", "[2, 3, 5]"),
        Example("rmsnorm(0.001, false)", "[B, 4, H, 6]", "[B, 4, H, 6]"),
        Example("rmsnorm(eps=none)", "[B, 5]", "float64[B, 5]", dtype="float64"),
        Example(
            "rmsnorm(eps=1e-6, affine=false)",
            "[B, T, 16]",
            "[B, T, 16]",
            torch="nn.RMSNorm(16, eps=1e-6, elementwise_affine=False)",
            parity=False,
        ),
    ),
    "groupnorm": (
        Example("groupnorm(4)", "[B, 8, H, W]", "[B, 8, H, W]", torch="nn.GroupNorm(4, 8)"),
        Example("groupnorm(1, affine=false)", "[B, 6, T]", "[B, 6, T]"),
        Example("groupnorm(3, eps=0.001)", "[B, 6]", "[B, 6]"),
        Example("groupnorm(2)", "[2, 4, 3, 5]", "[2, 4, 3, 5]"),
        Example("groupnorm(6)", "[B, 6, 2, H, W]", "[B, 6, 2, H, W]"),
        Example(
            "groupnorm(2, affine=false)",
            "[B, 6, T]",
            "[B, 6, T]",
            torch="nn.GroupNorm(2, 6, affine=False)",
            parity=False,
        ),
        Example(
            "groupnorm(1, eps=0.001)",
            "[B, 5]",
            "[B, 5]",
            torch="nn.GroupNorm(1, 5, eps=1e-3)",
            parity=False,
        ),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "dropout": (Failure("dropout(1.5)", "expected a probability in [0, 1), got 1.5", 9),),
    "rmsnorm": (
        Failure(
            "rmsnorm(eps=0)", "argument 'eps': expected a number > 0 or none, got number 0", 13
        ),
        Failure("rmsnorm(affine=1)", "argument 'affine': expected true or false, got number 1", 16),
        Failure("rmsnorm", "needs a known number of features on the last axis", 1, "[B, F]"),
        Failure("rmsnorm(beta=1)", "rmsnorm has no argument 'beta'", 9),
    ),
}
