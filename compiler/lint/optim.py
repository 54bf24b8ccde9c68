"""Rules about the optimizer and regularization: a learning rate far from the usual
range, momentum that leaves almost no damping, decay of biases and norm scales."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Loc
from ..syntax import Call
from .registry import Finding, LintContext, rule

# The learning rates each optimizer usually trains with (the published defaults and the
# course's examples sit inside); the rule speaks only when lr is 10× beyond.
USUAL_LR: dict[str, tuple[float, float]] = {
    "gd": (1e-3, 1.0),
    "sgd": (1e-4, 0.5),
    "ngd": (1e-4, 1.0),
    "adagrad": (1e-3, 0.5),
    "rmsprop": (1e-5, 1e-2),
    "adadelta": (0.1, 10.0),
    "adam": (1e-5, 1e-2),
    "adamw": (1e-5, 1e-2),
    "lbfgs": (1e-2, 1.0),
    "newton": (1e-2, 1.0),
}
FAR = 10.0


def _arg_loc(ctx: LintContext, name: str) -> Loc | None:
    """Where the optimizer's argument `name` is written, else the optimizer itself."""
    text = ctx.checked.spec.training.optimizer if ctx.checked.spec.training else None
    if text is None:
        return ctx.spec_loc("training")
    e = text.parse()
    if isinstance(e, Call):
        for kw in e.kwargs:
            if kw.name == name:
                return kw.loc
        if name == "lr" and e.args:
            return e.args[0].loc  # type: ignore[union-attr]
    return text.loc


@rule(
    "DLC113",
    "learning-rate-range",
    "a learning rate far outside the optimizer's usual range",
    "Too large and the loss diverges or bounces out of the minimum; too small and "
    "training stalls. Adaptive optimizers (Adam) take steps of about lr per weight, so "
    "their usual lr is 100× smaller than SGD's.",
)
def learning_rate_range(ctx: LintContext) -> Iterator[Finding]:
    if ctx.plan is None or ctx.plan.optimizer.name not in USUAL_LR:
        return
    opt = ctx.plan.optimizer
    args = opt.kwargs()
    lr = args.get("lr")
    if not isinstance(lr, int | float):
        return
    lo, hi = USUAL_LR[opt.name]
    if lo / FAR <= lr <= hi * FAR:
        return
    side = "above" if lr > hi * FAR else "below"
    yield Finding(
        f"lr={lr:g} is far {side} {opt.name}'s usual range {lo:g}..{hi:g}: "
        + ("the loss is likely to diverge" if side == "above" else "training will crawl"),
        _arg_loc(ctx, "lr"),
        f"start from {opt.name}'s default ({_default(opt.name)}) and tune by factors of 3",
    )


def _default(name: str) -> str:
    from ..training import OPTIMIZERS

    lr = next((a.default for a in OPTIMIZERS[name] if a.name == "lr"), None)
    return f"lr={lr:g}" if isinstance(lr, int | float) else "its default"


@rule(
    "DLC114",
    "momentum-near-one",
    "momentum so close to 1 that nothing damps the velocity",
    "With momentum m the velocity remembers about 1/(1−m) steps; at m ≥ 0.999 it "
    "oscillates for thousands of steps (m ≥ 1 never forgets, and is an error).",
)
def momentum_near_one(ctx: LintContext) -> Iterator[Finding]:
    if ctx.plan is None:
        return
    args = ctx.plan.optimizer.kwargs()
    for key in ("momentum", "beta1"):
        m = args.get(key)
        if isinstance(m, int | float) and m >= 0.999:
            yield Finding(
                f"{key}={m:g} averages the last ~{1 / (1 - m):,.0f} gradients: the velocity "
                "keeps overshooting long after the gradient changed",
                _arg_loc(ctx, key),
                f"use {key}=0.9 (0.99 for very noisy gradients)",
            )


@rule(
    "DLC115",
    "decay-biases-and-norms",
    "weight decay on biases and normalization parameters",
    "Weight decay fights overfitting by shrinking weights; biases and norm scales and "
    "shifts don't overfit that way, and decaying a norm's scale toward 0 just shrinks "
    "its layer's output (the usual practice excludes them).",
)
def decay_biases_and_norms(ctx: LintContext) -> Iterator[Finding]:
    plan = ctx.plan
    if plan is None or not plan.options.regularize_all:
        return
    decay = plan.options.weight_decay or plan.options.l1
    if plan.optimizer.name == "adamw":
        decay = decay or plan.optimizer.kwargs().get("weight_decay", 0.0)
    small = [p for n in ctx.nodes for p in n.params if p.trainable and len(p.shape) <= 1]
    if decay and small:
        yield Finding(
            f"regularize_all: true decays {len(small)} biases and normalization "
            "parameters too: a norm's scale pulled toward 0 silences its layer",
            ctx.spec_loc("training", "regularize_all"),
            "remove regularize_all (dlc decays only weights by default)",
        )
