"""Every op of the language, registered on import (see registry.py)."""

from . import activations, basis, combinators, linear, merge, norm, preprocess, shape  # noqa: F401
from .registry import REGISTRY, OpCtx, OpDef, lookup

__all__ = ["REGISTRY", "OpCtx", "OpDef", "lookup"]
