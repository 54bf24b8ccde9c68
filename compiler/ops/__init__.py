"""Every op of the language, one folder per op family, registered on import.

`FAMILIES` is the one list of families. Each family is a package `ops/<family>/`:
its `__init__` defines the family's `OpDef`s (registry.py) and imports no backend;
beside it, `torch.py` holds its `TORCH_RULES`, `onnx.py` its `ONNX_RULES`, and
`modules.py` (where the family has one) the torch code that model.py copies verbatim.
The lowerings collect those tables from every family in this list, so a new family is
one folder plus one name here, and a new op of a family touches that folder only.
"""

from importlib import import_module

from .registry import REGISTRY, OpCtx, OpDef, lookup

FAMILIES = (
    "linear",
    "activations",
    "basis",
    "conv",
    "norm",
    "shape",
    "merge",
    "combinators",
    "preprocess",
    "recurrent",
    "embed",
    "attention",
    "generative",
)

for _family in FAMILIES:  # each family's __init__ registers its ops
    import_module(f".{_family}", __name__)

__all__ = ["FAMILIES", "REGISTRY", "OpCtx", "OpDef", "lookup"]
