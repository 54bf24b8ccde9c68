"""`dlc train`: the `training:` section of a spec, run on the fx module of its model.

    checked spec --> data (train / val / test) --> fx GraphModule --> epochs --> run folder

Guarantees:
  - the same seed on the same device gives the same run: weights come from the spec's
    init schemes (numpy, seeded), each epoch's order from (seed, epoch), dropout from the
    torch RNG, whose state every checkpoint keeps; so a run killed at any moment and
    resumed from its last checkpoint ends with the weights of an uninterrupted run;
  - a NaN or infinite loss stops the run with the epoch and step (exit 1), Ctrl-C stops
    it with the current weights saved (exit 130); `last.pt` always holds the last
    complete epoch;
  - `standardize` layers are fitted on the training split before the first step and
    exported as constants in model.onnx;
  - with `--nproc N` (torchrun) each process takes its share of every global batch
    (DistributedSampler's split: rank r takes every N-th example of the epoch's order),
    so N processes follow the curve of one with the same global batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from .. import __version__
from ..compiler.errors import TrainError, UsageError
from ..compiler.lower.initial_weights import initial_weights
from ..compiler.lower.torch import to_torch
from ..compiler.pipeline import Checked
from ..compiler.training import TrainingPlan, check_loss_outputs
from . import distributed as dist
from .devices import Precision, pick_device
from .feeds import Split, fit_standardize, load_feeds, target_name
from .losses import Metrics, OutputsLoss, infer_task, make_loss, total_loss
from .optim import closure_kind, make_optimizer, make_schedule, param_groups, penalty
from .progress import Progress
from .runs import (
    MetricsLog,
    held_interrupts,
    ir_hash,
    load_checkpoint,
    plot_curves,
    save_checkpoint,
    write_report,
)

DEFAULT_EPOCHS = 10
DEFAULT_BATCH = 32
FULL_BATCH_OPTIMIZERS = ("gd", "lbfgs", "newton")


class Interrupted(Exception):
    """Ctrl-C during training, after the current weights were saved."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Options:
    """The plain options of `training:` with their defaults, and the command line's."""

    epochs: int
    steps: int | None
    batch_size: int | None  # None: full batch
    seed: int
    device: torch.device
    precision: str
    warmup: int
    weight_decay: float
    l1: float
    regularize_all: bool
    clip_grad_norm: float | None
    early_stopping: dict[str, Any] | None
    task: str | None
    data: dict[str, Any]
    checkpoint_every: float = 2.0
    shuffle: bool = True
    metrics: list[str] = field(default_factory=list)


def read_options(plan: TrainingPlan, device: str | None) -> Options:
    o = plan.option
    batch = o("batch_size", None)
    if plan.optimizer.name in FULL_BATCH_OPTIMIZERS and (
        plan.optimizer.name == "gd" or batch is None
    ):
        batch = "full"  # gd is full-batch by definition; lbfgs and newton by default
    return Options(
        epochs=o("epochs", DEFAULT_EPOCHS),
        steps=o("steps", None),
        batch_size=None if batch == "full" else (batch or DEFAULT_BATCH),
        seed=o("seed", 0),
        device=pick_device(device or o("device", "auto")),
        precision=o("precision", "fp32"),
        warmup=o("warmup", 0),
        weight_decay=float(o("weight_decay", 0.0)),
        l1=float(o("l1", 0.0)),
        regularize_all=bool(o("regularize_all", False)),
        clip_grad_norm=o("clip_grad_norm", None),
        early_stopping=o("early_stopping", None),
        task=o("task", None),
        data=dict(o("data", {}) or {}),
        shuffle=bool((o("data", {}) or {}).get("shuffle", True)),
        checkpoint_every=float(o("checkpoint_every", 2.0)),
        metrics=list(o("metrics", []) or []),
    )


