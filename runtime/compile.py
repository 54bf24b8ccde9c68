"""`dlc compile`: a checked spec to an ONNX file (and a standalone model.py), with the
weights of a checkpoint or freshly initialised, and `--verify`: the torch module and
onnxruntime on the same random inputs.

`--verify` must test what it claims, so it never runs a model on inputs it rejects nor
passes a comparison that cannot fail: the inputs' symbolic dims get sizes the shape rules
accept (choose_sizes, or `--size`), token ids stay inside each embedding's table, and an
output too small for the tolerance to mean anything is compared again with redrawn
weights, or fails.

Without `--verify` and `--emit torch` nothing here imports torch: the initial weights come
from numpy and the ONNX graph from onnx.helper.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..compiler.dims import evaluate, free_symbols, is_sym, substitute
from ..compiler.dtypes import FLOAT_DTYPES as FLOATS
from ..compiler.dtypes import NUMPY_DTYPES
from ..compiler.errors import Diagnostic, ShapeError, UsageError
from ..compiler.ir import format_graph
from ..compiler.lower.initial_weights import fans, initial_weights
from ..compiler.ops.attention.masks import key_masks
from ..compiler.pipeline import Checked
from ..compiler.shapes import infer_shapes
from .files import atomic_write
from .metadata import model_metadata
from .weights import match_weights, read_weights

RTOL, ATOL = 1e-5, 1e-6
# An output whose largest magnitude is s passes when |torch - ort| <= ATOL + RTOL*s, a
# relative error of ATOL/s + RTOL: 0.1% at s = 1e-3, and beyond that the absolute floor
# lets almost anything through (outputs of 1e-11 pass whatever the graph computes).
# Below MIN_SCALE verify redraws the weights rather than judge.
MIN_SCALE = 1e-3
# The size verify gives an input's symbolic dim when the model takes it (dlc's choice
# before the search below existed), and the largest it tries.
PREFERRED_SIZE, MAX_SIZE = 3, 256
NP_DTYPES = {d: np.dtype(d) for d in NUMPY_DTYPES}


@dataclass
class Compiled:
    onnx_path: Path | None
    parameters: int
    size: int
    written: list[Path] = field(default_factory=list)
    verified: Verified | None = None  # with `check`


def spec_hash(checked: Checked) -> str:
    """A hash of the resolved spec: the canonical IR text, params and export applied."""
    text = format_graph(checked.graph) + repr(checked.export_outputs)
    return hashlib.sha256(text.encode()).hexdigest()


def resolve_weights(checked: Checked, path: str | None, seed: int = 0) -> dict[str, np.ndarray]:
    if path is None:
        return initial_weights(checked.graph, seed)
    return match_weights(checked.graph, read_weights(path), path)


def build_onnx(
    checked: Checked,
    weights: Mapping[str, np.ndarray],
    opset: int | None,
    *,
    weights_from: str = "initial",
    metrics: Mapping[str, Any] | None = None,
    extra_metadata: Mapping[str, str] | None = None,
) -> Any:
    """The ONNX model of `checked` with `weights`; its metadata_props say what it is (the
    spec, its hash) and how to read it (runtime/metadata.py). `weights_from` says where
    the weights came from ("initial", "trained", "checkpoint"); `metrics` are a run's;
    `extra_metadata` what a trainer knows beyond the spec (a GAN network's role, a
    diffusion model's fitted scaling), replacing an entry of the same key."""
    from ..compiler.lower.onnx import default_opset, supported_opsets, to_onnx

    opset = opset or (checked.spec.export.opset if checked.spec.export else None)
    opset = opset or default_opset(checked.graph)
    if opset not in supported_opsets():
        r = supported_opsets()
        raise UsageError(f"opset {opset} is not supported: use {r.start}..{r.stop - 1}")
    metadata = {"dlc.spec": checked.graph.name, "dlc.spec_sha256": spec_hash(checked),
                "dlc.version": __version__}  # fmt: skip
    metadata.update(model_metadata(checked, weights_from=weights_from, metrics=metrics))
    metadata.update(extra_metadata or {})
    return to_onnx(
        checked.graph,
        weights,
        opset=opset,
        extra_outputs=checked.export_outputs,
        metadata=metadata,
        doc=checked.spec.doc,
    )


def parse_sizes(texts: Sequence[str]) -> dict[str, int]:
    """`--size H=64` (repeatable, or `H=64,W=32`) as {symbol: size}."""
    sizes: dict[str, int] = {}
    for item in (part.strip() for text in texts for part in text.split(",")):
        name, eq, value = (x.strip() for x in item.partition("="))
        if not (eq and name.isidentifier() and value.isdigit() and int(value) >= 1):
            raise UsageError(f"--size takes NAME=SIZE with a positive integer size, not {item!r}")
        sizes[name] = int(value)
    return sizes


def input_symbols(checked: Checked) -> tuple[list[str], list[str]]:
    """The inputs' free symbols in order of first appearance, split into the batch (a
    symbol first seen in an input's leading dim) and the others."""
    batch: list[str] = []
    other: list[str] = []
    for i in checked.graph.inputs:
        for k, d in enumerate(i.type.shape):
            for s in sorted(free_symbols(d)) if is_sym(d) else ():
                if s not in batch and s not in other:
                    (batch if k == 0 else other).append(s)
    return batch, other


def choose_sizes(checked: Checked, given: Mapping[str, int] | None = None) -> dict[str, int]:
    """A size for every non-batch symbol of the inputs, one the model accepts: the `given`
    ones as they are, each other the smallest the model accepts, at least PREFERRED_SIZE
    where it can be. A UsageError names a given symbol the inputs lack, or says why the
    model rejects the given sizes."""
    batch, other = input_symbols(checked)
    given = dict(given or {})
    for name in given:
        if name in batch:
            raise UsageError(f"--size {name}: {name} is the batch, which verify sets to 1 and 4")
        if name not in other:
            raise UsageError(
                f"--size {name}: the inputs have no dim named {name}",
                hint=f"their symbolic dims besides the batch: {', '.join(other) or 'none'}",
            )
    free = [s for s in other if s not in given]
    tries = _candidates() if free else [PREFERRED_SIZE]  # with none free, one try decides
    env = next((e for n in tries if not _rejection(checked, e := _fill(given, free, n))), None)
    if env is None:
        # the free symbols at their largest, so that what is shown is the given ones' fault
        reasons = _rejection(checked, _fill(given, free, MAX_SIZE if given else PREFERRED_SIZE))
        if given:
            text = ", ".join(f"{k}={v}" for k, v in given.items())
            others = f" with any {', '.join(free)} up to {MAX_SIZE}" if free else ""
            head = f"--size {text}: the model does not accept it{others}"
        else:
            head = f"no size of {', '.join(free)} up to {MAX_SIZE} fits the model"
        raise UsageError([Diagnostic(head, hint="give a size it accepts: --size NAME=SIZE"),
                          *reasons])  # fmt: skip
    for s in free:  # lower each symbol on its own, the others held
        for n in _candidates():
            if n >= env[s]:
                break
            if not _rejection(checked, {**env, s: n}):
                env[s] = n
                break
    return env


def _candidates() -> list[int]:
    # today's size 3 first, so that specs which always accepted it keep their outputs;
    # 2 and 1 only for a model that takes nothing larger
    return [*range(PREFERRED_SIZE, MAX_SIZE + 1), *range(PREFERRED_SIZE - 1, 0, -1)]


def _fill(given: Mapping[str, int], free: Sequence[str], n: int) -> dict[str, int]:
    return {**given, **dict.fromkeys(free, n)}


def _rejection(checked: Checked, sizes: Mapping[str, int]) -> tuple[Diagnostic, ...]:
    """Why the model does not accept these sizes (nothing when it does): the shape rules
    rerun on inputs with the sizes put in (so a rule that checks a concrete size, such
    as a positional table's max_len, has its say), then every dim must be positive for
    batches 1 and 4."""
    g = checked.graph
    inputs = tuple(replace(i, type=replace(i.type, shape=_put(i.type.shape, sizes)))
                   for i in g.inputs)  # fmt: skip
    # attributes name the symbols too: reshape([B, T, 2, -1])
    nodes = tuple(replace(n, attrs=_put(n.attrs, sizes)) for n in g.nodes)
    try:
        typed, _ = infer_shapes(replace(g, inputs=inputs, nodes=nodes), checked.default_init)
    except ShapeError as e:
        return e.diagnostics
    batch, _ = input_symbols(checked)
    text = ", ".join(f"{k}={v}" for k, v in sizes.items())
    for n in typed.nodes:
        assert n.type is not None  # infer_shapes raised otherwise
        for b in (1, 4):
            shape = [evaluate(d, dict.fromkeys(batch, b)) for d in n.type.shape]
            if any(d < 1 for d in shape):
                return (Diagnostic(f"with {text}, {n.op} '{n.name}' would be {shape}", n.loc),)
    return ()


def _put(value: Any, sizes: Mapping[str, int]) -> Any:
    """`value` (a dim, or tuples of them and of other attribute values) with `sizes` put
    in for its symbols."""
    if is_sym(value):
        return substitute(value, sizes)
    if isinstance(value, tuple):
        return tuple(_put(v, sizes) for v in value)
    return value


def sample_inputs(
    checked: Checked,
    batch: int,
    rng: np.random.Generator,
    sizes: Mapping[str, int] | None = None,
) -> dict[str, np.ndarray]:
    """Random inputs with every symbolic dim made concrete: the batch = `batch`, the
    others `sizes` (default: choose_sizes). Token ids that an embedding reads lie in its
    vocabulary (the smallest, if several read them); an input that attention reads only
    as a key padding mask is one, each row a prefix of ones (at least one) then padding;
    other integers in 0..7, other bools true or false at random."""
    env = dict(sizes if sizes is not None else choose_sizes(checked))
    env.update(dict.fromkeys(input_symbols(checked)[0], batch))
    vocab: dict[str, int] = {}
    for n in checked.graph.nodes:
        if n.op == "embedding":
            for name in n.inputs:
                vocab[name] = min(vocab.get(name, n.attr("vocab")), n.attr("vocab"))
    masks = _mask_inputs(checked) - set(vocab)
    out: dict[str, np.ndarray] = {}
    for i in checked.graph.inputs:
        shape = tuple(evaluate(d, env) for d in i.type.shape)
        dtype = NP_DTYPES.get(i.type.dtype, np.float32)
        if i.name in masks and len(shape) == 2:
            out[i.name] = padding_mask(shape, rng).astype(dtype)
        elif dtype == np.bool_:
            out[i.name] = rng.integers(0, 2, shape).astype(dtype)
        elif np.issubdtype(dtype, np.integer):
            out[i.name] = rng.integers(0, vocab.get(i.name, 8), shape).astype(dtype)
        else:
            out[i.name] = rng.standard_normal(shape).astype(dtype)
    return out


def _mask_inputs(checked: Checked) -> set[str]:
    """The inputs that attention reads as key padding masks, directly or through ops on
    integer or bool values (`mask=attention_mask -> pad([1, 0], value=1)`)."""
    nodes = {n.name: n for n in checked.graph.nodes}
    todo = [m for n in checked.graph.nodes for m in key_masks(n)]
    seen: set[str] = set()
    while todo:
        value = todo.pop()
        node = nodes.get(value)
        if value in seen or (node is not None and node.type and node.type.dtype in FLOATS):
            continue
        seen.add(value)
        todo.extend(node.inputs if node is not None else ())
    return seen & {i.name for i in checked.graph.inputs}


def padding_mask(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A [B, S] key padding mask as a tokenizer makes one: row b is L_b ones then zeros,
    L_b drawn from 1..S (the first row S: one example fills the batch's length)."""
    batch, steps = shape
    lengths = rng.integers(1, steps + 1, batch)
    lengths[:1] = steps
    return np.arange(steps)[None, :] < lengths[:, None]


@dataclass
class Verified:
    """What `--verify` found: the sizes it used, the largest |torch - onnxruntime|, whether
    every element is within tolerance, the output too small to judge that made it redraw
    the weights (`rescaled_for`) and the one still too small after that (`too_small`)."""

    sizes: dict[str, str]
    max_diff: float
    ok: bool
    rescaled_for: str | None = None
    too_small: str | None = None
    calibrated: str = ""  # how the redrawn weights' batchnorm statistics were set, if any

    @property
    def passed(self) -> bool:
        return self.ok and self.too_small is None

    def report(self) -> list[str]:
        """The lines `dlc compile --verify` prints: the sizes used, then the verdict."""
        used = ", ".join(f"{k}={n}" for k, n in self.sizes.items())
        head = f"verify ({used})" if used else "verify"
        lines = []
        if self.rescaled_for is not None:
            lines.append(f"{head}: output {self.rescaled_for} is below {MIN_SCALE:g} with these "
                         "weights, too small to judge: comparing with weights redrawn "
                         f"N(0, 1/fan_in){self.calibrated}")  # fmt: skip
            head += " with redrawn weights"
        if self.too_small is not None:
            lines.append(f"{head}: CANNOT JUDGE: output {self.too_small} is still below "
                         f"{MIN_SCALE:g}: too small to tell torch from onnxruntime")  # fmt: skip
        else:
            lines.append(
                f"{head}: torch and onnxruntime {'agree' if self.ok else 'DISAGREE'}: max "
                f"|difference| {self.max_diff:.3g} (tolerance {ATOL:g} + {RTOL:g} x the "
                "output's largest magnitude)"
            )
        return lines


def verify(
    checked: Checked,
    weights: Mapping[str, np.ndarray],
    model: Any,
    sizes: Mapping[str, int],
    opset: int | None = None,
) -> Verified:
    """Run the torch module and onnxruntime's `model` on random inputs (batch 1 and 4, the
    other dims `sizes`, from choose_sizes) and compare them normwise: |torch - ort| <=
    ATOL + RTOL x the output's largest magnitude. An output smaller than MIN_SCALE makes
    that test vacuous, so it is rerun with weights drawn N(0, 1/fan_in), which keep
    activations near unit variance (the ONNX graph rebuilt around them, in `opset`); an
    output still too small fails (`too_small`), never passes."""
    env = dict(sizes)
    shown = {s: "1,4" for s in input_symbols(checked)[0]} | {k: str(v) for k, v in env.items()}
    worst, ok, small = _compare(checked, weights, model, env)
    if small is None:
        return Verified(shown, worst, ok)
    weights = unit_variance_weights(checked, weights)
    rescaled_for = small
    worst, ok, small = _compare(checked, weights, build_onnx(checked, weights, opset), env)
    if small is None or not any(n.op == "batchnorm" for n in checked.graph.nodes):
        return Verified(shown, worst, ok, rescaled_for, small)
    # still too small: the batchnorms' initial statistics shrink the signal (SiLU nets)
    weights = calibrate_batchnorms(checked, weights, env)
    worst, ok, small = _compare(checked, weights, build_onnx(checked, weights, opset), env)
    return Verified(shown, worst, ok, rescaled_for, small, CALIBRATED)


def _compare(
    checked: Checked, weights: Mapping[str, np.ndarray], model: Any, env: dict[str, int]
) -> tuple[float, bool, str | None]:
    """The largest difference, whether all are within tolerance, and the first float
    output whose largest magnitude is below MIN_SCALE (with that magnitude), if any."""
    import onnxruntime as ort
    import torch

    from ..compiler.lower.torch import to_torch

    module = to_torch(checked.graph, weights).eval()
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [name for name, _ in checked.graph.outputs]
    worst, ok = 0.0, True
    scales: dict[str, float] = {}  # of the float outputs
    rng = np.random.default_rng(0)
    for batch in (1, 4):
        feeds = sample_inputs(checked, batch, rng, env)
        with torch.no_grad():
            result = module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
        ours = result if isinstance(result, dict) else {names[0]: result}
        out_names = [o.name for o in session.get_outputs()]
        theirs = dict(zip(out_names, session.run(None, feeds), strict=True))
        for name in names:
            a, b = ours[name].numpy(), theirs[name]
            diff = np.abs(a.astype(np.float64) - b.astype(np.float64))
            worst = max(worst, float(diff.max(initial=0.0)))
            # relative to the output's scale: a float32 sum that cancels has no relative
            # precision of its own
            scale = float(np.abs(b).max(initial=0.0))
            ok = ok and bool(np.all(diff <= ATOL + RTOL * scale))
            if np.issubdtype(b.dtype, np.floating):
                scales[name] = max(scales.get(name, 0.0), scale)
    small = [f"'{n}' (largest magnitude {s:.3g})" for n, s in scales.items() if s < MIN_SCALE]
    return worst, ok, small[0] if small else None


def unit_variance_weights(
    checked: Checked, weights: Mapping[str, np.ndarray], seed: int = 0
) -> dict[str, np.ndarray]:
    """`weights` with every trainable matrix and kernel redrawn N(0, 1/fan_in): a linear
    map then keeps its input's variance, so a deep stack's output stays near unit scale.
    Vectors (biases, norm scales) and buffers keep their values."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for n in checked.graph.nodes:
        for p in n.params:
            if p.trainable and len(p.shape) >= 2:
                std = 1.0 / math.sqrt(fans(p.shape)[0])
                out[f"{n.name}.{p.name}"] = rng.normal(0.0, std, p.shape).astype(np.float32)
    return out


CALIBRATED = " and batchnorm statistics taken from the inputs"


def calibrate_batchnorms(
    checked: Checked, weights: Mapping[str, np.ndarray], sizes: Mapping[str, int]
) -> dict[str, np.ndarray]:
    """`weights` with each batchnorm's running statistics taken from what reaches it on a
    random batch (in eval mode, layer after layer): each channel's mean, and one variance
    for all the channels, their mean. Freshly initialised statistics (0 and 1) leave a
    deep net's signal to shrink layer after layer (EfficientNet-B0's logits: 1e-17, and
    5e-8 with weights redrawn N(0, 1/fan_in)); calibrated ones bring every layer back to
    unit scale. One variance per layer, not one per channel: a channel that happens to be
    near constant (variances of 1e-11) would be amplified until float32 rounding decides
    the comparison."""
    if not any(n.op == "batchnorm" for n in checked.graph.nodes):
        return dict(weights)
    import torch

    from ..compiler.lower.torch import to_torch

    def calibrate(m: Any, args: tuple[Any, ...]) -> None:
        x = args[0]
        axes = [0, *range(2, x.dim())]
        m.running_mean.copy_(x.mean(axes))
        m.running_var.fill_(float(x.var(axes).mean()))

    module = to_torch(checked.graph, weights).eval()
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(calibrate)
    feeds = sample_inputs(checked, 8, np.random.default_rng(1), sizes)
    with torch.no_grad():
        module(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    calibrated = {k: v.numpy() for k, v in module.state_dict().items()}
    return {k: calibrated.get(k, v) for k, v in weights.items()}


def network_targets(
    checked: Checked, spec_path: str | Path, out: str | Path | None, weights: str | None
) -> list[tuple[Checked, str | Path | None]]:
    """Where `dlc compile` writes each network: a single-network spec where -o says; a
    spec with `networks:` one file per network, NAME.NETWORK.onnx beside the spec or
    beside -o's path (OUT.NETWORK.onnx), or NETWORK.onnx inside -o when -o is a folder
    (an existing one, or a path ending in /)."""
    if not checked.networks:
        return [(checked, out)]
    if weights is not None:
        raise UsageError(
            "--weights loads one network's weights: a spec with networks: compiles each "
            "with initial weights",
            hint="a trained GAN's run folder holds generator.onnx and discriminator.onnx",
        )
    base = Path(out) if out else Path(spec_path).with_suffix(".onnx")
    folder = out is not None and (str(out).endswith(("/", "\\")) or Path(out).is_dir())
    return [
        (c, base / f"{name}.onnx" if folder else base.with_suffix(f".{name}{base.suffix}"))
        for name, c in checked.networks
    ]


def compile_spec(
    checked: Checked,
    spec_path: str | Path,
    *,
    out: str | Path | None = None,
    weights_path: str | None = None,
    emit: Sequence[str] = ("onnx",),
    check: bool = False,
    opset: int | None = None,
    seed: int = 0,
    sizes: Mapping[str, int] | None = None,
) -> Compiled:
    unknown = set(emit) - {"onnx", "torch"}
    if unknown:
        raise UsageError(f"--emit takes onnx and torch, not {', '.join(sorted(unknown))}")
    if sizes and not check:
        raise UsageError("--size gives the sizes that --verify runs: add --verify")
    # before anything is written: a --size the model rejects is the user's mistake
    env = choose_sizes(checked, sizes) if check else {}
    target = Path(out) if out else Path(spec_path).with_suffix(".onnx")
    weights = resolve_weights(checked, weights_path, seed)
    origin = "initial" if weights_path is None else "checkpoint"
    model = build_onnx(checked, weights, opset, weights_from=origin)
    data = model.SerializeToString()
    result = Compiled(None, checked.graph.num_params, len(data))
    if "onnx" in emit:
        result.onnx_path = atomic_write(target, data)
        result.written.append(target)
    if "torch" in emit:
        from ..compiler.lower.model_py import model_py

        result.written.append(
            atomic_write(target.with_suffix(".py"), model_py(checked.graph, __version__))
        )
    if check:
        result.verified = verify(checked, weights, model, env, opset)
    return result
