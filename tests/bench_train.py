"""Benchmark (not a test): one training step of dlc's fx module vs a handwritten
`nn.Module` of the same architecture.

    python tests/bench_train.py [--models digits_mlp,mnist_mlp,lenet_digits] [--batches 64,256]
                                [--steps-variants bare,trainer] [--rounds 15]
                                [--steps 0] [--block-ms 150] [--threads 1]
                                [--interleave step|block]

For each model of CASES (a name, a spec, a handwritten module factory, one example's
input shape) it builds two modules with the same weights: dlc's `torch.fx.GraphModule`
(`to_torch(graph, initial_weights(graph, 0))`, its `standardize` constants set to the
mean and std of a random sample, as `fit_standardize` would) and the handwritten module,
which gets the fx module's state_dict by order (the names differ, every shape is
checked). Before timing, it asserts that the two agree in train mode with the same
dropout mask: outputs, loss and every parameter's gradient.

Both are timed in train mode (dropout on), with the same optimizer (Adam, lr 1e-3, a
fresh one per module), the same loss (cross-entropy on the logits) and the same batch
(B rows of random data of the right shape with random class labels), in two variants:

* bare: `opt.zero_grad(set_to_none=True)`, forward, `F.cross_entropy`, backward,
  `opt.step()`;
* trainer: dlc's own `Trainer.step` (runtime/train/loop.py), the step `dlc train` runs,
  with the loss terms `make_loss` builds from the spec (target checks included), called
  on either module. A Trainer is constructed from the checked spec without data (its
  constructor loads none); `losses` and `decayed`, which `Trainer.run` sets before the
  first epoch, are set here as `run` does. The specs have no weight decay, L1 or
  clipping, so `decayed` is empty and the step is the plain, fp32 one.

Timing: after a warm-up, `--rounds` rounds of N steps of each module. With
`--interleave step` (the default) the steps alternate one by one, fx hand hand fx fx
hand ..., each timed alone, and a round's figure for each module is the median of its N
step times: both see the same moments of a noisy, shared machine, and a step that the
scheduler pre-empts does not count. With `--interleave block` a round runs N steps of one
module in a row and then N of the other (fx first in even rounds), each block's mean is
the round's figure: the caches stay warm with one model, as in real training, but
the noise between blocks is larger (per-round ratios spread by +-10% on a shared
2-core machine, against +-1% step by step). N is `--steps`, or when 0 the number of
steps that fills about `--block-ms` milliseconds (from the warm-up). The garbage
collector is off inside a round (collected before each).

Figures per model, batch and variant: the median over rounds of µs per step for each;
fx/hand as the median of the per-round ratios (with their interquartile range), as the
ratio of the medians and as the ratio of the fastest rounds; and whether the median
per-round ratio is <= 1.03. Single-threaded by default (`--threads`).

Reading it: two copies of the same module measure 1.00 +- 0.01 step by step (the floor).
The fx module does the same tensor work as the handwritten one; its extra cost is Python
dispatch per forward: every layer is a submodule call (`standardize`, `dropout` too,
where a handwritten forward writes them inline) and GraphModule's call wrapper, about 8
more Python calls (49 against 41 for digits_mlp), which shows at small batches.

The CNN (lenet_digits) is measured the same way against a handwritten LeNet.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlc.compiler.lower.initial_weights import initial_weights
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops.preprocess import modules as tm
from dlc.compiler.pipeline import Checked, check_file
from dlc.runtime.train.devices import Precision
from dlc.runtime.train.feeds import target_name
from dlc.runtime.train.loop import Trainer
from dlc.runtime.train.losses import make_loss
from dlc.runtime.train.optimizers import closure_kind

ROOT = Path(__file__).resolve().parent.parent
LR = 1e-3
CLASSES = 10
THRESHOLD = 1.03

# ---- the handwritten modules -----------------------------------------------------------


class DigitsMLP(nn.Module):
    """specs/digits_mlp.yaml: standardize -> dense(256) -> relu -> dropout(0.5) ->
    dense(128) -> relu -> dense(10)."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, features: int = 64, hidden: int = 256, p: float = 0.5) -> None:
        super().__init__()
        # registered first, so that the state_dict's order is the fx module's
        self.register_buffer("shift", torch.zeros(features))
        self.register_buffer("scale", torch.ones(features))
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, 128)
        self.fc3 = nn.Linear(128, CLASSES)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - self.shift) / self.scale
        x = F.dropout(F.relu(self.fc1(x)), self.p, self.training)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class MnistMLP(nn.Module):
    """specs/mnist_mlp.yaml: dense(256) -> relu -> dropout(0.5) -> dense(128) -> relu ->
    dense(10)."""

    def __init__(self, features: int = 784, hidden: int = 256, p: float = 0.5) -> None:
        super().__init__()
        self.fc1 = nn.Linear(features, hidden)
        self.fc2 = nn.Linear(hidden, 128)
        self.fc3 = nn.Linear(128, CLASSES)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.dropout(F.relu(self.fc1(x)), self.p, self.training)
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNetDigits(nn.Module):
    """specs/lenet_digits.yaml: flatten -> standardize -> reshape to [B, 1, 8, 8];
    conv2d(16, 3, same) -> relu -> maxpool2d(2); conv2d(32, 3, same) -> relu ->
    maxpool2d(2); flatten -> dense(64) -> relu -> dropout(0.25) -> dense(10)."""

    shift: torch.Tensor
    scale: torch.Tensor

    def __init__(self, c1: int = 16, c2: int = 32, hidden: int = 64, p: float = 0.25) -> None:
        super().__init__()
        self.register_buffer("shift", torch.zeros(64))
        self.register_buffer("scale", torch.ones(64))
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.fc1 = nn.Linear(c2 * 2 * 2, hidden)
        self.fc2 = nn.Linear(hidden, CLASSES)
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x.flatten(1) - self.shift) / self.scale).reshape(-1, 1, 8, 8)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), self.p, self.training)
        return self.fc2(x)


