"""The test cases of the merge ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "add": (
        Example("parallel(dense(4), dense(4), merge=add)", "[B, 3]", "[B, 4]"),
        Example("add(identity, relu, tanh)", "[B, 3]", "[B, 3]"),
    ),
    "mul": (
        Example("mul(identity, sigmoid)", "[B, 3]", "[B, 3]"),
        Example("mul(identity, sigmoid, tanh)", "[B, 3]", "[B, 3]"),
    ),
    "concat": (
        Example("concat(dense(4), dense(2))", "[B, 3]", "[B, 6]"),
        Example("concat(identity, identity, axis=1)", "[B, T, 3]", "[B, 2*T, 3]"),
    ),
}