class Trainer:
    """One training run. `run()` returns the final report (a dict) or raises
    TrainError / DataError / Interrupted after saving what can be saved."""

    def __init__(
        self,
        checked: Checked,
        spec_path: Path,
        run_dir: Path | None,
        *,
        device: str | None = None,
        quiet: bool = False,
        resume: dict[str, Any] | None = None,
    ) -> None:
        plan = checked.training
        if plan is None:
            raise UsageError(
                f"{spec_path} has no training section",
                hint="add one: training: {loss: ..., optimizer: ..., data: ...}",
            )
        if not plan.losses:
            raise TrainError("training needs a loss, e.g. `loss: cross_entropy`", plan.loc)
        self.checked, self.plan, self.spec_path = checked, plan, spec_path
        self.graph = checked.graph
        check_loss_outputs(plan, self.graph)  # the kl_normal(mu, logvar) terms' outputs
        self.opts = read_options(plan, device)
        self.rank, self.world = dist.rank(), dist.world_size()
        self.main = self.rank == 0
        self.run_dir = run_dir
        self.resume_state = resume
        self.quiet = quiet
        self.output_names = [name for name, _ in self.graph.outputs]
        self.best_weights: dict[str, torch.Tensor] | None = None
        self.best_saved: int | None = None
        self.saved_at = -math.inf

    # ---- the model -------------------------------------------------------------------

    def build_model(self, train: Split) -> nn.Module:
        torch.manual_seed(self.opts.seed)
        weights = initial_weights(self.graph, self.opts.seed)
        module = to_torch(self.graph, weights).to(self.opts.device)
        fit_standardize(module, self.graph, train)
        return module

    def forward(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = model(**inputs)
        return out if isinstance(out, dict) else {self.output_names[0]: out}

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        opts, t0 = self.opts, time.perf_counter()
        feeds = load_feeds(self.checked, opts.data, self.spec_path, opts.device)
        train, val, test, train_ds = feeds.train, feeds.val, feeds.test, feeds.train_set
        # metrics follow the first term of (output, target); a kl_normal term has none
        first = next((t for t in self.plan.losses if t.takes_target), self.plan.losses[0])
        shape = self.graph.types()[dict(self.graph.outputs)[first.output]].shape
        task = opts.task or infer_task(first.call.name, shape)
        self.task = task if task != "classification" or train_ds.task != "sequence" else "sequence"
        self.model = model = self.build_model(train)
        decayed, plain = param_groups(model, regularize_all=opts.regularize_all)
        opt_plan = self.plan.optimizer
        try:
            optimizer = make_optimizer(
                opt_plan.name,
                opt_plan.kwargs(),
                decayed + plain,
                regularize_all=opts.regularize_all,
            )
        except TrainError as e:
            raise TrainError(e.message, opt_plan.loc, e.hint) from None
        self.decayed = [p for _, p in decayed]
        self.losses = [
            (
                t.weight,
                make_loss(t.call.name, t.call.kwargs()),
                t.output,
                target_name(t.target, self.opts.data),
            )
            for t in self.plan.losses
        ]
        self.metric_term = next((t for t in self.losses if not isinstance(t[1], OutputsLoss)), None)
        local_n = math.ceil(train.n / self.world)
        batch = opts.batch_size or train.n
        if self.world > 1:
            batch = max(1, batch // self.world)  # the global batch is the spec's
        steps_per_epoch = max(1, math.ceil(local_n / batch))
        epochs = opts.epochs if opts.steps is None else math.ceil(opts.steps / steps_per_epoch)
        sched_plan = self.plan.schedule
        schedule = make_schedule(
            sched_plan.name if sched_plan else None,
            sched_plan.kwargs() if sched_plan else {},
            optimizer,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            warmup=opts.warmup,
        )
        ddp_model = dist.wrap(model, opts.device) if self.world > 1 else model
        amp = Precision(opts.precision, opts.device)
        kind = closure_kind(optimizer)
        monitor, mode = self._monitor(val is not None)
        state = RunState(best=None, best_epoch=None, bad_epochs=0, epoch=0, step=0)
        log = MetricsLog(self.run_dir / "metrics.jsonl") if self.run_dir else None
        rows: list[dict[str, Any]] = []
        if self.resume_state is not None:
            rows = self._restore(self.resume_state, model, optimizer, schedule, amp, state, log)
        progress = Progress(
            epochs, steps_per_epoch, quiet=self.quiet, enabled=self.main, first=state.epoch + 1
        )
        status, message = "finished", ""
        try:
            for epoch in range(state.epoch + 1, epochs + 1):
                progress.begin_epoch(epoch)
                train_values = self.train_epoch(
                    ddp_model, optimizer, schedule, amp, kind, train, epoch, batch, state, progress
                )
                row: dict[str, Any] = {
                    "epoch": epoch,
                    "step": state.step,
                    "lr": schedule.lrs()[0],
                    **train_values,
                }
                if val is not None:
                    row.update({f"val_{k}": v for k, v in self.evaluate(model, val).items()})
                schedule.step_epoch(row.get("val_loss"), train_loss=row["loss"])
                row["time"] = round(time.perf_counter() - t0, 3)
                state.epoch = epoch
                if self._track(row, monitor, mode, state):
                    self.best_weights = _cpu_copy(model.state_dict())
                stop = self._should_stop(state)
                done = (
                    stop or epoch == epochs or (opts.steps is not None and state.step >= opts.steps)
                )
                self._save(model, optimizer, schedule, amp, state, force=done)
                rows.append(row)
                if log is not None and self.main:
                    log.append(row)
                progress.end_epoch(
                    epoch, {k: v for k, v in row.items() if k not in ("epoch", "step", "time")}
                )
                if stop:
                    status = "stopped early"
                    message = (
                        f"early stopping: {monitor} did not improve for {state.bad_epochs} epochs"
                    )
                    progress.message(message)
                if done:
                    break
        except NonFinite as e:
            progress.close()
            self._finish(
                model,
                rows,
                "stopped: non-finite loss",
                e.message,
                t0,
                state,
                train,
                val,
                test,
                export=False,
            )
            last = f" (epoch {state.epoch})" if state.epoch else ""
            where = (
                f"; the last good checkpoint is {self.run_dir / 'last.pt'}{last}"
                if (self.run_dir and state.epoch)
                else ""
            )
            raise TrainError(
                e.message + where,
                self.plan.optimizer.loc,
                "lower the learning rate, set clip_grad_norm, or check the data "
                "for NaN and huge values",
            ) from None
        except KeyboardInterrupt:
            progress.close()
            with held_interrupts():
                if self.run_dir is not None and self.main:
                    save_checkpoint(
                        self.run_dir / "interrupted.pt",
                        {"model": model.state_dict(), "epoch": state.epoch, "step": state.step},
                    )
                msg = f"interrupted in epoch {state.epoch + 1} at step {state.step}"
                self._finish(model, rows, "interrupted", msg, t0, state, train, val, test)
            where = ""
            if self.run_dir:
                where = f"; resume from epoch {state.epoch} with: dlc train --resume {self.run_dir}"
            raise Interrupted(msg + where) from None
        progress.close()
        if opts.early_stopping and opts.early_stopping.get("restore_best", True):
            if self.best_weights is not None:
                model.load_state_dict(self.best_weights)
                message += f"{'; ' if message else ''}restored the best epoch, {state.best_epoch}"
        return self._finish(model, rows, status, message, t0, state, train, val, test)

    def train_epoch(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        amp: Precision,
        kind: str,
        train: Split,
        epoch: int,
        batch: int,
        state: RunState,
        progress: Progress,
    ) -> dict[str, float]:
        model.train()
        order = epoch_order(train.n, self.opts.seed, epoch, self.opts.shuffle)
        if self.world > 1:
            order = dist.shard(order, self.rank, self.world)
        metrics = Metrics(self.task)
        total, count = torch.zeros((), dtype=torch.float64), 0
        steps = math.ceil(len(order) / batch)
        for b in range(steps):
            idx = order[b * batch : (b + 1) * batch].to(self.opts.device)
            inputs, targets = train.take(idx)
            loss, outputs = self.step(model, optimizer, amp, kind, inputs, targets)
            value = float(loss)
            if not math.isfinite(value):
                raise NonFinite(
                    f"the loss is {value} in epoch {epoch}, step {b + 1} of {steps} "
                    f"(optimizer step {state.step + 1})"
                )
            state.step += 1
            schedule.step_batch()
            n = len(idx)
            total += value * n
            count += n
            if (first := self.metric_term) is not None:
                metrics.update(outputs[first[2]].detach().float(), targets[first[3]])
            progress.batch(value)
        loss_mean = float(total) / max(count, 1)
        if self.world > 1:
            loss_mean = dist.mean(loss_mean, self.opts.device)
        return {"loss": loss_mean, **metrics.compute()}

    def step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        amp: Precision,
        kind: str,
        inputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step; returns the loss before it and the outputs it came from."""
        seen: dict[str, dict[str, torch.Tensor]] = {}

        def objective() -> torch.Tensor:
            with amp.autocast():
                outputs = self.forward(model, inputs)
                loss = self.loss(outputs, targets)
            seen["outputs"] = outputs
            return loss

        if kind == "functional":
            from torch.func import functional_call

            buffers = dict(model.named_buffers())

            def at(params: dict[str, torch.Tensor]) -> torch.Tensor:
                outputs = functional_call(model, {**params, **buffers}, (), inputs)
                outputs = outputs if isinstance(outputs, dict) else {self.output_names[0]: outputs}
                seen["outputs"] = outputs
                return self.loss(outputs, targets)

            loss = cast(torch.Tensor, optimizer.step(at))  # type: ignore[arg-type]
            return loss.detach(), seen["outputs"]
        if kind == "closure":

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                loss = objective()
                loss.backward()
                return loss

            loss = cast(torch.Tensor, optimizer.step(closure))  # type: ignore[arg-type]
            return loss.detach(), seen["outputs"]
        optimizer.zero_grad(set_to_none=True)
        loss = objective()
        if not torch.isfinite(loss):
            return loss.detach(), seen["outputs"]  # reported by the caller; no step
        amp.backward(loss)
        if self.opts.clip_grad_norm:
            amp.unscale(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), self.opts.clip_grad_norm)
        amp.step(optimizer)
        return loss.detach(), seen["outputs"]

    def loss(
        self, outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        value, _ = total_loss(self.losses, outputs, targets)
        extra = penalty(self.decayed, self.opts.weight_decay, self.opts.l1)
        return value if extra is None else value + extra

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: Split) -> dict[str, float]:
        model.eval()
        metrics = Metrics(self.task)
        total = 0.0
        first = self.metric_term
        for n, inputs, targets in data.chunks():
            outputs = self.forward(model, inputs)
            total += float(total_loss(self.losses, outputs, targets)[0]) * n
            if first is not None:
                metrics.update(outputs[first[2]].float(), targets[first[3]])
        return {"loss": total / max(data.n, 1), **metrics.compute()}

    # ---- early stopping and checkpoints ---------------------------------------------

    def _monitor(self, has_val: bool) -> tuple[str, str]:
        es = self.opts.early_stopping or {}
        monitor = es.get("monitor", "val_loss" if has_val else "loss")
        if monitor.startswith("val_") and not has_val:
            raise UsageError(
                f"early_stopping monitors {monitor}, but there is no validation data",
                hint="add val_split or val to training.data",
            )
        lower_better = not any(k in monitor for k in ("accuracy", "r2"))
        return monitor, es.get("mode", "min" if lower_better else "max")

    def _track(self, row: dict[str, Any], monitor: str, mode: str, state: RunState) -> bool:
        if monitor not in row:
            raise UsageError(
                f"early_stopping monitors '{monitor}', which this run does not log",
                hint=f"logged: {', '.join(k for k in row if k not in ('epoch', 'step', 'time'))}",
            )
        value = row[monitor]
        delta = float((self.opts.early_stopping or {}).get("min_delta", 0.0))
        better = state.best is None or (
            value < state.best - delta if mode == "min" else value > state.best + delta
        )
        if better:
            state.best, state.best_epoch, state.bad_epochs = value, row["epoch"], 0
        else:
            state.bad_epochs += 1
        return better

    def _should_stop(self, state: RunState) -> bool:
        es = self.opts.early_stopping
        return bool(es) and state.bad_epochs > es.get("patience", 0)  # type: ignore[union-attr]

    def _save(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        amp: Precision,
        state: RunState,
        *,
        force: bool = False,
    ) -> None:
        """`last.pt` (and `best.pt` when the best changed since) at the end of an epoch,
        when `checkpoint_every` seconds have passed since the last save or the run ends."""
        if self.run_dir is None or not self.main:
            return
        now = time.perf_counter()
        if not force and now - self.saved_at < self.opts.checkpoint_every:
            return
        ckpt = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "schedule": schedule.state_dict(),
            "scaler": amp.state_dict(),
            "rng": torch.get_rng_state(),
            "state": state.as_dict(),
            "ir_sha256": ir_hash(self.checked),
            "version": __version__,
        }
        with held_interrupts():  # a Ctrl-C waits until the files are whole
            if self.best_weights is not None and state.best_epoch != self.best_saved:
                best = {"model": self.best_weights, "epoch": state.best_epoch,
                        "ir_sha256": ckpt["ir_sha256"]}  # fmt: skip
                save_checkpoint(self.run_dir / "best.pt", best)
                self.best_saved = state.best_epoch
            save_checkpoint(self.run_dir / "last.pt", ckpt)
        self.saved_at = time.perf_counter()

    def _restore(
        self,
        ckpt: dict[str, Any],
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        schedule: Any,
        amp: Precision,
        state: RunState,
        log: MetricsLog | None,
    ) -> list[dict[str, Any]]:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        schedule.load_state_dict(ckpt["schedule"])
        amp.load_state_dict(ckpt.get("scaler"))
        torch.set_rng_state(ckpt["rng"])
        for k, v in ckpt["state"].items():
            setattr(state, k, v)
        best = self.run_dir / "best.pt" if self.run_dir else None
        if best is not None and best.exists():
            self.best_weights = load_checkpoint(best)["model"]
            self.best_saved = state.best_epoch
        return log.keep_until(state.epoch) if log is not None else []

    def _finish(
        self,
        model: nn.Module,
        rows: list[dict[str, Any]],
        status: str,
        message: str,
        t0: float,
        state: RunState,
        train: Split,
        val: Split | None,
        test: Split | None,
        export: bool = True,
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "status": status,
            "spec": self.checked.graph.name,
            "epochs": state.epoch,
            "steps": state.step,
            "seconds": round(time.perf_counter() - t0, 2),
            "device": str(self.opts.device),
            "processes": self.world,
            "monitor": None,
            "best_epoch": state.best_epoch,
            "message": message,
        }
        if self.opts.early_stopping or state.best_epoch is not None:
            result["monitor"] = (self.opts.early_stopping or {}).get("monitor") or (
                "val_loss" if val is not None else "loss"
            )
        if rows:
            result["train"] = {
                k: v
                for k, v in rows[-1].items()
                if not k.startswith("val_") and k not in ("epoch", "step", "time")
            }
            if val is not None:
                result["val"] = {
                    k.removeprefix("val_"): v for k, v in rows[-1].items() if k.startswith("val_")
                }
        if test is not None and export:
            result["test"] = self.evaluate(model, test)
        if self.run_dir is None or not self.main:
            return result
        if export:
            from .compile import build_onnx
            from .files import atomic_write

            weights = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
            proto = build_onnx(self.checked, weights, None)
            atomic_write(self.run_dir / "model.onnx", proto.SerializeToString())
            result["onnx"] = str(self.run_dir / "model.onnx")
        all_rows = MetricsLog(self.run_dir / "metrics.jsonl").read()
        if plot_curves(all_rows, self.run_dir / "curves.png", self.checked.graph.name):
            result["curves"] = str(self.run_dir / "curves.png")
        write_report(self.run_dir, self.checked.graph.name, result)
        return result


def _cpu_copy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in state.items()}


class NonFinite(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class RunState:
    best: float | None
    best_epoch: int | None
    bad_epochs: int
    epoch: int  # epochs completed
    step: int  # optimizer steps taken

    def as_dict(self) -> dict[str, Any]:
        return {
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
            "epoch": self.epoch,
            "step": self.step,
        }


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run
    and every process of a distributed one see the same order."""
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)