@dataclass(frozen=True)
class Case:
    name: str
    spec: str  # relative to the repository root
    handwritten: Callable[[], nn.Module]
    input_shape: tuple[int, ...]  # one example's, without the batch axis


CASES = [
    Case("digits_mlp", "specs/digits_mlp.yaml", DigitsMLP, (64,)),
    Case("mnist_mlp", "specs/mnist_mlp.yaml", MnistMLP, (784,)),
    Case("lenet_digits", "specs/lenet_digits.yaml", LeNetDigits, (1, 8, 8)),
]

# ---- building and checking -------------------------------------------------------------


@dataclass
class Pair:
    checked: Checked
    spec_path: Path
    fx: nn.Module
    hand: nn.Module
    input_name: str


def build(case: Case, sample: torch.Tensor) -> Pair:
    spec_path = ROOT / case.spec
    checked = check_file(spec_path)
    graph = checked.graph
    fx = to_torch(graph, initial_weights(graph, 0))
    with torch.no_grad():  # what fit_standardize would fit on a training split
        for layer in fx.modules():
            if isinstance(layer, tm.Standardize):
                flat = sample.reshape(len(sample), -1)
                layer.shift.copy_(flat.mean(0))
                layer.scale.copy_(flat.std(0, unbiased=False) + 1e-8)
    hand = case.handwritten()
    load_by_order(hand, fx.state_dict())
    return Pair(checked, spec_path, fx, hand, graph.inputs[0].name)


