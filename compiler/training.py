"""The `training:` section checked: the names it may use, its calls, its plan.

The tables name the losses, optimizers and schedules with their signatures. The front
end checks a spec's `loss`, `optimizer` and `schedule` against them (unknown names with a
suggestion, argument names and types), so `dlc check` catches `optimizer: adma(lr=1e-3)`
before a training run starts; the training runtime implements each entry under the same
name. Defaults follow PyTorch (Adam β₁=0.9, β₂=0.999, ε=1e-8; RMSProp ρ=0.9; AdaGrad
δ=1e-10). The checked section is a `TrainingPlan`: the bound calls, the loss terms, and
the plain options typed (`TrainingOptions`) with the defaults the training runtime uses.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .arith import describe_value
from .diffusion import NOISE, DiffusionPlan, check_diffusion, diffusion_plan
from .errors import Collector, ElaborationError, Loc, did_you_mean
from .ir import Graph
from .ops.registry import (
    BOOL,
    INTS,
    NONNEG_INT,
    NUMBER,
    POS_INT,
    POS_NUMBER,
    PROB,
    Arg,
    ArgType,
    ArgTypeError,
)
from .scope import Scope
from .syntax import Call, Name, as_call

if TYPE_CHECKING:  # elaboration calls in here with itself; training.py is imported by it
    from .elaborate import Elaborator
    from .spec import Text, TrainingSpec


def _output_name(v: Any) -> str:
    """A bare name, kept as written."""
    if isinstance(v, str) and v.isidentifier():
        return v
    raise ArgTypeError(f"expected the name of a model output, got {describe_value(v)}")


# An argument that names one of the model's `outputs:`. A loss with such arguments reads
# those outputs, not (output, target): kl_normal(mu, logvar).
OUTPUT = ArgType("the name of a model output", _output_name, words=True)

LOSSES: dict[str, tuple[Arg, ...]] = {
    "mse": (),
    "l1": (),
    "huber": (Arg("delta", POS_NUMBER, 1.0),),
    "bce": (),  # takes logits: binary_cross_entropy_with_logits
    "cross_entropy": (Arg("label_smoothing", PROB, 0.0),),  # takes logits, log-sum-exp
    "nll": (),  # takes log-probabilities
    # KL(N(mu, exp(logvar)) ‖ N(0, I)), summed over the latent axes, mean over the batch
    "kl_normal": (Arg("mu", OUTPUT, doc="the output of the means"),
                  Arg("logvar", OUTPUT, doc="the output of the log variances")),
}  # fmt: skip


def output_args(loss: str) -> tuple[str, ...]:
    """The arguments of `loss` that name model outputs (none for a loss of (output,
    target))."""
    return tuple(a.name for a in LOSSES[loss] if a.type is OUTPUT)


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
    # Where an argument written as a bare name stands (`mu` in kl_normal(mu, logvar)):
    # messages about the output it names point there.
    word_locs: tuple[tuple[str, Loc], ...] = ()

    def kwargs(self) -> dict[str, Any]:
        return dict(self.args)

    def arg_loc(self, name: str) -> Loc | None:
        return dict(self.word_locs).get(name)


@dataclass(frozen=True, slots=True)
class LossPlan:
    """One loss term: `weight * loss(outputs[output], targets[target])`. `target` None
    means the data's target array (`y`, or `data.target`)."""

    call: CallPlan
    output: str
    target: str | None = None
    weight: float = 1.0

    @property
    def reads(self) -> tuple[str, ...]:
        """The outputs a loss such as kl_normal(mu, logvar) names in its arguments; empty
        for a loss of (output, target)."""
        args = self.call.kwargs()
        return tuple(args[a] for a in output_args(self.call.name))

    @property
    def takes_target(self) -> bool:
        return not self.reads


# ---- the plain options, typed ---------------------------------------------------

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
# Optimizers that see the whole training set per step: gd always, lbfgs and newton unless
# the spec sets a batch_size.
FULL_BATCH_OPTIMIZERS = ("gd", "lbfgs", "newton")


@dataclass(frozen=True, slots=True)
class EarlyStopping:
    """`training.early_stopping`: stop when `monitor` has not improved by more than
    `min_delta` for more than `patience` epochs. `monitor` None means val_loss when there
    is validation data, else loss; `mode` None means min, or max for a monitor of
    accuracy or r2 (the runtime decides both, knowing the data and the metrics)."""

    monitor: str | None = None
    patience: int = 0
    min_delta: float = 0.0
    restore_best: bool = True
    mode: str | None = None


@dataclass(frozen=True, slots=True)
class DataOptions:
    """`training.data`: where the train / val / test data come from, with the place each
    source was written (data errors point there), the held-out fractions, the target
    array's name and the data source's own options (CSV delimiter, built-in sizes)."""

    train: str | None = None
    val: str | None = None
    test: str | None = None
    val_split: float | None = None
    test_split: float | None = None
    shuffle: bool = True
    target: str | None = None
    options: tuple[tuple[str, Any], ...] = ()
    train_loc: Loc | None = None
    val_loc: Loc | None = None
    test_loc: Loc | None = None


