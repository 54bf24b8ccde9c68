"""Losses and metrics for `dlc train`: the names in `compiler/training.py`'s LOSSES.

`make_loss(name, args)` returns `loss(output, target) -> scalar` with mean reduction.
bce and cross_entropy take logits and are computed stably (log-sum-exp inside torch's
fused functions), nll takes log-probabilities. Each loss first fits the target to the
model's output, since data arrives as whatever numpy held:

- cross_entropy, nll: integer class indices of the output's shape without its class
  axis ([B] for [B, C]; [B, T] for a sequence's [B, T, C], whose class axis is moved to
  dim 1 for torch); a [B, 1] column of labels; integral floats (a CSV's labels); or
  floats of the output's own shape, read as class probabilities. -100 marks an index
  to ignore (torch's ignore_index, e.g. padding).
- bce: cast to the output's dtype, reshaped to the output's shape when the element
  counts match; values must lie in [0, 1].
- mse, l1, huber: cast to float, reshaped likewise.

A target that cannot fit raises `DataError` naming the loss and both shapes, before
torch would broadcast it silently or fail with a device-side assert.

kl_normal(mu, logvar) is a loss of another kind: its arguments name model outputs (a
VAE's means and log variances), and `make_loss` returns an `OutputsLoss` that reads them
from the outputs, with no target.

`total_loss` sums weighted terms for multi-output models; `Metrics` accumulates an
epoch's accuracy (classification, binary, sequence) or mse, mae and R² (regression)
exactly over the whole epoch, not as a mean of per-batch values.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ...compiler.errors import DataError, TrainError
from ...compiler.training import output_args
from .arguments import bind_args

LossFn = Callable[[Tensor, Tensor], Tensor]

IGNORE_INDEX = -100  # torch's default ignore_index for cross_entropy and nll


def _shape(t: Tensor | Sequence[Any]) -> str:
    dims = t.shape if isinstance(t, Tensor) else t
    return "[" + ", ".join(str(d) for d in dims) + "]"


def _misfit(who: str, out: Tensor, target: Tensor, expected: str) -> DataError:
    return DataError(
        f"{who}: the model output has shape {_shape(out)} but the target has shape "
        f"{_shape(target)}",
        hint=f"{who.split()[-1]} expects {expected}",
    )


# ---- fitting targets to outputs --------------------------------------------------------


def fit_values(who: str, out: Tensor, target: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """The target as a float tensor of the output's shape: cast, and reshaped when only
    the layout differs ([B] for [B, 1]). The batch axis must agree, so that a reshape
    never mixes examples. `who` starts the error message: 'loss mse'."""
    if dtype is None:
        dtype = out.dtype if out.is_floating_point() else torch.float32
    t = target.to(device=out.device, dtype=dtype)
    if t.shape == out.shape:
        return t
    same_batch = out.ndim == 0 or t.ndim == 0 or t.shape[0] == out.shape[0]
    if t.numel() == out.numel() and same_batch:
        return t.reshape(out.shape)
    raise _misfit(who, out, target, f"a target of the output's shape {_shape(out)}")


def _class_first(x: Tensor) -> Tensor:
    """[B, T, C] → [B, C, T]: torch's losses want the class axis at dim 1."""
    return x.movedim(-1, 1) if x.ndim > 2 else x


