"""`dlc train`'s loop: the `training:` section of a spec, run on the fx module of its model.

    checked spec --> data (train / val / test) --> fx GraphModule --> epochs --> run folder

`Trainer.run` is three steps: `setup` (the data, the model, the optimizer and its
schedule, and on resume the checkpoint's state), `loop` (the epochs: train, evaluate,
early stopping, checkpoints via checkpoints.py) and `report` (report.py: the result and
the files that close the run folder).

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
  - with `log_gradients: true` each epoch's row holds every layer's gradient norm, the
    mean over its steps (gradients.py); off, the step tests one attribute and no more;
  - with `--nproc N` (torchrun) each process takes its share of every global batch
    (DistributedSampler's split: rank r takes every N-th example of the epoch's order),
    so N processes follow the curve of one with the same global batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ...compiler.errors import TrainError, UsageError
from ...compiler.lower.initial_weights import initial_weights
from ...compiler.lower.torch import to_torch
from ...compiler.pipeline import Checked
from ...compiler.training import DataOptions, check_loss_outputs
from . import distributed as dist
from .checkpoints import Checkpoints, RunState
from .devices import Precision, pick_device
from .feeds import Feeds, Split, fit_standardize, load_feeds, target_name
from .gradients import ROW_KEY, GradientLog
from .losses import LossTerm, Metrics, OutputsLoss, infer_task, make_loss, total_loss
from .optimizers import ClosureKind, closure_kind, make_optimizer, param_groups, penalty
from .progress import Progress
from .report import BOOKKEEPING, summarize, write_run_files
from .runs import MetricsLog, held_interrupts
from .schedules import Schedule, make_schedule
from .stopping import Monitor
from .tensorboard import TensorBoardLog


class Interrupted(Exception):
    """Ctrl-C during training, after the current weights were saved."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NonFinite(Exception):
    """A NaN or infinite loss in a training step (the loop turns it into a TrainError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Setup:
    """What `Trainer.setup` prepares for the epochs."""

    train: Split
    val: Split | None
    test: Split | None
    optimizer: torch.optim.Optimizer
    schedule: Schedule
    stepped: nn.Module  # the model the steps run: DistributedDataParallel on N processes
    precision: Precision
    closure_kind: ClosureKind  # what optimizer.step takes
    batch: int  # this process's share of the global batch
    epochs: int
    steps_per_epoch: int
    stopping: Monitor  # and the best epoch, which best.pt holds
    state: RunState
    log: MetricsLog | None  # metrics.jsonl, in a run with a folder
    rows: list[dict[str, Any]]  # one metrics row per epoch completed, resumed ones included


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
        on_epoch: Callable[[int, dict[str, Any]], bool] | None = None,
    ) -> None:
        """`on_epoch(epoch, row)` sees each epoch's metrics row; True stops the run there
        (status "stopped": `dlc search`'s pruner)."""
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
        self.opts = plan.options
        # `dlc train --device` overrides the spec's `device:`
        self.device = pick_device(device or self.opts.device)
        self.rank, self.world = dist.rank(), dist.world_size()
        self.main = self.rank == 0
        self.run_dir = run_dir
        self.resume_state = resume
        self.quiet = quiet
        self.on_epoch = on_epoch
        self.output_names = [name for name, _ in self.graph.outputs]
        self.checkpoints = Checkpoints(
            checked, run_dir, main=self.main, every=self.opts.checkpoint_every
        )
        # set by setup(); bench_train.py sets `losses` and `decayed` itself to call step()
        self.losses: list[LossTerm] = []
        self.decayed: list[nn.Parameter] = []
        self.metric_term: LossTerm | None = None  # the term the metrics follow
        self.grad_log: GradientLog | None = None  # log_gradients: set by setup()
        self.tb: TensorBoardLog | None = None  # tensorboard: set by setup()

    # ---- the model -------------------------------------------------------------------

    def build_model(self, train: Split) -> nn.Module:
        torch.manual_seed(self.opts.seed)
        weights = initial_weights(self.graph, self.opts.seed)
        module = to_torch(self.graph, weights).to(self.device)
        fit_standardize(module, self.graph, train)
        return module

    def load_feeds(self, data: DataOptions) -> Feeds:
        """The run's data as tensors (diffusion.py's trainer reads x0 alone)."""
        return load_feeds(self.checked, data, self.spec_path, self.device)

    def forward(self, model: nn.Module, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = model(**inputs)
        return out if isinstance(out, dict) else {self.output_names[0]: out}

    # ---- the run ---------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.perf_counter()
        run = self.setup()
        progress = Progress(
            run.epochs,
            run.steps_per_epoch,
            quiet=self.quiet,
            enabled=self.main,
            first=run.state.epoch + 1,
        )
        try:
            status, message = self.loop(run, progress, started)
        except NonFinite as e:
            progress.close()
            raise self._stopped_non_finite(run, e, started) from None
        except KeyboardInterrupt:
            progress.close()
            raise self._interrupted(run, started) from None
        progress.close()
        if run.stopping.restores_best() and self.checkpoints.best_weights is not None:
            self.model.load_state_dict(self.checkpoints.best_weights)
            message += f"{'; ' if message else ''}restored the best epoch, {run.state.best_epoch}"
        return self.report(run, status, message, started)

    def setup(self) -> Setup:
        """The data, the model, its optimizer, schedule and losses, and where the run
        stands: at epoch 0, or where the checkpoint being resumed left it."""
        opts = self.opts
        feeds = self.load_feeds(opts.data)
        train = feeds.train
        # metrics follow the first term of (output, target); a kl_normal term has none
        first = next((t for t in self.plan.losses if t.takes_target), self.plan.losses[0])
        shape = self.graph.types()[dict(self.graph.outputs)[first.output]].shape
        task = opts.task or infer_task(first.call.name, shape)
        sequence = task == "classification" and feeds.train_set.task == "sequence"
        self.task = "sequence" if sequence else task
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
        stepped = dist.wrap(model, self.device) if self.world > 1 else model
        precision = Precision(opts.precision, self.device)
        if opts.log_gradients and self.main:  # DDP's gradients are the same on every rank
            guard = precision.scaler is not None  # fp16 overflows leave inf gradients
            self.grad_log = GradientLog(model, self.graph, self.device, guard=guard)
        kind = closure_kind(optimizer)
        stopping = Monitor(opts.early_stopping, feeds.val is not None)
        state = RunState(best=None, best_epoch=None, bad_epochs=0, epoch=0, step=0)
        log = MetricsLog(self.run_dir / "metrics.jsonl") if self.run_dir else None
        rows: list[dict[str, Any]] = []
        if self.resume_state is not None:
            rows = self.checkpoints.restore(
                self.resume_state, model, optimizer, schedule, precision, state, log
            )
        if opts.tensorboard and self.run_dir is not None and self.main:
            self.tb = TensorBoardLog.open(self.checked, self.run_dir, state.epoch)
        return Setup(
            train=train,
            val=feeds.val,
            test=feeds.test,
            optimizer=optimizer,
            schedule=schedule,
            stepped=stepped,
            precision=precision,
            closure_kind=kind,
            batch=batch,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            stopping=stopping,
            state=state,
            log=log,
            rows=rows,
        )

    def loop(self, run: Setup, progress: Progress, started: float) -> tuple[str, str]:
        """The epochs after the last one completed, until the last, `steps` optimizer
        steps, or early stopping; (status, message) of the run."""
        opts, state = self.opts, run.state
        for epoch in range(state.epoch + 1, run.epochs + 1):
            progress.begin_epoch(epoch)
            train_values = self.train_epoch(run, epoch, progress)
            row: dict[str, Any] = {
                "epoch": epoch,
                "step": state.step,
                "lr": run.schedule.lrs()[0],
                **train_values,
            }
            if self.grad_log is not None and (norms := self.grad_log.epoch_values()):
                row[ROW_KEY] = norms  # none from a functional optimizer (newton)
            if run.val is not None:
                row.update({f"val_{k}": v for k, v in self.evaluate(self.model, run.val).items()})
            run.schedule.step_epoch(row.get("val_loss"), train_loss=row["loss"])
            row["time"] = round(time.perf_counter() - started, 3)
            state.epoch = epoch
            if run.stopping.track(row, state):
                self.checkpoints.keep_best(self.model)
            stop = run.stopping.should_stop(state)
            done = (
                stop or epoch == run.epochs or (opts.steps is not None and state.step >= opts.steps)
            )
            # The row first, then the checkpoint: a run killed between the two resumes from
            # the previous checkpoint, and its rows past that epoch are dropped (keep_until);
            # the other order lost the row of the epoch the checkpoint holds.
            run.rows.append(row)
            if run.log is not None and self.main:
                run.log.append(row)
            if self.tb is not None:
                self.tb.write(row)
            self.checkpoints.save(
                self.model, run.optimizer, run.schedule, run.precision, state, force=done
            )
            progress.end_epoch(epoch, {k: v for k, v in row.items() if k not in BOOKKEEPING})
            if self.on_epoch is not None and self.on_epoch(epoch, row) and not done:
                return "stopped", f"stopped after epoch {epoch} by its caller"
            if stop:
                monitor = run.stopping.monitor
                message = f"early stopping: {monitor} did not improve for {state.bad_epochs} epochs"
                progress.message(message)
                return "stopped early", message
            if done:
                break
        return "finished", ""

    def report(
        self, run: Setup, status: str, message: str, started: float, *, export: bool = True
    ) -> dict[str, Any]:
        """The result of the run; in its folder (rank 0), model.onnx when `export`, the
        curves and the report."""
        result = summarize(
            self.checked,
            self.opts,
            self.device,
            status=status,
            message=message,
            seconds=time.perf_counter() - started,
            state=run.state,
            processes=self.world,
            rows=run.rows,
            has_val=run.val is not None,
        )
        if run.test is not None and export:
            result["test"] = self.evaluate(self.model, run.test)
        if self.run_dir is not None and self.main:
            write_run_files(self.checked, self.run_dir, self.model, result, export=export,
                            metadata=self.export_metadata())  # fmt: skip
        if self.tb is not None:
            self.tb.close()
        return result

    def export_metadata(self) -> dict[str, str]:
        """model.onnx's metadata entries beyond the spec's (runtime/metadata.py): none here;
        a trainer that fits something the sampler needs adds it (diffusion.py)."""
        return {}

    def _stopped_non_finite(self, run: Setup, e: NonFinite, started: float) -> TrainError:
        """The report of a run stopped by a non-finite loss (no model.onnx), and the
        error that says where the last good checkpoint is."""
        state = run.state
        self.report(run, "stopped: non-finite loss", e.message, started, export=False)
        last = f" (epoch {state.epoch})" if state.epoch else ""
        where = (
            f"; the last good checkpoint is {self.run_dir / 'last.pt'}{last}"
            if (self.run_dir and state.epoch)
            else ""
        )
        return TrainError(
            e.message + where,
            self.plan.optimizer.loc,
            "lower the learning rate, set clip_grad_norm, or check the data "
            "for NaN and huge values",
        )

    def _interrupted(self, run: Setup, started: float) -> Interrupted:
        """After a Ctrl-C: interrupted.pt and the report, written whole (a second Ctrl-C
        waits), and the message that says how to resume."""
        state = run.state
        with held_interrupts():
            self.checkpoints.save_interrupted(self.model, state)
            msg = f"interrupted in epoch {state.epoch + 1} at step {state.step}"
            self.report(run, "interrupted", msg, started)
        where = ""
        if self.run_dir:
            where = f"; resume from epoch {state.epoch} with: dlc train --resume {self.run_dir}"
        return Interrupted(msg + where)

    def train_epoch(self, run: Setup, epoch: int, progress: Progress) -> dict[str, float]:
        model, state, train, batch = run.stepped, run.state, run.train, run.batch
        model.train()
        order = epoch_order(train.n, self.opts.seed, epoch, self.opts.data.shuffle)
        if self.world > 1:
            order = dist.shard(order, self.rank, self.world)
        metrics = Metrics(self.task)
        total, count = torch.zeros((), dtype=torch.float64), 0
        steps = math.ceil(len(order) / batch)
        for b in range(steps):
            idx = order[b * batch : (b + 1) * batch].to(self.device)
            inputs, targets = train.take(idx)
            loss, outputs = self.step(
                model, run.optimizer, run.precision, run.closure_kind, inputs, targets
            )
            value = float(loss)
            if not math.isfinite(value):
                raise NonFinite(
                    f"the loss is {value} in epoch {epoch}, step {b + 1} of {steps} "
                    f"(optimizer step {state.step + 1})"
                )
            state.step += 1
            run.schedule.step_batch()
            n = len(idx)
            total += value * n
            count += n
            if self.metric_term is not None:
                _, _, output, target = self.metric_term
                metrics.update(outputs[output].detach().float(), targets[target])
            progress.batch(value)
        loss_mean = float(total) / max(count, 1)
        if self.world > 1:
            loss_mean = dist.mean(loss_mean, self.device)
        return {"loss": loss_mean, **metrics.compute()}

    def step(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        precision: Precision,
        kind: str,
        inputs: dict[str, torch.Tensor],
        targets: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """One optimizer step; returns the loss before it and the outputs it came from."""
        seen: dict[str, dict[str, torch.Tensor]] = {}

        def objective() -> torch.Tensor:
            with precision.autocast():
                outputs = self.forward(model, inputs)
                loss = self.loss(outputs, targets)
            seen["outputs"] = outputs
            return loss

        if kind == "functional":
            from torch.func import functional_call

            buffers = dict(model.named_buffers())

            def loss_at(params: dict[str, torch.Tensor]) -> torch.Tensor:
                outputs = functional_call(model, {**params, **buffers}, (), inputs)
                outputs = outputs if isinstance(outputs, dict) else {self.output_names[0]: outputs}
                seen["outputs"] = outputs
                return self.loss(outputs, targets)

            loss = cast(torch.Tensor, optimizer.step(loss_at))  # type: ignore[arg-type]
            return loss.detach(), seen["outputs"]
        if kind == "closure":

            def closure() -> torch.Tensor:
                optimizer.zero_grad(set_to_none=True)
                loss = objective()
                loss.backward()
                return loss

            loss = cast(torch.Tensor, optimizer.step(closure))  # type: ignore[arg-type]
            if self.grad_log is not None:  # the gradient of the closure's last call
                self.grad_log.record()
            return loss.detach(), seen["outputs"]
        optimizer.zero_grad(set_to_none=True)
        loss = objective()
        if not torch.isfinite(loss):
            return loss.detach(), seen["outputs"]  # reported by the caller; no step
        precision.backward(loss)
        if self.opts.clip_grad_norm or self.grad_log is not None:
            precision.unscale(optimizer)  # once per step: GradScaler.step then skips it
        if self.grad_log is not None:
            self.grad_log.record()
        if self.opts.clip_grad_norm:
            nn.utils.clip_grad_norm_(model.parameters(), self.opts.clip_grad_norm)
        precision.step(optimizer)
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
        for n, inputs, targets in data.chunks():
            outputs = self.forward(model, inputs)
            total += float(total_loss(self.losses, outputs, targets)[0]) * n
            if self.metric_term is not None:
                _, _, output, target = self.metric_term
                metrics.update(outputs[output].float(), targets[target])
        return {"loss": total / max(data.n, 1), **metrics.compute()}


def epoch_order(n: int, seed: int, epoch: int, shuffle: bool = True) -> torch.Tensor:
    """The order of epoch `epoch`: a function of (seed, epoch) alone, so a resumed run
    and every process of a distributed one see the same order."""
    if not shuffle:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g)
