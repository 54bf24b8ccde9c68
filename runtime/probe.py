"""`dlc lint --probe`: the model run once at init, forward and backward, and what each
layer does with the signal and its gradient.

    checked spec --> one batch of its training data (as `dlc train` loads and fits it)
                 --> the fx module at init, train mode --> forward (every node's output
                 recorded) --> the spec's own loss --> backward --> a row per node

The batch is the first batch `dlc train` would take (epoch 1's order, the spec's
batch_size; a full-batch spec gives at most FULL_BATCH_CAP examples), with the same
`standardize` fitting and the same initial weights (the spec's init schemes and seed), on
the CPU, in float32 (a spec's `precision:` is not applied). A spec without a training
section (or without training data or a loss) is probed on random inputs drawn as
`dlc compile --verify` draws them (runtime/compile.py's sample_inputs), through a plain
sum-of-squares loss; the report says so. A batchnorm that normalizes very few values per
channel (a batch of 2 and 1x1 maps) passes almost no gradient back: what the probe shows
then is true of that batch, so probe on the batch the model will train with.

Per node (graph order): the output's mean and std; for relu/relu6 the fraction of outputs
exactly 0 and of dead units (a unit is one position of the output apart from the batch
axis: a feature, or a channel at one pixel; it is dead when it is 0 for every example of
the batch, so no gradient reaches its weights through it); for sigmoid/tanh (and
hardsigmoid, lecun_tanh, hardtanh) the fraction of outputs within SATURATION_BAND of a
bound; for a node with trainable parameters the L2 norm of the gradient of all of them
together (weight and bias), which is what `training: {log_gradients: true}` logs per epoch.

Findings, each a warning at the node's place in the spec, with a rule id:

- DLC201 vanishing gradient: a layer's gradient norm below VANISHING (1e-4) of the largest
  layer's. Ten sigmoid layers at Glorot init reach 1e-5 and below; ReLU with He init and
  residual stacks stay within 1e-2 (tests/probe_cases/).
- DLC202 saturated activations: more than SATURATED (20%) of a sigmoid/tanh output within
  SATURATION_BAND (0.01) of its bounds, where the derivative is below 0.01.
- DLC203 dead ReLUs: more than DEAD (50%) of a relu's units 0 on every example of the batch.
  (Half of a healthy relu's outputs are 0; a unit that is 0 for the whole batch is dead.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.errors import Diagnostic, Loc
from ..compiler.ir import Node
from ..compiler.lint import Lint
from ..compiler.pipeline import Checked

VANISHING = 1e-4  # DLC201: gradient norm / the largest layer's
SATURATED = 0.2  # DLC202: fraction of outputs within SATURATION_BAND of a bound
SATURATION_BAND = 0.01
DEAD = 0.5  # DLC203: fraction of units 0 on every example of the batch
FULL_BATCH_CAP = 1024  # a full-batch spec is probed on at most this many examples
RANDOM_BATCH = 32  # the batch of random inputs when the spec names no training data
THRESHOLDS = {"vanishing": VANISHING, "saturated": SATURATED,
              "saturation_band": SATURATION_BAND, "dead": DEAD}  # fmt: skip

RECTIFIERS = frozenset({"relu", "relu6"})
# the bounds of each saturating activation's output (hardtanh's are its attributes)
BOUNDS: dict[str, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0),
    "hardsigmoid": (0.0, 1.0),
    "tanh": (-1.0, 1.0),
    "lecun_tanh": (-1.7159, 1.7159),
}


@dataclass
class ProbeRow:
    """One node's output on the probe's batch, and its parameters' gradient."""

    node: str
    op: str
    shape: tuple[int, ...]
    mean: float | None = None
    std: float | None = None
    zero: float | None = None  # relu family: fraction of outputs exactly 0
    dead: float | None = None  # relu family: fraction of units 0 on every example
    saturated: float | None = None  # sigmoid/tanh: fraction within the band of a bound
    params: int = 0
    grad_norm: float | None = None  # nodes with trainable parameters
    loc: Loc | None = None
    rules: list[str] = field(default_factory=list)  # the findings' ids at this node

    def to_json(self, largest: float) -> dict[str, Any]:
        keys = ("node", "op", "mean", "std", "zero", "dead", "saturated", "params", "grad_norm")
        out: dict[str, Any] = {k: getattr(self, k) for k in keys}
        out["rules"] = list(self.rules)
        out["shape"] = list(self.shape)
        out["grad_ratio"] = _ratio(self.grad_norm, largest)
        out.update(_loc_json(self.loc))
        return out


@dataclass(frozen=True, slots=True)
class ProbeFinding(Lint):
    """A warning of the probe: a static lint's finding (rule id, message, place, fix,
    printed and serialized the same way) that also names the node it measured."""

    node: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**Lint.to_json(self), "node": self.node}


