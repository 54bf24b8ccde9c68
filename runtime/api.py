"""The Python API, for notebooks: `dlc.load(...)` and the `Model` it returns.

    model = dlc.load("specs/mnist_mlp.yaml", hidden=512)
    print(model.summary())
    module = model.to_torch()          # a torch.fx.GraphModule, spec inits applied
    proto = model.to_onnx()            # an onnx.ModelProto (weights: fresh, or a dict)

Errors raise the same `DlcError` classes the CLI prints.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.pipeline import Checked, check_file, check_text
from ..compiler.summary import summary_json, summary_table


class Model:
    def __init__(self, checked: Checked) -> None:
        self.checked = checked

    @property
    def graph(self) -> Any:
        return self.checked.graph

    @property
    def name(self) -> str:
        return str(self.checked.graph.name)

    def check(self) -> Model:
        """The spec is sound (it was checked when loaded); its warnings are `.warnings`."""
        return self

    @property
    def warnings(self) -> list[str]:
        return [w.render() for w in self.checked.warnings]

    def summary(self, *, as_dict: bool = False) -> Any:
        return summary_json(self.graph) if as_dict else summary_table(self.graph)

    def initial_weights(self, seed: int = 0) -> dict[str, np.ndarray]:
        from ..compiler.lower.initial_weights import initial_weights

        return initial_weights(self.graph, seed)

    def to_torch(self, weights: Mapping[str, Any] | None = None, *, seed: int = 0) -> Any:
        from ..compiler.lower.torch import to_torch

        return to_torch(self.graph, self._weights(weights), seed=seed)

    def to_onnx(
        self,
        weights: Mapping[str, Any] | str | None = None,
        *,
        opset: int | None = None,
        seed: int = 0,
    ) -> Any:
        from .compile import build_onnx, resolve_weights

        if isinstance(weights, str | Path):
            given = resolve_weights(self.checked, str(weights))
            return build_onnx(self.checked, given, opset, weights_from="checkpoint")
        arrays = self._weights(weights)
        origin = "initial" if arrays is None else "checkpoint"
        return build_onnx(self.checked, arrays or self.initial_weights(seed), opset,
                          weights_from=origin)  # fmt: skip

    def _weights(self, weights: Mapping[str, Any] | None) -> dict[str, np.ndarray] | None:
        if weights is None:
            return None
        from .weights import match_weights

        arrays = {k: v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
                  for k, v in weights.items()}  # fmt: skip
        return match_weights(self.graph, arrays, "the weights given")

    def __repr__(self) -> str:
        return f"<dlc.Model {self.name}: {self.graph.num_params:,} parameters>"


def load(source: str | Path, **params: Any) -> Model:
    """A spec from a file path or from YAML text, with params overridden by keyword."""
    overrides = [f"{k}={_param_text(v)}" for k, v in params.items()]
    text = str(source)
    if isinstance(source, Path) or ("\n" not in text and Path(text).is_file()):
        return Model(check_file(text, overrides))
    return Model(check_text(text, "<string>", overrides))


def _param_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)
