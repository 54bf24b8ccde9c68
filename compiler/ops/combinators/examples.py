"""The test cases of the combinators ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "residual": (Example("residual(dense(16) -> relu -> dense(16))", "[B, T, 16]", "[B, T, 16]"),),
    "highway": (Example("highway(dense(8), gate_bias=-1)", "[B, 8]", "[B, 8]"),),
    "repeat": (Example("repeat(3, dense(8) -> relu)", "[B, 4]", "[B, 8]"),),
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
