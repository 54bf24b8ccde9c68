"""Rules about layers in the wrong company: dropout feeding batchnorm, batchnorm on tiny
batches, a dense layer on a feature map, pooling that leaves nothing to pool."""

from __future__ import annotations

from collections.abc import Iterator

from .registry import Finding, LintContext, rule

BATCHNORMS = frozenset({"batchnorm"})
DROPOUTS = frozenset({"dropout"})
# Batch statistics from fewer examples than this are too noisy to normalize by.
MIN_BATCH = 8


@rule(
    "DLC107",
    "dropout-before-batchnorm",
    "dropout right before batchnorm",
    "Dropout changes a unit's variance between training and inference, so the running "
    "variance batchnorm collects in training is wrong at inference (the 'variance shift' "
    "of Li et al., 2019).",
)
def dropout_before_batchnorm(ctx: LintContext) -> Iterator[Finding]:
    for n in ctx.nodes:
        if n.op not in DROPOUTS:
            continue
        if any(u.op in BATCHNORMS for u in ctx.consumers(n.name)):
            yield Finding(
                f"dropout '{n.name}' feeds a batchnorm: the variance batchnorm tracks in "
                "training (with units dropped) is not the one it sees at inference",
                n.loc,
                "move the dropout after the batchnorm (conv -> batchnorm -> relu -> "
                "dropout), or after the last batchnorm only",
            )


@rule(
    "DLC108",
    "batchnorm-small-batch",
    "batchnorm with a batch size below 8",
    "Batchnorm normalizes by the batch's own mean and variance; from a handful of "
    "examples those are noise, and training and inference statistics disagree.",
)
def batchnorm_small_batch(ctx: LintContext) -> Iterator[Finding]:
    batch = ctx.plan.options.batch_size if ctx.plan else None
    if batch is None or batch >= MIN_BATCH:
        return
    norms = [n for n in ctx.nodes if n.op in BATCHNORMS]
    if norms:
        yield Finding(
            f"batch_size {batch} with {len(norms)} batchnorm layer"
            f"{'s' if len(norms) > 1 else ''} ('{norms[0].name}'...): the statistics of "
            f"{batch} examples are too noisy to normalize by",
            ctx.spec_loc("training", "batch_size"),
            f"use batch_size ≥ {MIN_BATCH} (32 or more is usual), or layernorm / "
            "groupnorm, which do not depend on the batch",
        )


@rule(
    "DLC109",
    "dense-on-feature-map",
    "dense on a feature map",
    "dense acts on the last axis only (torch.nn.Linear); on an NCHW map that mixes the "
    "width pixels of each row and channel, which is almost always a forgotten flatten.",
)
def dense_on_feature_map(ctx: LintContext) -> Iterator[Finding]:
    types = ctx.graph.types()
    for n in ctx.nodes:
        if n.op != "dense" or not n.inputs:
            continue
        x = types.get(n.inputs[0])
        if x is not None and x.rank == 4:
            yield Finding(
                f"dense acts on the last axis of the feature map {x}",
                n.loc,
                "this is almost always a forgotten flatten: write flatten -> dense(...)",
            )


POOLS = frozenset({"maxpool1d", "maxpool2d", "avgpool1d", "avgpool2d"})
SPATIAL = POOLS | frozenset({"conv1d", "conv2d", "conv_transpose2d"})


@rule(
    "DLC110",
    "pooled-to-nothing",
    "too much pooling for the input size",
    "Each pooling layer divides the map; once it is 1×1 the layers after it see one "
    "pixel: later convolutions and pools learn nothing spatial, and the input was "
    "too small for this many stages.",
)
def pooled_to_nothing(ctx: LintContext) -> Iterator[Finding]:
    types = ctx.graph.types()
    for n in ctx.nodes:
        if n.op not in POOLS or n.type is None or not n.inputs:
            continue
        before, after = types[n.inputs[0]].shape[2:], n.type.shape[2:]
        if not after or not all(isinstance(d, int) for d in (*before, *after)):
            continue  # symbolic sizes: lint cannot tell
        if any(d != 1 for d in after) or all(d == 1 for d in before):
            continue
        later = [u for u in _downstream(ctx, n.name) if u.op in SPATIAL]
        if later:
            shown = "×".join(str(d) for d in after)
            yield Finding(
                f"'{n.name}' shrinks the map to {shown}, and {len(later)} more "
                f"convolution/pooling layer{'s follow' if len(later) > 1 else ' follows'} "
                f"('{later[0].name}'...): {'they see' if len(later) > 1 else 'it sees'} a "
                "single pixel",
                n.loc,
                "pool less (or with stride 1 / padding) or use fewer stages for this input "
                "size; end with global_avgpool where one value per channel is the goal",
            )
            return


def _downstream(ctx: LintContext, value: str) -> list:  # type: ignore[type-arg]
    seen: dict[str, object] = {}
    todo = [value]
    while todo:
        for u in ctx.consumers(todo.pop()):
            if u.name not in seen:
                seen[u.name] = u
                todo.append(u.name)
    return list(seen.values())
