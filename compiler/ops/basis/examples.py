"""The test cases of the basis ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "rbf": (
        Example("rbf(10)", "[B, 2]", "[B, 10]"),
        Example("rbf(4, sigma=0.5, learn_sigma=false)", "[B, T, 3]", "[B, T, 4]"),
    ),
    "polynomial": (
        Example("polynomial(3)", "[B, 2]", "[B, 6]"),
        Example("polynomial(2)", "[B, F]", "[B, 2*F]"),
    ),
    "fourier": (
        Example("fourier(4)", "[B, 1]", "[B, 8]"),
        Example("fourier(2)", "[B, 3]", "[B, 12]"),
    ),
}