@dataclass
class ProbeReport:
    """What `dlc lint --probe` prints: a row per node in graph order, and the findings."""

    name: str
    source: str  # where the batch came from, in words
    loss: str
    batch: int
    seed: int
    rows: list[ProbeRow]
    findings: list[ProbeFinding]
    random_inputs: bool = False

    @property
    def largest(self) -> float:
        return max((r.grad_norm for r in self.rows if r.grad_norm is not None), default=0.0)

    def table(self) -> str:
        """A plain aligned table, like `dlc summary`'s."""
        largest = self.largest
        header = ("node", "op", "output", "mean", "std", "zero", "dead", "sat", "grad norm",
                  "/ max", "")  # fmt: skip
        body = [(r.node, r.op, "[" + ", ".join(map(str, r.shape)) + "]", _num(r.mean),
                 _num(r.std), _pct(r.zero), _pct(r.dead), _pct(r.saturated),
                 _sci(r.grad_norm), _sci(_ratio(r.grad_norm, largest)), " ".join(r.rules))
                for r in self.rows]  # fmt: skip
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

        def line(row: tuple[str, ...]) -> str:
            cells = [c.ljust(w) if i < 3 or i == 10 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
            return "  ".join(cells).rstrip()

        rule = "-" * len(line(header))
        head = [f"probe {self.name}: {self.source}",
                f"loss {self.loss}, at init (seed {self.seed}), train mode"]  # fmt: skip
        out = [*head, rule, line(header), rule, *map(line, body), rule]
        out.append(
            "zero: relu outputs exactly 0; dead: relu units 0 for the whole batch; "
            f"sat: sigmoid/tanh outputs within {SATURATION_BAND:g} of a bound"
        )
        out.append("grad norm: L2 norm of the gradient of the node's parameters; / max: of "
                   "the largest")  # fmt: skip
        counts = {r: sum(f.rule == r for f in self.findings) for r in ("DLC201", "DLC202",
                                                                         "DLC203")}  # fmt: skip
        flagged = ", ".join(f"{r} x{n}" for r, n in counts.items() if n) or "none"
        out.append(
            f"findings: {flagged} (DLC201 grad norm < {VANISHING:g} x the largest; DLC202 "
            f"sat > {SATURATED:.0%}; DLC203 dead > {DEAD:.0%})"
        )
        return "\n".join(out)

    def diagnostics(self) -> list[Diagnostic]:
        return [f.diagnostic for f in self.findings]

    def to_json(self) -> dict[str, Any]:
        largest = self.largest
        return {
            "name": self.name,
            "source": self.source,
            "random_inputs": self.random_inputs,
            "loss": self.loss,
            "batch": self.batch,
            "seed": self.seed,
            "thresholds": dict(THRESHOLDS),
            "largest_grad_norm": largest,
            "rows": [r.to_json(largest) for r in self.rows],
            "findings": [f.to_json() for f in self.findings],
        }


def probe(checked: Checked, *, batch_size: int | None = None,
          seed: int | None = None) -> ProbeReport:  # fmt: skip
    """Run the model once at init on a batch of its training data (or random inputs when
    the spec names none), forward and backward through the spec's loss, on the CPU.
    `batch_size` None is the spec's (capped at FULL_BATCH_CAP when full-batch); `seed` None
    is the spec's training seed (dlc train's initial weights and first batch)."""
    from .probe_run import run_probe

    plan = checked.training
    seed = seed if seed is not None else (plan.options.seed if plan is not None else 0)
    run = run_probe(checked, batch_size, seed)
    largest = max((r.grad_norm for r in run.rows if r.grad_norm is not None), default=0.0)
    findings = [f for r in run.rows for f in _findings(r, run.rows, largest)]
    for f in findings:
        next(r for r in run.rows if r.node == f.node).rules.append(f.rule)
    return ProbeReport(checked.graph.name, run.source, run.loss, run.batch, seed, run.rows,
                       findings, run.random_inputs)  # fmt: skip


def _findings(row: ProbeRow, rows: list[ProbeRow], largest: float) -> list[ProbeFinding]:
    out = []
    if row.grad_norm is not None and largest > 0 and row.grad_norm < VANISHING * largest:
        top = next(r for r in rows if r.grad_norm == largest)
        out.append(ProbeFinding(
            rule="DLC201", node=row.node, loc=row.loc, message=
            f"vanishing gradient: the gradient of '{row.node}' has norm {row.grad_norm:.1e} at "
            f"init, {row.grad_norm / largest:.0e} of the largest ('{top.node}', {largest:.1e})",
            hint="use relu with init=he_normal in the hidden layers, add residual(...) connections "
            "around the layers, or put batchnorm/layernorm between them",
        ))  # fmt: skip
    if row.saturated is not None and row.saturated > SATURATED:
        out.append(ProbeFinding(
            rule="DLC202", node=row.node, loc=row.loc, message=
            f"saturated activations: {row.saturated:.0%} of the outputs of {row.op} "
            f"'{row.node}' are within {SATURATION_BAND:g} of a bound at init, where its "
            "derivative is near 0 and those units barely learn",
            hint="standardize the inputs, use a smaller init (glorot_*, lecun_*) in the layer "
            "before, or relu",
        ))  # fmt: skip
    if row.dead is not None and row.dead > DEAD:
        out.append(ProbeFinding(
            rule="DLC203", node=row.node, loc=row.loc, message=
            f"dead ReLUs: {row.dead:.0%} of the units of {row.op} '{row.node}' are 0 for "
            "every example of the batch at init: no gradient reaches their weights",
            hint="use init=he_normal with zero biases, standardize the inputs, or leaky_relu",
        ))  # fmt: skip
    return out


def saturation_bounds(node: Node) -> tuple[float, float] | None:
    if node.op == "hardtanh":
        return float(node.attr("min")), float(node.attr("max"))
    return BOUNDS.get(node.op)


def _ratio(g: float | None, largest: float) -> float | None:
    return None if g is None or largest <= 0 else g / largest


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.3g}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.0f}%"


def _sci(v: float | None) -> str:
    if v is None:
        return "-"
    return "0" if v == 0 else f"{v:.1e}" if math.isfinite(v) else str(v)


def _loc_json(loc: Loc | None) -> dict[str, Any]:
    return {"file": loc.file if loc else None, "line": loc.line if loc else None,
            "col": loc.col if loc else None}  # fmt: skip


def plot_gradients(report: ProbeReport, path: str | Path) -> Path:
    """A PNG of the per-layer gradient norms (log scale), in graph order."""
    from .probe_plot import plot_gradient_norms

    return plot_gradient_norms(report, Path(path))
