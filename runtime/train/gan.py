"""`dlc train` of a spec whose `training.gan` trains two networks against each other.

    checked spec (networks: G, D) --> data (real examples, labels) --> G, D as fx modules
        --> epochs of (D's steps, G's step) --> run folder

Each step does what the papers do (Goodfellow et al. 2014, Radford et al. 2016):
  - D's step: the loss on a real batch x and a fake batch G(z) made without a graph (the
    fake is detached: D's step leaves G's weights and gradients alone), then D's optimizer;
  - every `discriminator_steps`-th batch, G's step: a fresh z, G(z) through D with D's
    parameters frozen (requires_grad off), so only G's optimizer moves, and D's weights
    do not change;
  - a conditional GAN feeds the batch's labels to both networks, in both steps;
  - with `ema`, an exponential moving average of G's weights after each G step: the
    average makes the per-epoch samples and is what generator.onnx gets.
The losses are gan_losses.py's. The same seed gives the same run: the weights come from
the spec's init (numpy, seeded; D with seed + 1), the epoch orders from (seed, epoch), z
and wgan_gp's ε from seeded generators, dropout from torch's seeded RNG.

The run folder holds what a `dlc train` run's does (spec.yaml, run.json, model.ir with
both graphs, metrics.jsonl with d_loss, g_loss, d_real = mean σ(D(x)) and d_fake = mean
σ(D(G(z))) per epoch, curves.png, report.md/json) plus samples/epoch_NNN.png (a grid, or
a scatter beside the data for 2-D examples, from fixed noise) and, at the end,
generator.onnx and discriminator.onnx with the trained weights; generator.onnx's
metadata `dlc.sampler` says how to sample it (runtime/sample/gan.py).
"""

from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ...compiler.errors import TrainError, UsageError
from ...compiler.ir import format_graph
from ...compiler.lower.initial_weights import initial_weights
from ...compiler.lower.torch import to_torch
from ...compiler.pipeline import Checked
from ..compile import build_onnx
from ..files import atomic_write
from .devices import pick_device
from .feeds import Split, fit_standardize, load_feeds
from .gan_losses import discriminator_loss, ema_update, generator_loss, gradient_penalty
from .loop import epoch_order
from .optimizers import make_optimizer, param_groups
from .progress import Progress
from .runs import MetricsLog, plot_curves, write_report
from .schedules import Schedule, make_schedule

METRICS = ("d_loss", "g_loss", "d_real", "d_fake")


