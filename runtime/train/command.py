"""`dlc train`: a new run, a resumed one, or N processes under torchrun.

A new run gets a folder (`--out`, else runs/NAME/TIMESTAMP) holding the spec as given
and the overrides, so `--resume RUN` needs nothing else: it reads the spec and the
overrides from the run (or takes a spec whose model is the same; a changed model is
refused) and continues after the last checkpoint's epoch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ...compiler.errors import UsageError
from ...compiler.lint import lint as run_lints
from ...compiler.pipeline import check_file
from . import distributed as dist
from .runs import claim_run_dir, load_checkpoint, new_run_dir


def train_command(args: argparse.Namespace) -> int:
    if args.nproc < 1:
        raise UsageError(f"--nproc takes a number of processes >= 1, got {args.nproc}")
    resume: dict[str, Any] | None = None
    overrides = list(args.overrides)
    if args.resume:
        run_dir = Path(args.resume)
        if (run_dir / "generator.onnx").is_file() and not (run_dir / "last.pt").is_file():
            raise UsageError(
                f"{run_dir} is a GAN run: it keeps no checkpoints, so it cannot be resumed",
                hint="train again with more epochs: dlc train SPEC --set training.epochs=N",
            )
        resume = load_checkpoint(run_dir / "last.pt")
        info = _run_info(run_dir)
        spec = Path(args.spec or run_dir / "spec.yaml")
        overrides = overrides or list(info.get("overrides", []))
    elif args.spec is None:
        raise UsageError("dlc train needs a spec (or --resume RUN)")
    else:
        spec = Path(args.spec)
    checked = check_file(spec, overrides)
    if checked.networks:  # several networks, trained by training.gan
        from .gan import train_gan

        return train_gan(args, checked, spec, overrides)
    for w in checked.warnings:
        print(w.render(), file=sys.stderr)
    if dist.world_size() == 1:  # the static lints, once (not per process): never fatal
        for lint in run_lints(checked).lints:
            print(lint.render(), file=sys.stderr)

    from .loop import Interrupted
    from .runs import ir_hash, start_run

    if resume is not None and resume.get("ir_sha256") != ir_hash(checked):
        raise UsageError(
            f"the model of {spec} is not the one the run in {args.resume} trained",
            hint="resume with the run's own spec: dlc train --resume RUN",
        )
    if args.nproc > 1 and dist.world_size() == 1:
        return _launch(args, checked, spec, overrides)
    main = dist.rank() == 0
    if resume is not None:
        run_dir = Path(args.resume)
    elif dist.world_size() > 1:
        run_dir = Path(args.out)  # the launcher made it
    else:
        run_dir = claim_run_dir(args.out) if args.out else new_run_dir("runs", checked.graph.name)
        start_run(checked, spec, run_dir, overrides, args.device, args.nproc)
    from .diffusion import trainer_class

    kind = trainer_class(checked)
    trainer = kind(checked, spec, run_dir, device=args.device, quiet=args.quiet, resume=resume)
    try:
        result = trainer.run()
    except Interrupted as e:
        print(f"dlc train: {e.message}", file=sys.stderr)
        return 130
    finally:
        dist.finish()
    if main:
        _print_result(result, run_dir)
    return 0


def _run_info(run_dir: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((run_dir / "run.json").read_text()))
    except (OSError, ValueError) as e:
        raise UsageError(f"cannot read {run_dir / 'run.json'}: {e}") from None


def _launch(args: argparse.Namespace, checked: Any, spec: Path, overrides: list[str]) -> int:
    from .runs import start_run

    if args.resume:
        run_dir = Path(args.resume)
    else:
        run_dir = claim_run_dir(args.out) if args.out else new_run_dir("runs", checked.graph.name)
        start_run(checked, spec, run_dir, overrides, args.device, args.nproc)
    argv = ["train", str(spec), "--out", str(run_dir)]
    argv += [f"--set={o}" for o in overrides]
    argv += ["--resume", str(run_dir)] if args.resume else []
    argv += ["--device", args.device] if args.device else []
    argv += ["--quiet"] if args.quiet else []
    print(f"dlc train: {args.nproc} processes (torchrun), run folder {run_dir}", file=sys.stderr)
    return dist.launch(args.nproc, argv)


def _print_result(result: dict[str, Any], run_dir: Path) -> None:
    print(
        f"run: {run_dir} ({result['status']}, {result['epochs']} epochs, {result['seconds']:.1f} s)"
    )
    for split in ("train", "val", "test"):
        values = result.get(split)
        if values:
            shown = "  ".join(f"{k} {v:.4g}" for k, v in values.items() if k != "lr")
            print(f"{split}: {shown}")
    if result.get("onnx"):
        print(f"wrote {result['onnx']}  (try: dlc predict {result['onnx']} INPUT.npy)")
