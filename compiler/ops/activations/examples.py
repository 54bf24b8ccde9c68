"""The test cases of the activations ops: examples (shapes, the equivalent torch.nn module as
text) and error cases, which the OpDefs carry and the table-driven tests read."""

from __future__ import annotations

from ..registry import Example, Failure

EXAMPLES: dict[str, tuple[Example, ...]] = {
    "identity": (Example("identity", "[B, T, 7]", "[B, T, 7]"),),
    "step": (Example("step", "[B, 3]", "[B, 3]"),),
    "sigmoid": (Example("sigmoid", "[B, 3]", "[B, 3]"),),
    "tanh": (Example("tanh", "[B, T, 3]", "[B, T, 3]"),),
    "lecun_tanh": (Example("lecun_tanh", "[B, 3]", "[B, 3]"),),
    "soboleva_tanh": (
        Example("soboleva_tanh(1, 1, 1, 1)", "[B, 3]", "[B, 3]"),
        Example("soboleva_tanh(a=2, d=0.5)", "[4, 3]", "[4, 3]"),
    ),
    "relu": (
        Example("relu", "[B, 3, 8, 8]", "[B, 3, 8, 8]"),
        Example("relu", "[B, 8]", "[B, 8]", torch="nn.ReLU()", parity=False),
    ),
    "leaky_relu": (Example("leaky_relu(slope=0.2)", "[B, 3]", "[B, 3]"),),
    "gelu": (
        Example("gelu", "[B, 3]", "[B, 3]"),
        Example("gelu(approximate=tanh)", "[B, 3]", "[B, 3]"),
    ),
    "elu": (Example("elu(alpha=0.5)", "[B, 3]", "[B, 3]"),),
    "hardtanh": (
        Example("hardtanh", "[B, 3]", "[B, 3]"),
        Example("hardtanh(0, 6)", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example("hardtanh(min=-0.5, max=0.25)", "[B, T, 5]", "[B, T, 5]"),
        Example("hardtanh(-2, 2)", "[B, 4]", "[B, 4]", torch="nn.Hardtanh(-2, 2)", parity=False),
    ),
    "relu6": (
        Example("relu6", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example("relu6", "[B, 8]", "[B, 8]", torch="nn.ReLU6()", parity=False),
    ),
    "hardsigmoid": (
        Example("hardsigmoid", "[B, T, 4]", "[B, T, 4]"),
        Example("hardsigmoid", "[B, 8]", "[B, 8]", torch="nn.Hardsigmoid()", parity=False),
    ),
    "hardswish": (
        Example("hardswish", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example("hardswish", "[B, 8]", "[B, 8]", torch="nn.Hardswish()", parity=False),
    ),
    "mish": (
        Example("mish", "[B, T, 5]", "[B, T, 5]"),
        Example("mish", "[B, 8]", "[B, 8]", torch="nn.Mish()", parity=False),
    ),
    "clamp": (
        Example("clamp(0, 1)", "[B, 3]", "[B, 3]"),
        Example("clamp(min=-0.5)", "[B, T, 4]", "[B, T, 4]"),
        Example("clamp(max=0.25)", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example("clamp(min=none, max=0.5)", "[4, 3]", "[4, 3]"),
    ),
    "selu": (Example("selu", "[B, 3]", "[B, 3]"),),
    "silu": (Example("silu", "[B, 3]", "[B, 3]"),),
    "gaussian": (Example("gaussian", "[B, 3]", "[B, 3]"),),
    "softplus": (Example("softplus", "[B, 3]", "[B, 3]"),),
    "prelu": (
        Example("prelu", "[B, 3]", "[B, 3]"),
        Example("prelu(num_parameters=3)", "[B, 3, H, W]", "[B, 3, H, W]"),
        Example("prelu", "[B, 8]", "[B, 8]", torch="nn.PReLU()", parity=False),
        Example(
            "prelu(num_parameters=3)",
            "[B, 3, 4, 4]",
            "[B, 3, 4, 4]",
            torch="nn.PReLU(3)",
            parity=False,
        ),
    ),
    "softmax": (
        Example("softmax", "[B, 10]", "[B, 10]"),
        Example("softmax(axis=1)", "[B, T, 5]", "[B, T, 5]"),
    ),
    "log_softmax": (Example("log_softmax(axis=-1)", "[B, 10]", "[B, 10]"),),
    "maxout": (
        Example("maxout(2)", "[B, 8]", "[B, 4]", torch="nn.Identity()"),
        Example("maxout(8)", "[B, 8]", "[B, 1]"),
        Example("maxout(2)", "[B, T*2]", "[B, T]"),
    ),
}

ERRORS: dict[str, tuple[Failure, ...]] = {
    "hardtanh": (
        Failure("hardtanh(1, -1)", "hardtanh clips to [min, max], but min=1 is not below max", 1),
        Failure("hardtanh(max=true)", "argument 'max': expected a number, got boolean true", 14),
    ),
    "clamp": (
        Failure("clamp", "clamp needs a bound, but neither min nor max is given", 1),
        Failure("clamp(min=none)", "clamp needs a bound, but neither min nor max is given", 1),
        Failure("clamp(1, -1)", "clamp clips to [min, max], but min=1 is not below max=-1", 1),
        Failure("clamp(0.5, 0.5)", "but min=0.5 is not below max=0.5", 1),
        Failure("clamp(max=true)", "argument 'max': expected a number or none, got boolean", 11),
        Failure("clamp(min='low')", "expected a number or none, got string 'low'", 11),
    ),
    "mish": (Failure("mish(beta=2)", "mish has no argument 'beta'", 6),),
    "relu6": (Failure("relu6(6)", "relu6 takes 0 positional arguments, got 1", 7),),
    "gelu": (
        Failure("gelu(approximate=fast)", "expected one of none, tanh, got string 'fast'", 18),
    ),
}
