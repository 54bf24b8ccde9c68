"""The layer library, embeddings and sequence plumbing: embedding (and dense's tie=),
positional_encoding, timestep_embedding, patch_embed, cls_token, take, mean.

Token ids come in as an integer input ([B, T], `dtype: int64`); `embedding` turns them
into vectors [B, T, D] (torch.nn.Embedding: row i of the table for id i). The other ops
work on [B, T, D] sequences: `positional_encoding` adds a [T, D] table of positions,
`timestep_embedding` encodes a diffusion model's time step t [B] the same way,
`patch_embed` cuts an image into patches and embeds each (ViT), `cls_token` prepends a
learned token, and `take` / `mean` reduce a sequence to one vector per example.
A language model's output layer can reuse the embedding's table: `dense(vocab, tie=emb)`
(linear.py) computes x Eᵀ with the table E of the embedding node `emb`.
"""

from __future__ import annotations

from ...dims import Dim, floordiv
from ...ir import InitSpec, ParamSpec, TensorType
from ..common import GLOROT_UNIFORM, ZEROS, known_channels, norm_axis, numel
from ..linear import features
from ..registry import (
    AXIS,
    INIT,
    INT,
    OPTIONAL_INT,
    POS_INT,
    POS_NUMBER,
    PROB,
    Arg,
    OpCtx,
    OpDef,
    choice,
    register,
)
from .examples import ERRORS, EXAMPLES

INT_TYPES = ("int64", "int32")
NORMAL = InitSpec("normal", (("mean", 0.0), ("std", 1.0)))  # torch.nn.Embedding's
SMALL_NORMAL = InitSpec("normal", (("mean", 0.0), ("std", 0.02)))  # GPT's and ViT's



def _sequence(ctx: OpCtx) -> tuple[Dim, int]:
    """T and D of a [B, T, D] input (D concrete: weights and tables need it)."""
    if ctx.x.rank != 3:
        raise ctx.fail(
            f"{ctx.node.op} needs a sequence [B, T, D], got {ctx.x}",
            "embed tokens first (embedding) or cut an image into patches (patch_embed)",
        )
    return ctx.x.shape[1], features(ctx)


# -- embedding ---------------------------------------------------------------------


def _embedding_shape(ctx: OpCtx) -> TensorType:
    if ctx.x.dtype not in INT_TYPES:
        raise ctx.fail(
            f"embedding looks up token ids, but its input is {ctx.x.dtype} {ctx.x}",
            "give the input integer ids: `x: {shape: [B, T], dtype: int64}`",
        )
    pad, vocab = ctx["padding_idx"], ctx["vocab"]
    if pad is not None and not -vocab <= pad < vocab:
        raise ctx.fail(
            f"padding_idx={pad} is not a token id of a vocabulary of {vocab}",
            f"use an id in 0..{vocab - 1} (or -{vocab}..-1 from the end)",
        )
    return TensorType(ctx.x.shape + (ctx["dim"],), "float32")


def _embedding_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    return (ParamSpec("weight", (ctx["vocab"], ctx["dim"]), ctx.init("init", NORMAL)),)


register(
    OpDef(
        "embedding",
        examples=EXAMPLES.get("embedding", ()),
        args=(
            Arg("vocab", POS_INT, doc="number of token ids (rows of the table)"),
            Arg("dim", POS_INT, doc="size of each embedding vector"),
            Arg("padding_idx", OPTIONAL_INT, None, "an id whose row gets no gradient"),
            Arg("init", INIT, None, "table init (default: training.init, else normal(0, 1))"),
        ),
        shape=_embedding_shape,
        params=_embedding_params,
        category="embedding",
        int_inputs=True,
        doc="Token ids [B, T] to vectors [B, T, dim]: row i of a learned table for id i "
        "(torch.nn.Embedding).",
    )
)


# -- positional_encoding ------------------------------------------------------------