@dataclass(frozen=True, slots=True)
class TrainingOptions:
    """The plain keys of `training:` with the runtime's defaults filled in. `batch_size`
    None is full-batch training (`batch_size: full`, and the default of the optimizers in
    FULL_BATCH_OPTIMIZERS); `device` is the spec's, which `dlc train --device` overrides."""

    epochs: int = DEFAULT_EPOCHS
    steps: int | None = None
    batch_size: int | None = DEFAULT_BATCH
    seed: int = 0
    device: str = "auto"
    precision: str = "fp32"
    warmup: int = 0
    weight_decay: float = 0.0
    l1: float = 0.0
    regularize_all: bool = False
    clip_grad_norm: float | None = None
    log_gradients: bool = False  # per-layer gradient norms in metrics.jsonl
    tensorboard: bool = False  # each epoch's row as TensorBoard scalars in the run's tb/
    early_stopping: EarlyStopping | None = None
    task: str | None = None
    data: DataOptions = DataOptions()
    checkpoint_every: float = 2.0
    metrics: tuple[str, ...] = ()


def read_options(t: TrainingSpec, optimizer: str) -> TrainingOptions:
    """The typed options of a `training:` section (the schema checked their types), for
    the optimizer the plan runs."""
    raw = dict(t.options)
    batch = raw.get("batch_size")
    if optimizer in FULL_BATCH_OPTIMIZERS and (optimizer == "gd" or batch is None):
        batch = "full"
    clip = raw.get("clip_grad_norm")
    es = raw.get("early_stopping")
    return TrainingOptions(
        epochs=raw.get("epochs", DEFAULT_EPOCHS),
        steps=raw.get("steps"),
        batch_size=None if batch == "full" else (batch or DEFAULT_BATCH),
        seed=raw.get("seed", 0),
        device=raw.get("device", "auto"),
        precision=raw.get("precision", "fp32"),
        warmup=raw.get("warmup", 0),
        weight_decay=float(raw.get("weight_decay", 0.0)),
        l1=float(raw.get("l1", 0.0)),
        regularize_all=bool(raw.get("regularize_all", False)),
        clip_grad_norm=None if clip is None else float(clip),
        log_gradients=bool(raw.get("log_gradients", False)),
        tensorboard=bool(raw.get("tensorboard", False)),
        # An empty mapping stops nothing: the runtime has always read it as absent.
        early_stopping=_early_stopping(es) if es else None,
        task=raw.get("task"),
        data=_data(raw.get("data") or {}, t.data_locs),
        checkpoint_every=float(raw.get("checkpoint_every", 2.0)),
        metrics=tuple(raw.get("metrics") or ()),
    )


def _early_stopping(es: dict[str, Any]) -> EarlyStopping:
    return EarlyStopping(
        monitor=es.get("monitor"),
        patience=es.get("patience", 0),
        min_delta=float(es.get("min_delta", 0.0)),
        restore_best=bool(es.get("restore_best", True)),
        mode=es.get("mode"),
    )


def _data(data: dict[str, Any], locs: tuple[tuple[str, Loc], ...]) -> DataOptions:
    where = dict(locs)

    def fraction(key: str) -> float | None:
        return None if data.get(key) is None else float(data[key])

    return DataOptions(
        train=data.get("train"),
        val=data.get("val"),
        test=data.get("test"),
        val_split=fraction("val_split"),
        test_split=fraction("test_split"),
        shuffle=bool(data.get("shuffle", True)),
        target=data.get("target"),
        options=tuple((data.get("options") or {}).items()),
        train_loc=where.get("train"),
        val_loc=where.get("val"),
        test_loc=where.get("test"),
    )


@dataclass(frozen=True, slots=True)
class TrainingPlan:
    """What `dlc train` runs, checked by the front end: the loss terms, the optimizer
    and schedule calls, and the typed plain options."""

    losses: tuple[LossPlan, ...]
    optimizer: CallPlan
    schedule: CallPlan | None
    options: TrainingOptions = TrainingOptions()
    loc: Loc | None = None
    diffusion: DiffusionPlan | None = None  # `training.diffusion`: the loss is its MSE


