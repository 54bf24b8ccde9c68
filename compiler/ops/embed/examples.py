"""The test cases of the embed ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "embedding": (
        Example("embedding(10, 4)", "[B, T]", "[B, T, 4]", dtype="int64"),
        Example("embedding(8, 6, padding_idx=0)", "[2, 5]", "[2, 5, 6]", dtype="int64"),
        Example("embedding(12, 3, padding_idx=-1)", "[B, 7]", "[B, 7, 3]", dtype="int32"),
        Example(
            "embedding(100, 16)",
            "[B, T]",
            "[B, T, 16]",
            dtype="int64",
            torch="nn.Embedding(100, 16)",
            parity=False,
        ),
        Example(
            "embedding(50, 8, padding_idx=0)",
            "[B, T]",
            "[B, T, 8]",
            dtype="int64",
            torch="nn.Embedding(50, 8, padding_idx=0)",
            parity=False,
        ),
    ),
    "positional_encoding": (
        Example("positional_encoding", "[B, T, 8]", "[B, T, 8]", torch="nn.Identity()"),
        Example("positional_encoding(max_len=6)", "[B, 6, 7]", "[B, 6, 7]"),
        Example("positional_encoding(kind=learned, max_len=16)", "[B, T, 8]", "[B, T, 8]"),
        Example(
            "positional_encoding(kind=learned, max_len=9, dropout=0.1)", "[2, 5, 4]", "[2, 5, 4]"
        ),
        Example(
            "positional_encoding(kind=learned, max_len=64)",
            "[B, T, 8]",
            "[B, T, 8]",
            torch="nn.Embedding(64, 8)",
            parity=False,
        ),
    ),
    "timestep_embedding": (
        Example("timestep_embedding(8)", "[B]", "[B, 8]", dtype="int64", torch="nn.Identity()"),
        Example("timestep_embedding(6, max_period=100)", "[B, 1]", "[B, 6]", dtype="int32"),
        Example("timestep_embedding(4)", "[3]", "[3, 4]"),
        Example("timestep_embedding(16, max_period=1000)", "[B, 1]", "[B, 16]"),
    ),
    "patch_embed": (
        Example("patch_embed(4, 16)", "[B, 3, 8, 12]", "[B, 6, 16]"),
        Example("patch_embed(2, 5)", "[B, 1, H, W]", "[B, (H//2)*(W//2), 5]"),
        Example("patch_embed(3, 4)", "[B, 2, 3, W]", "[B, W//3, 4]"),
        Example(
            "patch_embed(4, 16)",
            "[B, 3, 32, 32]",
            "[B, 64, 16]",
            torch="nn.Conv2d(3, 16, 4, stride=4)",
            parity=False,
        ),
    ),
    "cls_token": (
        Example(
            "cls_token",
            "[B, T, 8]",
            "[B, T + 1, 8]",
            torch='nn.ParameterDict({"token": nn.Parameter(torch.zeros(1, 1, 8))})',
        ),
        Example("cls_token", "[2, 5, 4]", "[2, 6, 4]"),
    ),
    "take": (
        Example("take(0)", "[B, T, 8]", "[B, 8]", torch="nn.Identity()"),
        Example("take(-1)", "[B, 5, 8]", "[B, 8]"),
        Example("take(1, axis=-1)", "[B, T, 4]", "[B, T]"),
        Example("take(-1)", "[B, T]", "int64[B]", dtype="int64"),
    ),
    "mean": (
        Example("mean", "[B, T, 8]", "[B, 8]", torch="nn.Identity()"),
        Example("mean(axis=2)", "[B, 3, 4, 5]", "[B, 3, 5]"),
        Example("mean(axis=-1)", "[B, 6]", "[B]"),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "timestep_embedding": (
        Failure("timestep_embedding(7)", "timestep_embedding(dim=7) needs an even dim", 1,
                "[B]"),
        Failure("timestep_embedding(8)", "needs one time step per example, [B] or [B, 1], "
                "got [B, 16]", 1),
        Failure("timestep_embedding(8)", "got [B, 1, 1]", 1, "[B, 1, 1]"),
        Failure("timestep_embedding(0)", "argument 'dim': expected an integer >= 1", 20, "[B]"),
        Failure("timestep_embedding(8, max_period=0)", "expected a number > 0", 34, "[B]"),
    ),
}
