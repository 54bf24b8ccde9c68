"""The test cases of the shape ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

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
}