def load_by_order(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    mine = module.state_dict()
    assert len(mine) == len(state), f"{len(mine)} tensors vs the fx module's {len(state)}"
    mapped = {}
    for (k, v), (fx_k, fx_v) in zip(mine.items(), state.items(), strict=True):
        assert v.shape == fx_v.shape, f"{k} {tuple(v.shape)} vs {fx_k} {tuple(fx_v.shape)}"
        mapped[k] = fx_v.detach().clone()
    module.load_state_dict(mapped, strict=True)


def assert_agree(pair: Pair, x: torch.Tensor, y: torch.Tensor) -> None:
    """Outputs in eval and train mode (same dropout mask), loss and gradients."""
    results = []
    for model in (pair.fx, pair.hand):
        model.eval()
        with torch.no_grad():
            plain = model(x)
        model.train()
        torch.manual_seed(1234)
        out = model(x)
        loss = F.cross_entropy(out, y)
        model.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters() if p.grad is not None]
        model.zero_grad(set_to_none=True)
        results.append((plain, out.detach(), loss.detach(), grads))
    (p1, o1, l1, g1), (p2, o2, l2, g2) = results
    assert torch.allclose(p1, p2, rtol=1e-5, atol=1e-5), "eval outputs differ"
    assert torch.allclose(o1, o2, rtol=1e-5, atol=1e-5), "train outputs differ"
    assert torch.allclose(l1, l2, rtol=1e-5, atol=1e-6), "losses differ"
    assert len(g1) == len(g2) == len(list(pair.fx.parameters())), "missing gradients"
    for a, b in zip(g1, g2, strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6), "gradients differ"


# ---- the two step variants -------------------------------------------------------------

Step = Callable[[], object]


def bare_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Step:
    opt = torch.optim.Adam(model.parameters(), lr=LR)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def make_trainer(pair: Pair) -> Trainer:
    trainer = Trainer(pair.checked, pair.spec_path, None, device="cpu", quiet=True)
    plan, opts = trainer.plan, trainer.opts
    assert not opts.weight_decay and not opts.l1 and not opts.clip_grad_norm
    assert opts.precision == "fp32"
    assert [t.call.name for t in plan.losses] == ["cross_entropy"]
    # as Trainer.run sets them before the first epoch
    trainer.losses = [
        (t.weight, make_loss(t.call.name, t.call.kwargs()), t.output,
         target_name(t.target, opts.data))
        for t in plan.losses
    ]  # fmt: skip
    trainer.decayed = []  # no weight decay or L1: the penalty is None either way
    return trainer


def trainer_step(
    trainer: Trainer, model: nn.Module, input_name: str, x: torch.Tensor, y: torch.Tensor
) -> Step:
    opt = torch.optim.Adam(model.parameters(), lr=LR)  # what make_optimizer builds for adam
    amp = Precision("fp32", torch.device("cpu"))
    kind = closure_kind(opt)
    inputs, targets = {input_name: x}, {trainer.losses[0][3]: y}
    return lambda: trainer.step(model, opt, amp, kind, inputs, targets)


# ---- timing ----------------------------------------------------------------------------


def block(step: Step, n: int) -> float:
    """Mean seconds per step over n steps in a row."""
    start = time.perf_counter()
    for _ in range(n):
        step()
    return (time.perf_counter() - start) / n


