"""The data of a run as tensors the model takes: `training.data` loaded (data.py),
split into train / val / test, matched to the model's inputs and the loss terms' targets,
converted and moved to the training device once.

Guarantees: the test split (`test_split`) and the validation split (`val_split`) are the
same examples whatever the training seed; an array that does not fit an input is a
located DataError naming both shapes, except that a flat [N, 784] and an image
[N, 28, 28] convert into each other when the model's dims are concrete and the sizes
agree; a loss target may name a data array or a model input (an autoencoder's `x`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ...compiler.dtypes import DTYPES
from ...compiler.errors import DataError, Loc
from ...compiler.ir import Graph, GraphInput
from ...compiler.ops.preprocess.modules import Standardize
from ...compiler.pipeline import Checked
from ...compiler.training import DataOptions
from .data import Dataset, load_source, split

EVAL_CHUNK = 4096
# A bfloat16 input is fed as float32, like any dtype without an entry: the module's
# weights are float32, and bf16 arithmetic is `precision: bf16` (autocast).
TORCH_DTYPES = {d: getattr(torch, d) for d in DTYPES if d != "bfloat16"}
DATA_HINT = "a file (.npz, .npy, .csv, MNIST IDX) or a built-in such as builtin:digits"


@dataclass
class Split:
    """One split as tensors on the training device: model inputs and loss targets."""

    inputs: dict[str, torch.Tensor]
    targets: dict[str, torch.Tensor]
    n: int

    def take(self, idx: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        return (
            {k: v[idx] for k, v in self.inputs.items()},
            {k: v[idx] for k, v in self.targets.items()},
        )

    def chunks(
        self, size: int = EVAL_CHUNK
    ) -> Iterator[tuple[int, dict[str, torch.Tensor], dict[str, torch.Tensor]]]:
        for lo in range(0, self.n, size):
            rows = slice(lo, min(lo + size, self.n))
            yield (
                rows.stop - rows.start,
                {k: v[rows] for k, v in self.inputs.items()},
                {k: v[rows] for k, v in self.targets.items()},
            )


@dataclass
class Feeds:
    train: Split
    val: Split | None
    test: Split | None
    train_set: Dataset  # what the training data says of itself (task, classes)


def target_name(term_target: str | None, data: DataOptions) -> str:
    """A loss term's target: its own `target`, else `data.target`, else `y`."""
    return term_target or data.target or "y"


def load_splits(
    data: DataOptions, spec_path: Path, where: Loc | None
) -> tuple[Dataset, Dataset | None, Dataset | None]:
    """The training data and its val and test sets: their own files, else held out of the
    training data (the test split with seed 0, whatever the run's seed, then val with 1)."""
    if data.train is None:
        raise DataError("training needs data: `data: {train: ...}`", where, DATA_HINT)

    def load(source: str, loc: Loc | None) -> Dataset:
        return load_source(source, base_dir=spec_path.parent, target=data.target,
                           options=dict(data.options), loc=loc)  # fmt: skip

    train = load(data.train, data.train_loc)
    test = load(data.test, data.test_loc) if data.test is not None else None
    if test is None and data.test_split is not None:
        train, test = split(train, data.test_split, seed=0)
    val = load(data.val, data.val_loc) if data.val is not None else None
    if val is None and data.val_split is not None:
        train, val = split(train, data.val_split, seed=1)
    return train, val, test


def load_feeds(checked: Checked, data: DataOptions, spec_path: Path,
               device: torch.device) -> Feeds:  # fmt: skip
    plan = checked.training
    assert plan is not None, "the trainer checks there is a training section"
    train, val, test = load_splits(data, spec_path, plan.loc)
    targets = [target_name(t.target, data) for t in plan.losses if t.takes_target]

    def tensors(ds: Dataset | None, loc: Loc | None) -> Split | None:
        if ds is None:
            return None
        # a split held out of the training data reports where the training data stands
        return _split(checked.graph, ds, targets, loc or data.train_loc, device)

    train_split = tensors(train, data.train_loc)
    assert train_split is not None
    return Feeds(train_split, tensors(val, data.val_loc), tensors(test, data.test_loc), train)


