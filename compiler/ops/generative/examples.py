"""The test cases of the generative ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "gaussian_sample": (
        Example("gaussian_sample(dense(4), dense(4))", "[B, 16]", "[B, 4]"),
        Example("gaussian_sample(identity, tanh)", "[B, T, 3]", "[B, T, 3]"),
    ),
}
