"""The test cases of the linear ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "dense": (
        Example("dense(128)", "[B, 784]", "[B, 128]", torch="nn.Linear(784, 128)"),
        Example("dense(8)", "[B, T, 4]", "[B, T, 8]"),
        Example("linear(3, bias=false)", "[5, 2]", "[5, 3]"),
        Example(
            "dense(10, bias=false)",
            "[B, 64]",
            "[B, 10]",
            torch="nn.Linear(64, 10, bias=False)",
            parity=False,
        ),
        # weight_norm: torch's parametrization, g and v under its state_dict keys
        Example(
            "dense(8, weight_norm=true)",
            "[B, T, 4]",
            "[B, T, 8]",
            torch="nn.utils.parametrizations.weight_norm(nn.Linear(4, 8))",
        ),
        Example(
            "dense(3, bias=false, weight_norm=true)",
            "[B, 5]",
            "[B, 3]",
            torch="nn.utils.parametrizations.weight_norm(nn.Linear(5, 3, bias=False))",
        ),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "dense": (
        Failure("dense(0)", "argument 'units': expected an integer >= 1, got 0", 7),
        Failure("dense(3.5)", "argument 'units': expected an integer >= 1, got number 3.5", 7),
        Failure("dense(true)", "expected an integer >= 1, got boolean true", 7),
        Failure("dense(4, bias=1)", "expected true or false", 15),
        Failure("dense(units=4, units=5)", "given twice", 16),
        Failure("dense(4, 5, 6, 7, 8, 9, 1)", "dense takes 6 positional arguments, got 7", 25),
        Failure("dense", "dense needs its argument 'units'", 1),
        Failure("dense(4, bais=false)", "dense has no argument 'bais' (did you mean 'bias'?)", 10),
        Failure(
            "dense(4, init=he_nromal)", "unknown init 'he_nromal' (did you mean 'he_normal'?)", 15
        ),
        Failure(
            "dense(4, weight_norm='true')", "argument 'weight_norm': expected true or false", 22
        ),
    ),
}
