"""The names `training:` may use, with their signatures: losses, optimizers, schedules.

The front end checks a spec's `loss`, `optimizer` and `schedule` against these tables
(unknown names with a suggestion, argument names and types), so `dlc check` catches
`optimizer: adma(lr=1e-3)` before a training run starts. The training runtime
implements each entry under the same name; defaults follow PyTorch and the course
(Adam β₁=0.9, β₂=0.999, ε=1e-8; RMSProp ρ=0.9; AdaGrad δ=1e-10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Loc
from .ops.registry import (
    BOOL,
    INTS,
    NONNEG_INT,
    NUMBER,
    POS_INT,
    POS_NUMBER,
    PROB,
    Arg,
)

LOSSES: dict[str, tuple[Arg, ...]] = {
    "mse": (),
    "l1": (),
    "huber": (Arg("delta", POS_NUMBER, 1.0),),
    "bce": (),  # takes logits: binary_cross_entropy_with_logits
    "cross_entropy": (Arg("label_smoothing", PROB, 0.0),),  # takes logits, log-sum-exp
    "nll": (),  # takes log-probabilities
}

_LR = Arg("lr", POS_NUMBER, 0.01, "learning rate")
_ADAM = (
    Arg("lr", POS_NUMBER, 1e-3),
    Arg("beta1", PROB, 0.9),
    Arg("beta2", PROB, 0.999),
    Arg("eps", POS_NUMBER, 1e-8),
)

OPTIMIZERS: dict[str, tuple[Arg, ...]] = {
    "gd": (_LR,),  # full batch
    "sgd": (_LR, Arg("momentum", PROB, 0.0), Arg("nesterov", BOOL, False)),
    "adagrad": (_LR, Arg("eps", POS_NUMBER, 1e-10)),
    "rmsprop": (_LR, Arg("rho", PROB, 0.9), Arg("eps", POS_NUMBER, 1e-8),
                Arg("momentum", PROB, 0.0)),
    "adadelta": (Arg("lr", POS_NUMBER, 1.0), Arg("rho", PROB, 0.9), Arg("eps", POS_NUMBER, 1e-6)),
    "adam": _ADAM,
    "adamw": (*_ADAM, Arg("weight_decay", NUMBER, 0.01)),
    "ngd": (_LR,),  # normalized gradient descent: θ ← θ - lr g/‖g‖
    "lbfgs": (Arg("lr", POS_NUMBER, 1.0), Arg("history", POS_INT, 100),
              Arg("max_iter", POS_INT, 20)),
    "newton": (Arg("lr", POS_NUMBER, 1.0), Arg("damping", NUMBER, 0.0)),
}  # fmt: skip

SCHEDULES: dict[str, tuple[Arg, ...]] = {
    "constant": (),
    "step": (Arg("step_size", POS_INT), Arg("gamma", POS_NUMBER, 0.1)),
    "multistep": (Arg("milestones", INTS), Arg("gamma", POS_NUMBER, 0.1)),
    "exponential": (Arg("gamma", POS_NUMBER),),
    "cosine": (Arg("t_max", POS_INT), Arg("eta_min", NUMBER, 0.0)),
    "linear": (Arg("start_factor", POS_NUMBER, 1.0), Arg("end_factor", NUMBER, 0.0),
               Arg("total_iters", POS_INT, None)),
    "plateau": (Arg("factor", PROB, 0.5), Arg("patience", NONNEG_INT, 10),
                Arg("min_lr", NUMBER, 0.0)),
    "onecycle": (Arg("max_lr", POS_NUMBER), Arg("pct_start", PROB, 0.3)),
    "warm_restarts": (Arg("t_0", POS_INT), Arg("t_mult", POS_INT, 1),
                      Arg("eta_min", NUMBER, 0.0)),
}  # fmt: skip

TABLES = {"loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES}


@dataclass(frozen=True, slots=True)
class CallPlan:
    """A checked `training:` call: its name, its arguments with defaults filled in, and
    where the spec wrote it (for the runtime's messages)."""

    name: str
    args: tuple[tuple[str, Any], ...]
    loc: Loc | None = None

    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)


@dataclass(frozen=True, slots=True)
class LossPlan:
    """One loss term: `weight * loss(outputs[output], targets[target])`. `target` None
    means the data's target array (`y`, or `data.target`)."""

    call: CallPlan
    output: str
    target: str | None = None
    weight: float = 1.0


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """What `dlc train` runs, checked by the front end; plain options stay as the spec
    wrote them (the schema checked their types)."""

    losses: tuple[LossPlan, ...]
    optimizer: CallPlan
    schedule: CallPlan | None
    options: tuple[tuple[str, Any], ...]
    loc: Loc | None = None

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)
