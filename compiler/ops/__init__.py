"""Every op of the language, registered on import (see registry.py)."""

from . import (  # noqa: F401  (each module registers its ops)
    activations,
    attention,
    basis,
    combinators,
    conv,
    embed,
    generative,
    linear,
    merge,
    norm,
    preprocess,
    recurrent,
    shape,
)
from .registry import REGISTRY, OpCtx, OpDef, lookup

__all__ = ["REGISTRY", "OpCtx", "OpDef", "lookup"]
