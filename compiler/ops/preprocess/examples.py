"""The test cases of the preprocess ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "standardize": (
        Example("standardize", "[B, 5]", "[B, 5]"),
        Example("standardize(method=zca)", "[B, 5]", "[B, 5]"),
    ),
}
