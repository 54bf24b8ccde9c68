"""The Optuna side of `dlc search`: the study, its sampler and pruner, and the trials.

A trial is the spec with the `--set` overrides of its point (compiler/search.py), checked
by the front end first (a point that fails is pruned, never trained), then trained by the
same `Trainer` as `dlc train` into `OUT/trials/NNN/`, reporting the metric after each
epoch so the pruner can stop it. `--jobs J` runs J worker processes that share the
study's storage (Optuna's own n_jobs are threads, which the GIL and torch's thread pool
make no faster), each on one torch thread.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import optuna

from ...compiler.errors import DlcError, UsageError
from ...compiler.loader import Document, load_file
from ...compiler.pipeline import check_document
from ...compiler.search import Dimension, SearchSpec, Value, describe, point_overrides, read_search
from ...compiler.spec import Spec, read_spec
from ...compiler.validate import validate

KILLED = "killed"  # the user attribute of a trial left RUNNING by a killed search


class MetricMissing(Exception):
    """The search's metric is not in a run's metrics rows: a mistake in the spec, so the
    search stops instead of failing every trial the same way."""

    def __init__(self, error: UsageError) -> None:
        super().__init__(error.message)
        self.error = error


@dataclass(frozen=True)
class Job:
    """What a worker process needs (picklable: paths and numbers)."""

    spec_path: str
    out: str
    storage: str
    study_name: str
    trials: int  # this worker's share
    timeout: float | None
    worker: int
    device: str | None
    start: int = 0  # trials in the storage when this run began: a resumed run's seeds differ


def read_search_spec(path: Path) -> tuple[Document, Spec, SearchSpec]:
    doc = load_file(path)
    validate(doc)
    if isinstance(doc.data, dict) and "networks" in doc.data:
        raise UsageError(
            "dlc search trains one network: a spec with several (a GAN) cannot be searched",
            doc.key_loc(("networks",)),
            "search the hyperparameters with `dlc train --set ...` runs and `dlc runs --compare`",
        )
    spec = read_spec(doc)
    return doc, spec, read_search(spec)


def sampler(search: SearchSpec, job: Job) -> optuna.samplers.BaseSampler:
    # each worker its own stream, and a resumed search new ones (not the first run's draws)
    seed = search.seed + 1000 * job.start + job.worker
    if search.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.sampler == "grid":
        space = {d.path: d.grid() for d in search.dims}
        return optuna.samplers.GridSampler(space, seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def pruner(search: SearchSpec) -> optuna.pruners.BasePruner:
    if search.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if search.pruner == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)


def open_study(job: Job, search: SearchSpec) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(
        study_name=job.study_name,
        storage=job.storage,
        direction=cast(Literal["minimize", "maximize"], search.direction),
        sampler=sampler(search, job),
        pruner=pruner(search),
        load_if_exists=True,
    )


def mark_killed(study: optuna.Study) -> int:
    """Trials a killed search left RUNNING: failed, and not counted (another trial takes
    their place). Called before any worker starts, so none of them is running."""
    storage = study._storage
    n = 0
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        storage.set_trial_user_attr(t._trial_id, KILLED, True)
        storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
        n += 1
    return n


def counted(study: optuna.Study) -> int:
    """The trials that count toward `trials`: finished ones, the killed excluded."""
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED,
            optuna.trial.TrialState.FAIL)  # fmt: skip
    return sum(1 for t in study.get_trials(deepcopy=False, states=done)
               if not t.user_attrs.get(KILLED))  # fmt: skip


def suggest(trial: optuna.Trial, d: Dimension) -> Value:
    if d.kind == "choice":
        return cast(Value, trial.suggest_categorical(d.path, list(d.choices)))
    if d.kind == "int":
        return trial.suggest_int(d.path, int(d.low), int(d.high), log=d.log)
    return trial.suggest_float(d.path, d.low, d.high, log=d.log)


def run_worker(job: Job, *, in_process: bool = False) -> int:
    """One worker: `job.trials` trials of the shared study; its exit status. A worker
    process (not `in_process`) trains on one torch thread: J of them share the cores."""
    if not in_process:
        _die_with_parent()
        import torch

        torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    doc, spec, search = read_search_spec(Path(job.spec_path))
    study = open_study(job, search)
    objective = Objective(job, doc, spec, search)
    try:
        study.optimize(objective, n_trials=job.trials, timeout=job.timeout,
                       catch=(DlcError,), callbacks=[_print_trial(search)])  # fmt: skip
    except MetricMissing as e:
        print(e.error.render(), file=sys.stderr)
        return 1
    return 0


def _print_trial(search: SearchSpec) -> Any:
    def callback(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        value = f"{search.metric} {t.value:.4g}" if t.value is not None else ""
        why = t.user_attrs.get("error") or ""
        epochs = t.user_attrs.get("epochs")
        ran = f" ({epochs} epochs, {t.user_attrs.get('seconds', 0):.1f} s)" if epochs else ""
        shown = describe({k: v for k, v in t.params.items()})
        state = t.state.name.lower()
        print(f"trial {t.number:3d} {state:8s} {value}{ran}  {shown}{'  ' + why if why else ''}",
              flush=True)  # fmt: skip

    return callback


class Objective:
    """A trial: its point, checked, then trained with the metric reported per epoch."""

    def __init__(self, job: Job, doc: Document, spec: Spec, search: SearchSpec) -> None:
        self.job, self.doc, self.spec, self.search = job, doc, spec, search

    def __call__(self, trial: optuna.Trial) -> float:
        from ..train.diffusion import trainer_class
        from ..train.runs import claim_run_dir, start_run

        point = {d.path: suggest(trial, d) for d in self.search.dims}
        overrides = point_overrides(self.spec, point)
        trial.set_user_attr("overrides", overrides)
        try:
            checked = check_document(self.doc, overrides)
        except DlcError as e:  # a point the pre-check did not sample: never trained
            d = e.diagnostics[0]
            trial.set_user_attr("error", f"{d.loc}: {d.message}" if d.loc else d.message)
            raise optuna.TrialPruned(d.message) from None
        run_dir = claim_run_dir(Path(self.job.out) / "trials" / f"{trial.number:03d}")
        trial.set_user_attr("run", str(run_dir))
        start_run(checked, Path(self.job.spec_path), run_dir, overrides, self.job.device, 1)
        values: list[float] = []

        def on_epoch(epoch: int, row: dict[str, Any]) -> bool:
            if self.search.metric not in row:
                logged = [k for k in row if k not in ("epoch", "step", "time", "lr")]
                raise MetricMissing(UsageError(
                    f"the search's metric '{self.search.metric}' is not logged by this run",
                    self.search.metric_loc, f"logged: {', '.join(logged)}"))  # fmt: skip
            value = float(row[self.search.metric])
            values.append(value)
            trial.report(value, epoch)
            return trial.should_prune()

        from ..train.loop import Interrupted

        started = time.perf_counter()
        log = (run_dir / "train.log").open("w")
        try:
            with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
                trainer = trainer_class(checked)(checked, Path(self.job.spec_path), run_dir,
                                                 quiet=True, device=self.job.device,
                                                 on_epoch=on_epoch)  # fmt: skip
                result = trainer.run()
        except DlcError as e:
            d = e.diagnostics[0]
            trial.set_user_attr("error", d.message)
            raise
        except Interrupted as e:
            raise KeyboardInterrupt from e
        finally:
            log.close()
            trial.set_user_attr("epochs", len(values))
            trial.set_user_attr("seconds", round(time.perf_counter() - started, 2))
        if result["status"] == "stopped":
            raise optuna.TrialPruned(f"pruned after epoch {len(values)}")
        if not values or not math.isfinite(values[-1]):
            trial.set_user_attr("error", f"{self.search.metric} is not finite")
            return math.nan
        return values[-1]


def _die_with_parent() -> None:
    """A worker process dies with the search (Linux): a SIGKILLed `dlc search` leaves no
    worker training on; the rerun marks its trials killed and goes on."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