def _positions_shape(ctx: OpCtx) -> TensorType:
    t, _ = _sequence(ctx)
    max_len = ctx["max_len"]
    if isinstance(t, int) and t > max_len:
        raise ctx.fail(
            f"positional_encoding covers {max_len} positions, but {ctx.x} has {t}",
            f"raise max_len to at least {t}",
        )
    return ctx.x


def _positions_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    """Learned positions are a weight; the sinusoidal table is a constant (not stored)."""
    if ctx["kind"] == "sinusoidal":
        return ()
    return (ParamSpec("weight", (ctx["max_len"], features(ctx)), SMALL_NORMAL),)


register(
    OpDef(
        "positional_encoding",
        examples=EXAMPLES.get("positional_encoding", ()),
        args=(
            Arg("kind", choice("sinusoidal", "learned"), "sinusoidal"),
            Arg("max_len", POS_INT, 512, "the longest sequence it encodes"),
            Arg("dropout", PROB, 0.0, "dropout after adding the positions (training only)"),
        ),
        shape=_positions_shape,
        params=_positions_params,
        flops=lambda ctx, out: numel(out),
        category="sequence",
        doc="x + P[:T] on [B, T, D]: P the course's sinusoids (a constant) or learned "
        "[max_len, D] (init normal(0, 0.02)), then dropout.",
    )
)


# -- timestep_embedding -------------------------------------------------------------


def _timestep_shape(ctx: OpCtx) -> TensorType:
    """t [B] or [B, 1] (ints or floats) -> [B, dim] float32."""
    t, dim = ctx.x, ctx["dim"]
    if t.dtype not in INT_TYPES and t.dtype not in ("float32", "float64", "float16", "bfloat16"):
        raise ctx.fail(
            f"timestep_embedding encodes time steps, but its input is {t.dtype} {t}",
            "give the time an int64 or float32 input: `t: {shape: [B], dtype: int64}`",
        )
    if not (t.rank == 1 or (t.rank == 2 and t.shape[1] == 1)):
        raise ctx.fail(
            f"timestep_embedding needs one time step per example, [B] or [B, 1], got {t}",
            "declare the time input as `t: {shape: [B], dtype: int64}`",
        )
    if dim % 2:
        raise ctx.fail(
            f"timestep_embedding(dim={dim}) needs an even dim: sin and cos come in pairs",
            f"use dim={dim + 1} or {dim - 1}",
        )
    return TensorType((t.shape[0], dim), "float32")


register(
    OpDef(
        "timestep_embedding",
        examples=EXAMPLES.get("timestep_embedding", ()),
        errors=ERRORS.get("timestep_embedding", ()),
        args=(
            Arg("dim", POS_INT, doc="size of the encoding (even)"),
            Arg("max_period", POS_NUMBER, 10000.0, "the longest wavelength, 2π·max_period"),
        ),
        shape=_timestep_shape,
        flops=lambda ctx, out: 2 * numel(out),
        category="embedding",
        int_inputs=True,
        doc="A diffusion model's time step t [B] (or [B, 1]; int or float) to [B, dim]: "
        "the course's sinusoids at position t, E(t, 2i) = sin(t / P^(2i/dim)) and "
        "E(t, 2i+1) = cos(t / P^(2i/dim)), P = max_period (positional_encoding's table "
        "read at t; no parameters).",
    )
)


# -- patch_embed --------------------------------------------------------------------


def _patches(ctx: OpCtx, side: Dim, what: str) -> Dim:
    patch = ctx["patch"]
    if isinstance(side, int) and side % patch:
        raise ctx.fail(
            f"patch_embed({patch}, ...) needs the image {what} to be a multiple of {patch}, "
            f"got {ctx.x}",
            "resize or pad the images, or choose a patch size that divides them",
        )
    return floordiv(side, patch)


def _channels(ctx: OpCtx) -> int:
    if ctx.x.rank != 4:
        raise ctx.fail(
            f"patch_embed needs images [B, C, H, W], got {ctx.x}",
            "reshape flat pixels to [B, C, H, W] first",
        )
    return known_channels(ctx)