def fit_classes(who: str, out: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """(output, target) laid out for torch's cross_entropy / nll_loss: class axis at
    dim 1, target int64 indices (or float probabilities of the output's layout).

    dlc's outputs put classes last ([B, C], [B, T, C]); an output already in torch's
    layout ([B, C, H, W] with a [B, H, W] target) is taken as it is."""
    expected = (
        f"class indices of shape {_shape(out.shape[:-1])} or probabilities of shape {_shape(out)}"
    )
    if out.ndim < 2:
        raise _misfit(who, out, target, f"an output with a class axis; {expected}")
    target = target.to(out.device)
    if target.shape == out.shape:  # probabilities, or one-hot rows
        return _class_first(out), _class_first(target.to(out.dtype))
    t = target
    if t.ndim == out.ndim and t.shape[-1] == 1 and t.shape[:-1] == out.shape[:-1]:
        t = t.squeeze(-1)  # a column of labels
    if t.shape == out.shape[:-1]:
        return _class_first(out), _indices(who, out, t, out.shape[-1])
    if out.ndim > 2 and t.shape == out.shape[:1] + out.shape[2:]:
        return out, _indices(who, out, t, out.shape[1])
    raise _misfit(who, out, target, expected)


def _indices(who: str, out: Tensor, t: Tensor, classes: int) -> Tensor:
    if t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise DataError(
                f"{who}: the target holds fractional values, not class indices "
                f"(output {_shape(out)}, target {_shape(t)})",
                hint=f"class indices are integers 0..{classes - 1}; probabilities need the "
                f"output's shape {_shape(out)}",
            )
    t = t.long()
    # checked here: torch would stop with an opaque error, or a device-side assert on a GPU
    valid = ((t >= 0) & (t < classes)) | (t == IGNORE_INDEX)
    if not bool(valid.all()):
        bad = int(t[~valid][0])
        raise DataError(
            f"{who}: target class {bad} is outside 0..{classes - 1} (the output "
            f"{_shape(out)} has {classes} classes)"
        )
    return t


# ---- the losses ------------------------------------------------------------------------


def _mse(out: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(out, fit_values("loss mse", out, target))


def _l1(out: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(out, fit_values("loss l1", out, target))


def _huber(out: Tensor, target: Tensor, *, delta: float) -> Tensor:
    # ½r² for |r| <= δ, δ(|r| − ½δ) beyond
    return F.huber_loss(out, fit_values("loss huber", out, target), delta=delta)


def _bce(out: Tensor, target: Tensor) -> Tensor:
    t = fit_values("loss bce", out, target, out.dtype)
    outside = ~((t >= 0) & (t <= 1))  # NaN included
    if bool(outside.any()):
        bad = float(t[outside][0])
        raise DataError(
            f"loss bce: targets must lie in [0, 1], got {bad:g} (output {_shape(out)})",
            hint="for class labels 0..C-1 use cross_entropy with C outputs",
        )
    return F.binary_cross_entropy_with_logits(out, t)


def _cross_entropy(out: Tensor, target: Tensor, *, label_smoothing: float) -> Tensor:
    logits, t = fit_classes("loss cross_entropy", out, target)
    return F.cross_entropy(logits, t, label_smoothing=label_smoothing)


def _nll(out: Tensor, target: Tensor) -> Tensor:
    log_probs, t = fit_classes("loss nll", out, target)
    if t.is_floating_point():  # probabilities: −Σ p·log q, 0·log 0 counted as 0
        terms = torch.where(t == 0, torch.zeros_like(log_probs), t * log_probs)
        return -terms.sum(dim=1).mean()
    return F.nll_loss(log_probs, t)


def kl_normal(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = −½ Σ_j (1 + log σ_j² − μ_j² − σ_j²) with log σ² = logvar,
    summed over the latent axes (all but the first) and averaged over the batch."""
    if mu.shape != logvar.shape:
        raise DataError(
            f"loss kl_normal: mu has shape {_shape(mu)} but logvar has shape {_shape(logvar)}",
            hint="the means and log variances come from layers of the same width",
        )
    terms = 1 + logvar - mu * mu - torch.exp(logvar)
    return -0.5 * terms.reshape(terms.shape[0], -1).sum(dim=1).mean()


LOSS_FUNCTIONS: dict[str, Callable[..., Tensor]] = {
    "mse": _mse,
    "l1": _l1,
    "huber": _huber,
    "bce": _bce,
    "cross_entropy": _cross_entropy,
    "nll": _nll,
    "kl_normal": kl_normal,
}


class OutputsLoss:
    """A loss whose arguments name model outputs, like kl_normal(mu, logvar): called with
    the model's outputs, it reads those, and takes no target."""

    def __init__(self, name: str, reads: Mapping[str, str], args: Mapping[str, Any]) -> None:
        self.name = name
        self.reads = dict(reads)  # argument -> output name
        self.args = dict(args)  # the other arguments
        self.label = f"{name}({', '.join(self.reads.values())})"  # its key in the logs

    def __call__(self, outputs: Mapping[str, Tensor]) -> Tensor:
        tensors = {a: _lookup(outputs, o, "output") for a, o in self.reads.items()}
        return LOSS_FUNCTIONS[self.name](**tensors, **self.args)


def make_loss(name: str, args: Mapping[str, Any]) -> LossFn | OutputsLoss:
    """`loss(output, target) -> scalar tensor` for `name(args)`, mean-reduced; for a loss
    whose arguments name outputs (kl_normal), an `OutputsLoss`."""
    bound = bind_args("loss", name, args)
    reads = output_args(name)
    if reads:
        rest = {k: v for k, v in bound.items() if k not in reads}
        return OutputsLoss(name, {a: str(bound[a]) for a in reads}, rest)
    fn = functools.partial(LOSS_FUNCTIONS[name], **bound)
    fn.__name__ = name  # type: ignore[attr-defined]  # for messages and logs
    return fn


LossTerm = tuple[float, LossFn | OutputsLoss, str, str]


def total_loss(
    terms: Sequence[LossTerm], outputs: Mapping[str, Tensor], targets: Mapping[str, Tensor]
) -> tuple[Tensor, dict[str, Tensor]]:
    """(Σ weight·loss(outputs[o], targets[t]), each term's unweighted value detached for
    logging). A term is (weight, loss fn, output name, target name); its value is keyed
    by its output's name, or 'output/target' when two terms share an output. An
    `OutputsLoss` term reads its own outputs (its output and target names are unused)
    and is keyed by its call, 'kl_normal(mu, logvar)'."""
    if not terms:
        raise TrainError("training needs at least one loss term")
    total: Tensor | None = None
    values: dict[str, Tensor] = {}
    for weight, fn, out_name, target_name in terms:
        if isinstance(fn, OutputsLoss):
            value = fn(outputs)
            first = again = fn.label
        else:
            out = _lookup(outputs, out_name, "output")
            target = _lookup(targets, target_name, "target")
            value = fn(out, target)
            first, again = out_name, f"{out_name}/{target_name}"
        total = weight * value if total is None else total + weight * value
        key = first if first not in values else again
        n = 2
        while key in values:
            key, n = f"{again}#{n}", n + 1
        values[key] = value.detach()
    assert total is not None
    return total, values


def _lookup(table: Mapping[str, Tensor], name: str, what: str) -> Tensor:
    if name not in table:
        raise DataError(f"a loss term names the {what} '{name}', which is not there",
                        hint=f"{what}s: {', '.join(table) or 'none'}")  # fmt: skip
    return table[name]


# ---- metrics ---------------------------------------------------------------------------

TASKS = ("classification", "binary", "regression", "sequence")


def infer_task(loss_name: str, output_shape: Sequence[Any]) -> str:
    """The metrics a loss calls for: cross_entropy/nll → classification ('sequence' for a
    [B, T, C] output: accuracy per position), bce → binary, the rest → regression."""
    if loss_name in ("cross_entropy", "nll"):
        return "sequence" if len(output_shape) == 3 else "classification"
    if loss_name == "bce":
        return "binary"
    return "regression"


class Metrics:
    """An epoch's metrics, accumulated batch by batch on the output's device (no
    device sync per batch) and computed once:

    - classification, sequence: accuracy, the argmax over the class axis against the
      index (or the argmax of probability targets); ignored (-100) positions not counted;
    - binary: accuracy of logit > 0 against target > 0.5 when the output has one unit
      (per example or position), else of the argmax as for classification;
    - regression: mse, mae (over all elements) and R² = 1 − SS_res/SS_tot per output
      column about the epoch's mean, averaged over the columns (scikit-learn's
      'uniform_average'; a constant column scores 1 if predicted exactly, else 0).
    """

    def __init__(self, task: str) -> None:
        if task not in TASKS:
            raise ValueError(f"unknown task '{task}'; one of {', '.join(TASKS)}")
        self.task = task
        self.reset()

    def reset(self) -> None:
        self._correct: Tensor | None = None
        self._count: Tensor | None = None
        self._stats: dict[str, Tensor] = {}

    @torch.no_grad()
    def update(self, output: Tensor, target: Tensor) -> None:
        output = output.detach()
        if self.task == "regression":
            self._update_regression(output, target)
        elif self.task == "binary" and (output.ndim <= 1 or output.shape[-1] == 1):
            t = fit_values("metric accuracy", output, target)
            self._add_accuracy((output > 0) == (t > 0.5), None)
        else:
            out, t = fit_classes("metric accuracy", output, target)
            pred = out.argmax(dim=1)
            if t.is_floating_point():
                self._add_accuracy(pred == t.argmax(dim=1), None)
            else:
                self._add_accuracy(pred == t, t != IGNORE_INDEX)

    def compute(self) -> dict[str, float]:
        if self.task == "regression":
            return self._compute_regression()
        if self._count is None or int(self._count) == 0:
            return {}
        assert self._correct is not None
        return {"accuracy": float(self._correct) / float(self._count)}

    def _add_accuracy(self, hits: Tensor, mask: Tensor | None) -> None:
        correct = (hits & mask).sum() if mask is not None else hits.sum()
        count = mask.sum() if mask is not None else torch.tensor(hits.numel())
        count = count.to(hits.device)
        self._correct = correct if self._correct is None else self._correct + correct
        self._count = count if self._count is None else self._count + count

    def _update_regression(self, output: Tensor, target: Tensor) -> None:
        # float64 and Chan's pairwise merge of (n, mean, M2): SS_tot about the epoch's
        # mean without the cancellation of Σy² − (Σy)²/n
        y = fit_values("metric r2", output, target, torch.float64)
        p = output.double()
        rows = p.shape[0] if p.ndim else 1
        y, p = y.reshape(rows, -1), p.reshape(rows, -1)
        mean_b = y.mean(dim=0)
        batch = {
            "n": torch.tensor(float(rows), dtype=torch.float64, device=y.device),
            "mean": mean_b,
            "m2": ((y - mean_b) ** 2).sum(dim=0),
            "sse": ((p - y) ** 2).sum(dim=0),
            "sae": (p - y).abs().sum(dim=0),
        }
        s = self._stats
        if not s:
            self._stats = batch
            return
        n = s["n"] + batch["n"]
        delta = batch["mean"] - s["mean"]
        s["m2"] = s["m2"] + batch["m2"] + delta**2 * s["n"] * batch["n"] / n
        s["mean"] = s["mean"] + delta * batch["n"] / n
        s["n"] = n
        s["sse"] = s["sse"] + batch["sse"]
        s["sae"] = s["sae"] + batch["sae"]

    def _compute_regression(self) -> dict[str, float]:
        s = {k: v.cpu() for k, v in self._stats.items()}
        if not s:
            return {}
        elements = float(s["n"]) * s["sse"].numel()
        exact = s["sse"] == 0
        r2 = torch.where(
            s["m2"] > 0,
            1 - s["sse"] / s["m2"].clamp_min(1e-300),
            exact.double(),  # a constant column: 1 if predicted exactly, else 0
        )
        return {
            "mse": float(s["sse"].sum()) / elements,
            "mae": float(s["sae"].sum()) / elements,
            "r2": float(r2.mean()),
        }
