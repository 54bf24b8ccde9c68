"""dlc: a declarative deep-learning compiler.

The package maps the repository's top-level folders: `dlc.schema` (the language
definition), `dlc.compiler` (spec to checked IR, and the lowerings) and `dlc.runtime`
(the CLI and everything that runs a model). Importing `dlc` imports neither torch nor
onnx.
"""

__version__ = "0.1.0"