def _patch_shape(ctx: OpCtx) -> TensorType:
    _channels(ctx)
    b, _, h, w = ctx.x.shape
    count = _patches(ctx, h, "height") * _patches(ctx, w, "width")
    return TensorType((b, count, ctx["dim"]), ctx.x.dtype)


def _patch_params(ctx: OpCtx, out: TensorType) -> tuple[ParamSpec, ...]:
    p, dim = ctx["patch"], ctx["dim"]
    weight = ParamSpec("weight", (dim, _channels(ctx), p, p), ctx.init("init", GLOROT_UNIFORM))
    return (weight, ParamSpec("bias", (dim,), ZEROS))


register(
    OpDef(
        "patch_embed",
        examples=EXAMPLES.get("patch_embed", ()),
        args=(
            Arg("patch", POS_INT, doc="side of the square patches (kernel and stride)"),
            Arg("dim", POS_INT, doc="size of each patch's embedding"),
        ),
        shape=_patch_shape,
        params=_patch_params,
        flops=lambda ctx, out: (2 * _channels(ctx) * ctx["patch"] ** 2 + 1) * numel(out),
        category="sequence",
        doc="Images [B, C, H, W] to a sequence of patch embeddings [B, H·W/patch², dim]: a "
        "conv with kernel = stride = patch (weights named as torch.nn.Conv2d's), row by row.",
    )
)


# -- cls_token ----------------------------------------------------------------------


def _cls_shape(ctx: OpCtx) -> TensorType:
    t, _ = _sequence(ctx)
    return TensorType((ctx.x.shape[0], t + 1) + ctx.x.shape[2:], ctx.x.dtype)


register(
    OpDef(
        "cls_token",
        examples=EXAMPLES.get("cls_token", ()),
        shape=_cls_shape,
        params=lambda ctx, out: (ParamSpec("token", (1, 1, features(ctx)), SMALL_NORMAL),),
        category="sequence",
        doc="Prepend a learned token [1, 1, D] (init normal(0, 0.02)) to every sequence: "
        "[B, T, D] -> [B, T+1, D]; take(0) reads it out after the encoder (ViT).",
    )
)


# -- take, mean ---------------------------------------------------------------------


def _without_axis(ctx: OpCtx) -> tuple[int, TensorType]:
    """The normalized axis and the input's type without it."""
    if ctx.x.rank == 0:
        raise ctx.fail(f"{ctx.node.op} needs a tensor with axes, got a scalar")
    axis = norm_axis(ctx, ctx["axis"], ctx.x.rank)
    return axis, TensorType(ctx.x.shape[:axis] + ctx.x.shape[axis + 1 :], ctx.x.dtype)


def _take_shape(ctx: OpCtx) -> TensorType:
    axis, out = _without_axis(ctx)
    n, index = ctx.x.shape[axis], ctx["index"]
    if isinstance(n, int) and not -n <= index < n:
        raise ctx.fail(
            f"take({index}) is out of range for axis {ctx['axis']} of {ctx.x}",
            f"use an index in {-n}..{n - 1} (-1 is the last)",
        )
    return out


register(
    OpDef(
        "take",
        examples=EXAMPLES.get("take", ()),
        args=(
            Arg("index", INT, doc="the position to keep; negative counts from the end"),
            Arg("axis", AXIS, 1),
        ),
        shape=_take_shape,
        category="shape",
        int_inputs=True,
        doc="x[:, index] for axis 1 (torch.select): one position of a sequence, the axis "
        "removed: [B, T, D] -> [B, D]; take(0) after cls_token, take(-1) the last token.",
    )
)

register(
    OpDef(
        "mean",
        examples=EXAMPLES.get("mean", ()),
        args=(Arg("axis", AXIS, 1),),
        shape=lambda ctx: _without_axis(ctx)[1],
        flops=lambda ctx, out: numel(ctx.x),
        category="sequence",
        doc="The mean over one axis, removed (torch.mean(x, dim=axis)): [B, T, D] -> [B, D] "
        "pools a sequence.",
    )
)
