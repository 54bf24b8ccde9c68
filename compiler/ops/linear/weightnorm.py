"""weight_norm=true, the option dense, conv1d, conv2d and conv_transpose2d share: the
weight is reparametrized as w = g · v / ‖v‖ (Salimans & Kingma 2016), the norm taken per
slice of axis 0 over every other axis, so the direction v and the length g train apart.

The parameters are those of `torch.nn.utils.parametrizations.weight_norm(module)` (torch's
current API; the older `torch.nn.utils.weight_norm`, keys `weight_g`/`weight_v`, is
deprecated), under its state_dict keys, so a checkpoint of that module loads by name:

    parametrizations.weight.original0   g  [weight.shape[0], 1, ..., 1]
    parametrizations.weight.original1   v  the weight's shape and init

Axis 0 is torch's default `dim=0` for every module: the output units of Linear and Conv,
but the *input* channels of ConvTranspose2d (whose weight is [C, filters/groups, *k]);
dlc follows torch, so its g there has one entry per input channel. g starts at ‖v‖
(torch computes it from the weight when it wraps the module), so w starts equal to v:
lower/initial_weights.py draws v and sets g from it (the init `norm(of=...)`).
"""

from __future__ import annotations

from ...ir import InitSpec, ParamSpec
from ..registry import BOOL, Arg

WEIGHT_NORM = Arg(
    "weight_norm", BOOL, False, "reparametrize the weight as g·v/‖v‖ (torch's weight_norm, dim 0)"
)

G = "parametrizations.weight.original0"
V = "parametrizations.weight.original1"


def weight_params(weight: ParamSpec, normalized: bool) -> tuple[ParamSpec, ...]:
    """The weight as it is, or as g and v (torch's order) for weight_norm=true."""
    if not normalized:
        return (weight,)
    g_shape = weight.shape[:1] + (1,) * (len(weight.shape) - 1)
    g = ParamSpec(G, g_shape, InitSpec("norm", (("of", V),)))
    return (g, ParamSpec(V, weight.shape, weight.init))