def check_loss_outputs(plan: TrainingPlan, graph: Graph) -> None:
    """The outputs that loss terms such as kl_normal(mu, logvar) name in their arguments
    exist in the typed `graph` and have one shape, and such a term has no `target`;
    raises an ElaborationError listing every mistake, each where the spec wrote it."""
    if plan.diffusion is not None:  # its names and shapes (compiler/diffusion.py)
        check_diffusion(plan.diffusion, graph)
    types = graph.types()
    outputs = {name: types[value] for name, value in graph.outputs}
    errors = Collector(ElaborationError)
    for term in plan.losses:
        name, reads = term.call.name, term.reads
        if not reads:
            continue
        missing = [(arg, v) for arg, v in zip(output_args(name), reads, strict=True)
                   if v not in outputs]  # fmt: skip
        for arg, v in missing:
            errors.add(
                f"loss {name} reads the output '{v}', which the model does not have"
                f"{did_you_mean(v, outputs)}",
                term.call.arg_loc(arg) or term.call.loc,
                f"the model's outputs are {', '.join(outputs)}; a loss reads outputs "
                f"only: add `{v}: {v}` under outputs:",
            )
        shapes = [outputs[v] for v in reads if v in outputs]
        if not missing and any(t != shapes[0] for t in shapes):
            shown = " and ".join(f"{v} {t}" for v, t in zip(reads, shapes, strict=True))
            errors.add(
                f"loss {name} needs outputs of one shape, got {shown}",
                term.call.loc,
                "the means and log variances come from layers of the same width",
            )
        if term.target is not None:
            errors.add(
                f"loss {name} takes no target: it reads the outputs its arguments name",
                term.call.loc,
                "remove `target:` from this loss term",
            )
    errors.raise_if_any()


# ---- checking the section during elaboration --------------------------------------


def check_training_calls(el: Elaborator) -> dict[int, CallPlan]:
    """`loss`, `optimizer` and `schedule` name known entries with fitting arguments: the
    checked calls, keyed by the id of the `Text` each was written in (a mistake is
    collected in `el.errors` and its call left out)."""
    calls: dict[int, CallPlan] = {}
    t = el.spec.training
    if t is None:
        return calls
    texts = [("loss", term.loss) for term in t.loss]
    texts += [(k, v) for k, v in (("optimizer", t.optimizer), ("schedule", t.schedule)) if v]
    for what, text in texts:
        with el.collecting():
            calls[id(text)] = _training_call(el, what, text)
    return calls


def _training_call(el: Elaborator, what: str, text: Text) -> CallPlan:
    e = text.parse()
    if isinstance(e, Name):
        e = as_call(e)
    table = TABLES[what]
    if not isinstance(e, Call):
        raise el.fail(f"expected a {what} such as {next(iter(table))}", e.loc)
    if e.name not in table:
        raise el.fail(
            f"unknown {what} '{e.name}'{did_you_mean(e.name, table)}",
            e.name_loc,
            f"{what}s: {', '.join(table)}",
        )
    word_locs: dict[str, Loc] = {}
    args = el.bind(e.name, table[e.name], None, e, el.global_env, None, Scope(""), word_locs)
    return CallPlan(e.name, tuple(args.items()), text.loc, tuple(word_locs.items()))


def training_plan(
    el: Elaborator, calls: dict[int, CallPlan], outputs: tuple[tuple[str, str], ...]
) -> TrainingPlan | None:
    """The checked `training:` section; each loss term names one of the outputs. (A
    section without a loss checks: `dlc train` asks for one.) None when there is no
    section or elaboration found mistakes."""
    t = el.spec.training
    if t is None or el.errors:
        return None
    names = [name for name, _ in outputs]
    losses = []
    for term in t.loss:
        output = term.output or names[0]
        if output not in names:
            el.errors.add(
                f"the loss term names output '{output}', which the model does not have"
                f"{did_you_mean(output, names)}",
                term.loss.doc.loc(term.loss.path[:-1] + ("output",)),
                f"outputs: {', '.join(names)}",
            )
            continue
        losses.append(LossPlan(calls[id(term.loss)], output, term.target, term.weight))
    diffusion = diffusion_plan(t, el.spec.document)
    if diffusion is not None:  # the objective is the noise-prediction MSE
        diffusion, losses = _diffusion_loss(el, diffusion, names, losses)
    adam = tuple((a.name, a.default) for a in TABLES["optimizer"]["adam"])
    optimizer = calls[id(t.optimizer)] if t.optimizer else CallPlan("adam", adam)
    schedule = calls[id(t.schedule)] if t.schedule else None
    options = read_options(t, optimizer.name)
    return TrainingPlan(tuple(losses), optimizer, schedule, options, t.loc, diffusion)


def _diffusion_loss(
    el: Elaborator, plan: DiffusionPlan, names: list[str], losses: list[LossPlan]
) -> tuple[DiffusionPlan, list[LossPlan]]:
    """The plan with its output named (default: the first) and its one loss term,
    mse(output, the drawn noise); a `loss:` beside it is a mistake."""
    if losses:
        el.errors.add(
            "training.diffusion sets the loss (the MSE of the predicted noise), so "
            "`loss:` has no place beside it",
            losses[0].call.loc,
            "remove `loss:`",
        )
    if not plan.output:
        plan = replace(plan, output=names[0])
    term = LossPlan(CallPlan("mse", (), plan.where("output")), plan.output, NOISE)
    return plan, [term]