def _split(graph: Graph, ds: Dataset, targets: list[str], loc: Loc | None,
           device: torch.device) -> Split:  # fmt: skip
    arrays = ds.arrays
    inputs: dict[str, torch.Tensor] = {}
    for inp in graph.inputs:
        key = inp.name if inp.name in arrays else None
        if key is None and len(graph.inputs) == 1 and "x" in arrays:
            key = "x"
        if key is None:
            raise DataError(f"{ds.name} has no array for the model's input '{inp.name}'", loc,
                            f"its arrays: {', '.join(arrays)}")  # fmt: skip
        inputs[inp.name] = fit_input(arrays[key], inp, ds.name, loc)
    out: dict[str, torch.Tensor] = {}
    for name in targets:
        if name in arrays:
            out[name] = torch.from_numpy(np.ascontiguousarray(arrays[name]))
        elif name in inputs:  # an autoencoder reconstructs its input
            out[name] = inputs[name]
        else:
            raise DataError(f"{ds.name} has no target array '{name}'", loc,
                            f"its arrays: {', '.join(arrays)}")  # fmt: skip
    return Split({k: v.to(device) for k, v in inputs.items()},
                 {k: v.to(device) for k, v in out.items()}, len(ds))  # fmt: skip


def fit_input(
    array: np.ndarray, graph_input: GraphInput, name: str, loc: Loc | None
) -> torch.Tensor:
    """The array as the input's dtype and per-example shape."""
    want = graph_input.type.shape[1:]
    dtype = TORCH_DTYPES.get(graph_input.type.dtype, torch.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    got = tuple(tensor.shape[1:])
    fits = len(got) == len(want) and all(
        not isinstance(d, int) or d == g for d, g in zip(want, got, strict=True)
    )
    if not fits:
        sizes = [d for d in want if isinstance(d, int)]
        if len(sizes) == len(want) and math.prod(got) == math.prod(sizes):
            tensor = tensor.reshape(tensor.shape[0], *sizes)
        else:
            shown = ", ".join(str(d) for d in graph_input.type.shape)
            raise DataError(
                f"{name} gives examples of shape [{', '.join(map(str, got))}] for input "
                f"'{graph_input.name}', which takes [{shown}] (the first dim is the batch)",
                loc,
            )
    if not dtype.is_floating_point and tensor.dtype.is_floating_point:
        raise DataError(
            f"input '{graph_input.name}' takes {graph_input.type.dtype} tokens, "
            f"but {name} gives {tensor.dtype}",
            loc,
        )
    return tensor.to(dtype)


@torch.no_grad()
def fit_standardize(model: nn.Module, graph: Graph, train: Split) -> None:
    """Fit each `standardize` layer's constants on the training split, in graph order
    (a later one sees the output of an earlier, fitted one)."""
    live = graph.live()
    for node in (n for n in graph.nodes if n.op == "standardize" and n.name in live):
        layer = model.get_submodule(node.name)
        assert isinstance(layer, Standardize)
        seen: list[torch.Tensor] = []
        hook = layer.register_forward_hook(
            lambda m, args, out, seen=seen: seen.append(args[0].detach())
        )
        was_training = model.training
        model.eval()
        try:
            for _, inputs, _ in train.chunks():
                model(**inputs)
        finally:
            hook.remove()
            model.train(was_training)
        x = torch.cat(seen).double()
        x = x.reshape(-1, x.shape[-1])
        eps, method = float(node.attr("eps")), node.attr("method")
        # A feature constant in the training data (a digit's corner pixel) keeps scale 1,
        # as scikit-learn's scalers do: dividing by ε would turn any other value at
        # inference into a huge one.
        if method == "zscore":  # (x − μ) / (σ + ε)
            layer.shift.copy_(x.mean(0))
            layer.scale.copy_(_nonzero(x.std(0, unbiased=False), eps))
        elif method == "minmax":  # (x − min) / (max − min + ε)
            lo, hi = x.min(0).values, x.max(0).values
            layer.shift.copy_(lo)
            layer.scale.copy_(_nonzero(hi - lo, eps))
        else:  # zca: W = U diag(1/√(λ + ε)) Uᵀ of the covariance
            mu = x.mean(0)
            xc = x - mu
            lam, u = torch.linalg.eigh(xc.T @ xc / max(len(xc), 1))
            layer.shift.copy_(mu)
            layer.whiten.copy_(u @ torch.diag(1.0 / torch.sqrt(lam.clamp_min(0) + eps)) @ u.T)


def _nonzero(spread: torch.Tensor, eps: float) -> torch.Tensor:
    return torch.where(spread > 0, spread + eps, torch.ones_like(spread))
