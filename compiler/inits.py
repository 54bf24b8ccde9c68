"""Init schemes by name, with their signatures (the course's list; biases default to 0).

The numbers are drawn in lower/initial_weights.py (numpy, for both lowerings); this
table is what the front end checks a spec against (`init=he_normal`,
`training.init: normal(0, 0.01)`).
"""

from __future__ import annotations

from .ops.registry import NUMBER, POS_NUMBER, Arg

INITS: dict[str, tuple[Arg, ...]] = {
    "zeros": (),
    "ones": (),
    "constant": (Arg("value", NUMBER),),
    "uniform": (Arg("a", NUMBER, -0.05), Arg("b", NUMBER, 0.05)),
    "normal": (Arg("mean", NUMBER, 0.0), Arg("std", POS_NUMBER, 1.0)),
    "lecun_normal": (),
    "lecun_uniform": (),
    "glorot_normal": (),
    "glorot_uniform": (),
    "he_normal": (),
    "he_uniform": (),
    "orthogonal": (Arg("gain", POS_NUMBER, 1.0),),
}

# Other names people know the same schemes by.
INIT_ALIASES = {
    "xavier_normal": "glorot_normal",
    "xavier_uniform": "glorot_uniform",
    "kaiming_normal": "he_normal",
    "kaiming_uniform": "he_uniform",
}
