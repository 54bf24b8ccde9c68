"""Rules about the loss and the output it reads: probabilities where the loss wants
logits, a loss that doesn't fit the output's width, and labels the output can't hold."""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import Loc
from ..ir import Node
from .registry import Finding, LintContext, rule

LOGIT_LOSSES = frozenset({"cross_entropy", "bce"})
SQUASHING = frozenset({"softmax", "sigmoid"})


def _terms(ctx: LintContext, labels: bool = False) -> Iterator[tuple[str, Node, Loc | None]]:
    """(loss name, the node computing its output, the loss's location) per loss term
    that reads (output, target); with `labels`, only the terms whose target is the
    data's labels (not an autoencoder's `target: x`)."""
    if ctx.plan is None:
        return
    own_target = ctx.plan.options.data.target not in (None, "y")
    for term in ctx.plan.losses:
        node = ctx.output_node(term.output)
        if labels and (own_target or term.target not in (None, "y")):
            continue
        if term.takes_target and node is not None:
            yield term.call.name, node, term.call.loc


def _width(node: Node) -> int | None:
    shape = node.type.shape if node.type else ()
    return shape[-1] if shape and isinstance(shape[-1], int) else None


@rule(
    "DLC104",
    "probabilities-into-logit-loss",
    "softmax/sigmoid right before a loss that takes logits",
    "cross_entropy and bce apply log-softmax/log-sigmoid themselves; squashing first "
    "computes log(softmax(softmax(z))), whose gradients are tiny and whose loss can "
    "never reach 0 (PyTorch issue 55902).",
)
def probabilities_into_logit_loss(ctx: LintContext) -> Iterator[Finding]:
    for loss, node, _ in _terms(ctx):
        if loss in LOGIT_LOSSES and node.op in SQUASHING:
            yield Finding(
                f"the model's output ends in {node.op}, but {loss} takes logits and applies "
                f"{'log-softmax' if loss == 'cross_entropy' else 'log-sigmoid'} itself: "
                f"{node.op} twice squashes the gradients and the loss cannot reach 0",
                node.loc,
                f"drop this {node.op}; for probabilities at inference add an exported "
                f"output: export: {{outputs: {{probs: {node.op}(y)}}}}",
            )


@rule(
    "DLC105",
    "loss-output-mismatch",
    "a loss that doesn't fit the output",
    "cross_entropy over one unit is always 0 (softmax of one logit is 1); bce scores each "
    "unit as its own yes/no, not one class of ten; mse on class labels regresses the "
    "label's number, as if 9 were closer to 8 than to 0.",
)
def loss_output_mismatch(ctx: LintContext) -> Iterator[Finding]:
    data = ctx.data
    multiclass = data is not None and data.task == "classification"
    for loss, node, loc in _terms(ctx, labels=True):
        width = _width(node)
        if loss == "cross_entropy" and width == 1:
            yield Finding(
                "cross_entropy over an output of 1 unit: softmax of one logit is always 1, so "
                "the loss is 0 and nothing trains",
                loc,
                "give the output one unit per class (dense(2) for two classes), or use bce "
                "with one unit for a yes/no target",
            )
        elif loss == "bce" and width is not None and width > 1 and multiclass:
            assert data is not None
            yield Finding(
                f"bce on {width} units, but {data.name} has one label of {data.classes} "
                f"classes per example: bce scores each unit as a separate yes/no",
                loc,
                "use cross_entropy for one class out of many (bce is for one unit, or for "
                "several independent labels)",
            )
        elif loss in ("mse", "l1", "huber") and data is not None and data.classes:
            yield Finding(
                f"{loss} on {data.name}, whose targets are class labels: a regression loss "
                f"treats the label's number as a quantity (9 is 'closer' to 8 than to 0)",
                loc,
                f"use cross_entropy with one output unit per class ({data.classes})",
            )


@rule(
    "DLC106",
    "label-count",
    "a built-in data set's label count differs from the output width",
    "A classifier needs one output unit per class: fewer and some labels are out of "
    "range, more and the extra units learn nothing.",
)
def label_count(ctx: LintContext) -> Iterator[Finding]:
    data = ctx.data
    if data is None or not data.classes:
        return
    for loss, node, _ in _terms(ctx, labels=True):
        width = _width(node)
        if loss != "cross_entropy" or width is None or width in (1, data.classes):
            continue
        yield Finding(
            f"{data.name} has {data.classes} classes but the output '{node.name}' has "
            f"{width} units"
            + (
                f": labels {width}..{data.classes - 1} are out of range"
                if width < data.classes
                else ": the extra units never win"
            ),
            node.loc,
            f"make the last layer dense({data.classes})",
        )
