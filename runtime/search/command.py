"""`dlc search SPEC`: check the space, run the trials in worker processes, write the
study folder.

    spec + search: --pre-check--> located failing regions (all fail: exit 1)
                   --trials (J processes, one sqlite study)--> OUT/trials/NNN/
                   --> results.csv, results.md, history.png, importance.png, best.yaml

A rerun of the same command continues the study in its storage: trials a killed run left
running are marked failed and replaced; completed ones are kept.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from dataclasses import replace
from pathlib import Path

import optuna

from ...compiler.errors import UsageError
from ...compiler.search import describe, point_overrides
from ..files import atomic_write
from .precheck import precheck
from .results import best_spec_text, trial_rows, write_plots, write_tables
from .study import Job, counted, mark_killed, open_study, read_search_spec, run_worker


def search_command(args: argparse.Namespace) -> int:
    spec_path = Path(args.spec)
    doc, spec, search = read_search_spec(spec_path)
    trials = args.trials if args.trials is not None else search.trials
    if trials < 1 or args.jobs < 1:
        raise UsageError("--trials and --jobs take a number >= 1")
    out = Path(args.out) if args.out else Path("searches") / spec.name
    out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or f"sqlite:///{out / 'study.db'}"

    pre = precheck(doc, spec, search)
    if pre.failures:
        print(pre.render(), file=sys.stderr)
    if pre.all_fail:
        print(f"dlc search: all {pre.checked} points checked fail: nothing to search",
              file=sys.stderr)  # fmt: skip
        return 1
    regions = f", {len(pre.failures)} failing region(s) skipped" if pre.failures else ""
    print(f"pre-check: {pre.checked - pre.failed} of {pre.checked} points check{regions}")

    job = Job(str(spec_path), str(out), storage, spec.name, 0, search.timeout, 0, args.device)
    study = open_study(job, search)
    killed = mark_killed(study)
    done = counted(study)
    if done or killed:
        again = f", {killed} killed ones re-run" if killed else ""
        print(f"resuming: {done} trials done{again}")
    remaining = trials - done
    job = replace(job, start=len(study.get_trials(deepcopy=False)))
    rc = _run_jobs(job, remaining, args.jobs) if remaining > 0 else 0
    finished = _finish(study, search, spec, spec_path, out)  # what the trials left, even so
    return rc or finished


def _run_jobs(job: Job, remaining: int, jobs: int) -> int:
    jobs = min(jobs, remaining)
    shares = [remaining // jobs + (i < remaining % jobs) for i in range(jobs)]
    if jobs == 1:
        return run_worker(replace(job, trials=remaining), in_process=True)
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    procs = [ctx.Process(target=_worker_main, args=(replace(job, trials=n, worker=i),))
             for i, n in enumerate(shares)]  # fmt: skip
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    return max(p.exitcode or 0 for p in procs)


def _worker_main(job: Job) -> None:
    sys.exit(run_worker(job))


def _finish(study: optuna.Study, search, spec, spec_path: Path, out: Path) -> int:  # noqa: ANN001
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    best = study.best_trial if complete else None
    write_tables(trial_rows(study, search), out, best.number if best else None)
    notes = write_plots(study, search, out)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if best is None:
        print("dlc search: no trial completed", file=sys.stderr)
        return 1
    point = {d.path: best.params[d.path] for d in search.dims}
    header = (f"# the best trial ({best.number}) of `dlc search {spec_path}`: "
              f"{search.metric} {best.value:.6g}\n# {describe(point)}\n")  # fmt: skip
    text = best_spec_text(spec_path.read_text(), point_overrides(spec, point), header)
    atomic_write(out / "best.yaml", text)
    print(f"best: trial {best.number}, {search.metric} {best.value:.4g}  {describe(point)}")
    print(f"wrote {out}/results.md, results.csv, best.yaml"
          + ", history.png" * (out / "history.png").exists()
          + ", importance.png" * (out / "importance.png").exists())  # fmt: skip
    return 0