class GanTrainer:
    """One adversarial run; `run()` returns the result (a dict) and fills `run_dir`."""

    def __init__(
        self,
        checked: Checked,
        spec_path: Path,
        run_dir: Path | None,
        *,
        device: str | None = None,
        quiet: bool = False,
    ) -> None:
        if checked.gan is None:
            raise UsageError(
                f"{spec_path} declares networks: but no training.gan",
                hint="add training: {gan: {generator: G, discriminator: D, noise: z}, ...}",
            )
        self.plan = plan = checked.gan
        nets = dict(checked.networks)
        self.gc, self.dc = nets[plan.generator], nets[plan.discriminator]
        training = self.dc.training
        assert training is not None, "training.gan is part of a training section"
        self.opts = training.options
        self.name = checked.spec.document.data["name"]
        self.spec_path, self.run_dir, self.quiet = spec_path, run_dir, quiet
        self.device = pick_device(device or self.opts.device)
        seed = self.opts.seed
        self.noise_gen = torch.Generator().manual_seed(seed)
        self.gp_gen = torch.Generator().manual_seed(seed + 2)
        noise_type = dict((i.name, i.type) for i in self.gc.graph.inputs)[plan.noise]
        dims = noise_type.shape[1:]
        if not all(isinstance(d, int) for d in dims):
            raise TrainError(
                f"the noise input '{plan.noise}' has symbolic dims {noise_type}: its size "
                "beyond the batch must be fixed to draw z",
                plan.loc,
            )
        self.noise_shape = tuple(d for d in dims if isinstance(d, int))
        self.classes: int | None = None
        self.steps = 0

    # ---- the networks ----------------------------------------------------------------

    def build(self, train: Split) -> None:
        """G and D from the spec's init (seeded), D's standardize layers fitted on the
        real data, an optimizer (and schedule) each, G's average when `ema`."""
        seed = self.opts.seed
        torch.manual_seed(seed)
        self.g = to_torch(self.gc.graph, initial_weights(self.gc.graph, seed)).to(self.device)
        self.d = to_torch(self.dc.graph, initial_weights(self.dc.graph, seed + 1)).to(self.device)
        fit_standardize(self.d, self.dc.graph, train)
        self.g_ema = copy.deepcopy(self.g) if self.plan.ema is not None else None
        self.g_opt = self._optimizer(self.gc, self.g)
        self.d_opt = self._optimizer(self.dc, self.d)

    def _optimizer(self, checked: Checked, model: nn.Module) -> torch.optim.Optimizer:
        assert checked.training is not None
        call = checked.training.optimizer
        decayed, plain = param_groups(model, regularize_all=self.opts.regularize_all)
        try:
            return make_optimizer(call.name, call.kwargs(), decayed + plain)
        except TrainError as e:
            raise TrainError(e.message, call.loc, e.hint) from None

    def _schedule(self, checked: Checked, opt: torch.optim.Optimizer, epochs: int,
                  steps: int) -> Schedule:  # fmt: skip
        assert checked.training is not None
        call = checked.training.schedule
        return make_schedule(
            call.name if call else None, call.kwargs() if call else {}, opt,
            epochs=epochs, steps_per_epoch=max(1, steps), warmup=self.opts.warmup,
        )  # fmt: skip

    def noise(self, n: int) -> Tensor:
        return torch.randn((n, *self.noise_shape), generator=self.noise_gen).to(self.device)

    def generate(self, model: nn.Module, z: Tensor, cond: Tensor | None) -> Tensor:
        feed = {self.plan.noise: z}
        if self.plan.condition is not None and cond is not None:
            feed[self.plan.condition] = cond
        out = model(**feed)
        return out[self.plan.fake] if isinstance(out, dict) else out

    def discriminate(self, x: Tensor, cond: Tensor | None) -> Tensor:
        feed = {self.plan.data: x}
        if self.plan.condition is not None and cond is not None:
            feed[self.plan.condition] = cond
        out = self.d(**feed)
        return out[self.plan.logit] if isinstance(out, dict) else out

    # ---- the steps -------------------------------------------------------------------

    def d_step(self, real: Tensor, cond: Tensor | None) -> dict[str, float]:
        """One step of D on `real` and a detached fake batch of the same size."""
        plan = self.plan
        with torch.no_grad():  # the fake is detached: no graph back into G
            fake = self.generate(self.g, self.noise(real.shape[0]), cond)
        r, f = self.discriminate(real, cond), self.discriminate(fake, cond)
        loss = discriminator_loss(plan.loss, r, f, plan.label_smoothing)
        if plan.loss == "wgan_gp":
            penalty = gradient_penalty(
                lambda x: self.discriminate(x, cond), real, fake, self.gp_gen
            )
            loss = loss + plan.gp_weight * penalty
        self.d_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.d_opt.step()
        return {
            "d_loss": self._finite(loss, "discriminator"),
            "d_real": float(torch.sigmoid(r.detach()).mean()),
            "d_fake": float(torch.sigmoid(f.detach()).mean()),
        }

    def g_step(self, n: int, cond: Tensor | None) -> dict[str, float]:
        """One step of G through D; D's parameters are frozen meanwhile."""
        fake = self.generate(self.g, self.noise(n), cond)
        frozen = [p for p in self.d.parameters() if p.requires_grad]
        for p in frozen:
            p.requires_grad_(False)
        try:
            loss = generator_loss(self.plan.loss, self.discriminate(fake, cond))
            self.g_opt.zero_grad(set_to_none=True)
            loss.backward()
        finally:
            for p in frozen:
                p.requires_grad_(True)
        self.g_opt.step()
        if self.g_ema is not None and self.plan.ema is not None:
            ema_update(self.g_ema, self.g, self.plan.ema)
        return {"g_loss": self._finite(loss, "generator")}

    def _finite(self, loss: Tensor, which: str) -> float:
        value = float(loss.detach())
        if not math.isfinite(value):
            raise TrainError(
                f"the {which}'s loss is {value} at optimizer step {self.steps}",
                self.plan.loc,
                "lower the learning rates, or try loss: hinge or wgan_gp",
            )
        return value

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        opts, plan = self.opts, self.plan
        feeds = load_feeds(self.dc, opts.data, self.spec_path, self.device)
        train = feeds.train
        self.build(train)
        real_all = train.inputs[plan.data]
        cond_all = train.inputs.get(plan.condition) if plan.condition else None
        if cond_all is not None:
            self.classes = feeds.train_set.num_classes or int(cond_all.max()) + 1
        batch = opts.batch_size or train.n
        batches = max(1, math.ceil(train.n / batch))
        k = plan.discriminator_steps
        epochs = opts.epochs if opts.steps is None else math.ceil(opts.steps / batches)
        d_sched = self._schedule(self.dc, self.d_opt, epochs, batches)
        g_sched = self._schedule(self.gc, self.g_opt, epochs, batches // k)
        fixed = self._fixed_inputs(plan.samples)
        log = MetricsLog(self.run_dir / "metrics.jsonl") if self.run_dir else None
        progress = Progress(epochs, batches, quiet=self.quiet)
        rows: list[dict[str, Any]] = []
        for epoch in range(1, epochs + 1):
            progress.begin_epoch(epoch)
            sums = dict.fromkeys(METRICS, 0.0)
            counts = dict.fromkeys(METRICS, 0)
            order = epoch_order(train.n, opts.seed, epoch, opts.data.shuffle)
            for i in range(batches):
                idx = order[i * batch : (i + 1) * batch].to(self.device)
                cond = cond_all[idx] if cond_all is not None else None
                values = self.d_step(real_all[idx], cond)
                d_sched.step_batch()
                if (i + 1) % k == 0:
                    values |= self.g_step(len(idx), cond)
                    g_sched.step_batch()
                self.steps += 1
                for key, v in values.items():
                    sums[key] += v
                    counts[key] += 1
                progress.batch(values["d_loss"])
            row = {key: sums[key] / counts[key] for key in METRICS if counts[key]}
            d_sched.step_epoch(train_loss=row["d_loss"])
            if "g_loss" in row:
                g_sched.step_epoch(train_loss=row["g_loss"])
            row = {"epoch": epoch, "step": self.steps, **row,
                   "time": round(time.perf_counter() - started, 3)}  # fmt: skip
            rows.append(row)
            if log is not None:
                log.append(row)
            self._write_samples(epoch, fixed, real_all)
            progress.end_epoch(epoch, {k: v for k, v in row.items() if k in METRICS})
        progress.close()
        return self._report(rows, epochs, time.perf_counter() - started)

    def _fixed_inputs(self, n: int) -> tuple[Tensor, Tensor | None]:
        """The noise (and labels, 0, 1, ... in turn) every epoch's grid is drawn from."""
        z = torch.randn((n, *self.noise_shape),
                        generator=torch.Generator().manual_seed(self.opts.seed + 1))  # fmt: skip
        labels = None
        if self.classes is not None:
            labels = (torch.arange(n) % self.classes).to(torch.int64)
        return z.to(self.device), None if labels is None else labels.to(self.device)

    def exported_generator(self) -> nn.Module:
        return self.g_ema if self.g_ema is not None else self.g

    @torch.no_grad()
    def _write_samples(self, epoch: int, fixed: tuple[Tensor, Tensor | None],
                       real: Tensor) -> None:  # fmt: skip
        if self.run_dir is None:
            return
        from ..sample.figures import write_samples

        g = self.exported_generator()
        was = g.training
        g.eval()
        try:
            x = self.generate(g, *fixed).float().cpu().numpy()
        finally:
            g.train(was)
        ref = real[:1000].float().cpu().numpy() if x.ndim == 2 and x.shape[1] == 2 else None
        path = self.run_dir / "samples" / f"epoch_{epoch:03d}.png"
        write_samples(x, path, title=f"{self.name}, epoch {epoch}", reference=ref)

    def sampler_metadata(self) -> dict[str, Any]:
        """generator.onnx's `dlc.sampler`: what runtime/sample/gan.py's `sample_gan` reads."""
        return {
            "kind": "gan",
            "noise": self.plan.noise,
            "noise_shape": list(self.noise_shape),
            "condition": self.plan.condition,
            "classes": self.classes,
            "output": self.plan.fake,
            "loss": self.plan.loss,
            "ema": self.plan.ema,
        }

    def _report(self, rows: list[dict[str, Any]], epochs: int, seconds: float) -> dict[str, Any]:
        last = {k: v for k, v in rows[-1].items() if k in METRICS} if rows else {}
        result: dict[str, Any] = {
            "status": "completed",
            "spec": self.name,
            "epochs": epochs,
            "steps": self.steps,
            "seconds": round(seconds, 2),
            "device": str(self.device),
            "processes": 1,
            "message": "",
            "train": last,
        }
        if self.run_dir is None:
            return result
        metrics = {"train": last}
        for role, checked, model in (
            ("generator", self.gc, self.exported_generator()),
            ("discriminator", self.dc, self.d),
        ):
            weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
            extra = {"dlc.gan": json.dumps({"role": role, "spec": self.name})}
            if role == "generator":
                extra["dlc.sampler"] = json.dumps(self.sampler_metadata())
            proto = build_onnx(checked, weights, None, weights_from="trained", metrics=metrics,
                               extra_metadata=extra)  # fmt: skip
            atomic_write(self.run_dir / f"{role}.onnx", proto.SerializeToString())
            result[role] = str(self.run_dir / f"{role}.onnx")
        if plot_curves(rows, self.run_dir / "curves.png", self.name):
            result["curves"] = str(self.run_dir / "curves.png")
        result["samples"] = str(self.run_dir / "samples")
        write_report(self.run_dir, self.name, result)
        return result


def train_gan(args: Any, checked: Checked, spec: Path, overrides: list[str]) -> int:
    """`dlc train` of a spec with networks: (command.py dispatches here)."""
    from .runs import claim_run_dir, new_run_dir, start_run

    if args.resume or args.nproc > 1:
        raise UsageError(
            "a spec with networks: trains in one process from its start: --resume and "
            "--nproc are for single-network specs",
            hint="run dlc train SPEC again (the same seed gives the same run)",
        )
    for _, c in checked.networks:
        for w in c.warnings:
            print(w.render(), file=sys.stderr)
    name = checked.spec.document.data["name"]
    run_dir = claim_run_dir(args.out) if args.out else new_run_dir("runs", name)
    start_run(checked, spec, run_dir, overrides, args.device, 1)
    text = "\n".join(format_graph(c.graph) for _, c in checked.networks)
    atomic_write(run_dir / "model.ir", text + "\n")  # every network's graph
    result = GanTrainer(checked, spec, run_dir, device=args.device, quiet=args.quiet).run()
    shown = "  ".join(f"{k} {v:.4g}" for k, v in result["train"].items())
    print(f"run: {run_dir} ({result['status']}, {result['epochs']} epochs, "
          f"{result['seconds']:.1f} s)\ntrain: {shown}")  # fmt: skip
    print(f"wrote {result['generator']} and {result['discriminator']}  "
          f"(try: dlc sample {run_dir})")  # fmt: skip
    return 0


def sample_array(trainer: GanTrainer, n: int) -> np.ndarray:
    """n samples of the trained (averaged) generator, in torch: for tests."""
    z = trainer.noise(n)
    labels = None
    if trainer.classes is not None:
        labels = (torch.arange(n) % trainer.classes).to(trainer.device)
    g = trainer.exported_generator().eval()
    with torch.no_grad():
        return trainer.generate(g, z, labels).cpu().numpy()