def alternating(fx: Step, hand: Step, n: int) -> tuple[float, float]:
    """n steps of each, one at a time in the order fx hand hand fx fx hand ...: the
    median seconds per step of each."""
    times: tuple[list[float], list[float]] = ([], [])
    clock = time.perf_counter
    for i in range(n):
        for k in (0, 1) if i % 2 == 0 else (1, 0):
            step = fx if k == 0 else hand
            start = clock()
            step()
            times[k].append(clock() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def one_round(fx: Step, hand: Step, n: int, interleave: str, r: int) -> tuple[float, float]:
    gc.collect()
    gc.disable()  # no collection lands inside one side's timing
    try:
        if interleave == "step":
            return alternating(fx, hand, n)
        if r % 2 == 0:
            a = block(fx, n)
            return a, block(hand, n)
        b = block(hand, n)
        return block(fx, n), b
    finally:
        gc.enable()


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def compare(
    fx: Step, hand: Step, rounds: int, steps: int, block_ms: float, interleave: str
) -> dict[str, float]:
    warm = max(10, steps // 2)
    t_fx, t_hand = block(fx, warm), block(hand, warm)
    if steps <= 0:
        steps = max(5, round(block_ms / 1e3 / min(t_fx, t_hand)))
    fx_times: list[float] = []
    hand_times: list[float] = []
    for r in range(rounds):
        a, b = one_round(fx, hand, steps, interleave, r)
        fx_times.append(a)
        hand_times.append(b)
    ratios = [a / b for a, b in zip(fx_times, hand_times, strict=True)]
    q1, q3 = quartiles(ratios)
    fx_med, hand_med = statistics.median(fx_times), statistics.median(hand_times)
    return {
        "steps": steps,
        "fx": fx_med,
        "hand": hand_med,
        "ratio": statistics.median(ratios),
        "q1": q1,
        "q3": q3,
        "of_medians": fx_med / hand_med,
        "of_bests": min(fx_times) / min(hand_times),
    }


def row(name: str, batch: int, variant: str, r: dict[str, float]) -> str:
    ok = "yes" if r["ratio"] <= THRESHOLD else "NO"
    cells = [
        f"{name:11}",
        f"{batch:>5}",
        f"{variant:8}",
        f"{r['steps']:>4}",
        f"{r['fx'] * 1e6:>9.1f}",
        f"{r['hand'] * 1e6:>9.1f}",
        f"{r['ratio']:>8.3f}",
        f"{r['q1']:.3f}-{r['q3']:.3f}".rjust(13),
        f"{r['of_medians']:>8.3f}",
        f"{r['of_bests']:>8.3f}",
        f"{ok:>6}",
    ]
    return " ".join(cells)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(c.name for c in CASES))
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--steps-variants", default="bare,trainer")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--steps", type=int, default=0, help="steps per block; 0: from --block-ms")
    parser.add_argument("--block-ms", type=float, default=150.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--interleave", choices=("step", "block"), default="step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cases = {c.name: c for c in CASES}
    unknown = [m for m in args.models.split(",") if m not in cases]
    if unknown:
        parser.error(f"unknown model(s) {', '.join(unknown)}; known: {', '.join(cases)}")
    variants = args.steps_variants.split(",")
    if not set(variants) <= {"bare", "trainer"}:
        parser.error("--steps-variants takes bare and/or trainer")

    print(f"machine: {platform.platform()}, os.cpu_count()={os.cpu_count()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); Adam lr {LR}, "
          f"cross-entropy, train mode; median of {args.rounds} rounds interleaved by "
          f"{args.interleave}")  # fmt: skip
    head = (f"{'model':11} {'batch':>5} {'step':8} {'N':>4} {'fx us':>9} {'hand us':>9} "
            f"{'fx/hand':>8} {'IQR':>13} {'of meds':>8} {'of bests':>8} {'<=1.03':>6}")  # fmt: skip
    print(head)
    print("-" * len(head))
    rng = np.random.default_rng(0)
    for name in args.models.split(","):
        case = cases[name]
        for batch in (int(b) for b in args.batches.split(",")):
            shape = (batch, *case.input_shape)
            x = torch.from_numpy(rng.normal(3.0, 2.0, shape).astype(np.float32))
            y = torch.from_numpy(rng.integers(0, CLASSES, batch))
            pair = build(case, x)
            assert_agree(pair, x, y)
            pair.fx.train()
            pair.hand.train()
            for variant in variants:
                if variant == "bare":
                    fx, hand = bare_step(pair.fx, x, y), bare_step(pair.hand, x, y)
                else:
                    trainer = make_trainer(pair)
                    fx = trainer_step(trainer, pair.fx, pair.input_name, x, y)
                    hand = trainer_step(trainer, pair.hand, pair.input_name, x, y)
                r = compare(fx, hand, args.rounds, args.steps, args.block_ms, args.interleave)
                print(row(name, batch, variant, r), flush=True)
    print()
    print("fx/hand: median of the per-round ratios (IQR: their quartiles); of meds: median fx\n"
          "time / median hand time; of bests: fastest fx round / fastest hand round; <=1.03\n"
          "judges the median per-round ratio.")  # fmt: skip


if __name__ == "__main__":
    main()
