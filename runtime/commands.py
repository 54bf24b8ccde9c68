"""The `dlc` commands: each `cmd_NAME(args)` runs one subcommand of runtime/cli.py's
parser and returns its exit status. Each imports what it needs when it runs, so that
`dlc check` and the other front-end commands never import torch."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..compiler.errors import UsageError


def _warnings(checked) -> None:  # noqa: ANN001
    for w in checked.warnings:
        print(w.render(), file=sys.stderr)


def cmd_check(args: argparse.Namespace) -> int:
    from ..compiler.pipeline import check_file

    checked = check_file(args.spec, args.overrides)
    _warnings(checked)
    if args.ir:
        print(checked.graph)
    elif not args.quiet:
        g = checked.graph
        print(f"{args.spec}: ok: {g.name}, {len(g.nodes)} nodes, {g.num_params:,} parameters")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from ..compiler.pipeline import check_file
    from ..compiler.summary import summary_json, summary_table

    checked = check_file(args.spec, args.overrides)
    if args.json:
        print(json.dumps(summary_json(checked.graph), indent=2))
    else:
        _warnings(checked)
        print(summary_table(checked.graph))
    return 0


def cmd_lint(args: argparse.Namespace) -> int:
    """Lint a spec: exit 0 with warnings (1 with --strict), 1 when it does not check."""
    from ..compiler.lint import lint
    from ..compiler.pipeline import check_file

    if args.output and not args.probe:
        raise UsageError("-o writes the probe's gradient plot: add --probe")
    checked = check_file(args.spec, args.overrides)
    if not args.json:
        _warnings(checked)  # the checker's own (stderr), before the lessons (stdout)
    report = lint(checked)
    lints: list[Any] = list(report.lints)
    silenced_count = report.silenced
    probed = None
    if args.probe:
        from ..compiler.lint import silencer
        from .probe import plot_gradients, probe

        probed = probe(checked)
        is_silenced = silencer(checked)
        kept = [f for f in probed.findings if not is_silenced(f.rule, f.loc)]
        silenced_count += len(probed.findings) - len(kept)
        lints += kept
        if args.output:
            plot_gradients(probed, args.output)
    if args.json:
        found = [x.to_json() for x in lints]
        out: Any = found if probed is None else {"lints": found, "probe": probed.to_json()}
        print(json.dumps(out, indent=2, ensure_ascii=False))
    else:
        if probed is not None:
            print(probed.table())
        for x in lints:
            print(x.render())
        if probed is not None and args.output:
            print(f"wrote {args.output}")
        n = len(lints)
        silenced = f" ({silenced_count} silenced)" if silenced_count else ""
        verdict = f"{n} warning{'s' if n != 1 else ''}" if n else "clean"
        print(f"{args.spec}: {verdict}{silenced}")
    return 1 if args.strict and lints else 0


def cmd_graph(args: argparse.Namespace) -> int:
    from ..compiler.graph import graph_format, render_graph
    from ..compiler.pipeline import check_file
    from .files import atomic_write

    fmt = graph_format(args.output)  # before the check: a wrong -o fails fast
    checked = check_file(args.spec, args.overrides)
    _warnings(checked)
    atomic_write(args.output, render_graph(checked.graph, fmt, args.expand))
    print(f"wrote {args.output}")
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from ..compiler.pipeline import check_file
    from .compile import compile_spec, parse_sizes

    checked = check_file(args.spec, args.overrides)
    _warnings(checked)
    emit = [e.strip() for e in args.emit.split(",") if e.strip()]
    result = compile_spec(
        checked,
        args.spec,
        out=args.output,
        weights_path=args.weights,
        emit=emit,
        check=args.verify,
        opset=args.opset,
        seed=args.seed,
        sizes=parse_sizes(args.sizes),
    )
    for path in result.written:
        if path.suffix == ".onnx":
            print(f"wrote {path}: {result.parameters:,} parameters, {_size(result.size)}")
        else:
            print(f"wrote {path}")
    if result.verified is None:
        return 0
    print("\n".join(result.verified.report()))
    return 0 if result.verified.passed else 1


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def cmd_train(args: argparse.Namespace) -> int:
    from .train.command import train_command

    return train_command(args)


def cmd_runs(args: argparse.Namespace) -> int:
    from .runs_cmd import runs_command

    if args.compare:
        from .runs_compare import compare_command

        if args.dir or args.json or args.sort:
            raise UsageError(
                "--compare takes the run folders themselves: no DIR, --json or --sort",
                hint="dlc runs --compare RUN_A RUN_B [-o compare.png]",
            )
        print(compare_command(args.compare, args.output))
    else:
        print(runs_command(args.dir or "runs", as_json=args.json, sort=args.sort))
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from .search.command import search_command

    return search_command(args)


def cmd_predict(args: argparse.Namespace) -> int:
    from . import predict

    session = predict.open_session(args.model)
    feeds = predict.read_inputs(args.input, [i.name for i in session.get_inputs()])
    outputs = predict.run(session, feeds)
    text = predict.write_outputs(outputs, args.output)
    print(text if text is not None else f"wrote {args.output}")
    labelled = predict.class_labels(session, outputs)
    if labelled is not None:
        print(predict.format_labels(labelled))
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .sample.command import sample_command

    return sample_command(args)


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve.command import serve_command

    return serve_command(args)


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import Options, Refused, quantize

    opts = Options(args.target, args.output, static=args.static, dynamic=args.dynamic,
                   per_channel=args.per_channel, calibrate=args.calibrate,
                   max_drop=args.max_drop, max_rise=args.max_rise, force=args.force)  # fmt: skip
    try:
        out, report = quantize(opts)
    except Refused as e:
        print("\n".join(e.report.lines()))
        print(f"dlc quantize: refused: {e.message}; no int8 model written "
              "(--force writes it anyway)", file=sys.stderr)  # fmt: skip
        return 1
    print("\n".join(report.lines()))
    if report.refused:
        print(f"dlc quantize: warning: {report.refused}; written anyway (--force)",
              file=sys.stderr)  # fmt: skip
    print(f"wrote {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_triton

    result = export_triton(
        args.source,
        args.triton,
        name=args.name,
        force=args.force,
        gpu=args.gpu,
        max_batch=args.max_batch,
        overrides=args.overrides,
    )
    for path in result.written:
        print(f"wrote {path}")
    print(f"serve it: dlc serve {args.triton}  (or tritonserver --model-repository {args.triton})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from ..schema import schema_text

    sys.stdout.write(schema_text())
    return 0
