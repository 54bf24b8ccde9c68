"""dlc: a declarative deep-learning compiler.

The package maps the repository's top-level folders: `dlc.schema` (the language
definition), `dlc.compiler` (spec to checked IR, and the lowerings) and `dlc.runtime`
(the CLI and everything that runs a model). Importing `dlc` imports neither torch nor
onnx.
"""

__version__ = "0.1.0"


def load(source, **params):  # noqa: ANN001, ANN003, ANN201 - see dlc.runtime.api.load
    """A spec (a path or YAML text) as a `dlc.runtime.api.Model`; see that module."""
    from .runtime.api import load as _load

    return _load(source, **params)
