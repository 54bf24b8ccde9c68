"""The `dlc` command line.

Every command that reads a spec takes `--set name=value`. A user's mistake prints
located messages and exits 1, never a traceback (`DLC_DEBUG=1` shows one for dlc's own
bugs). The front-end commands (check, summary, schema) import neither torch nor onnx.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from .. import __version__
from ..compiler.errors import DlcError
from .commands import (  # the subcommands' functions
    cmd_check,
    cmd_compile,
    cmd_export,
    cmd_graph,
    cmd_lint,
    cmd_predict,
    cmd_quantize,
    cmd_runs,
    cmd_sample,
    cmd_schema,
    cmd_search,
    cmd_serve,
    cmd_summary,
    cmd_train,
)

EPILOG = """examples:
  dlc check specs/mnist_mlp.yaml
  dlc summary specs/mnist_mlp.yaml --set hidden=512
  dlc check specs/resnet_mlp.yaml --ir
  dlc lint specs/lenet_digits.yaml --strict
  dlc compile specs/mnist_mlp.yaml --verify --emit onnx,torch
  dlc graph specs/resnet_small.yaml -o resnet_small.html --expand body
  dlc train specs/digits_mlp.yaml
  dlc train specs/xor.yaml --set init=uniform(-10,10) --set training.seed=3
  dlc train --resume runs/digits_mlp/20261122-120000
  dlc runs runs/ --sort val_accuracy
  dlc predict specs/mnist_mlp.onnx x.npy -o y.json
  dlc serve specs/mnist_mlp.onnx digits=runs/digits_mlp/20261122-120000/model.onnx
  dlc export specs/digits_mlp.yaml --triton models
  dlc sample runs/vae_digits/20261205-101500 -n 100 -o samples.png
  dlc generate runs/translator/20261205-101500 --source "7 5 7 4 2 2 7 9" --beam 4
  dlc schema > spec.schema.json

Set DLC_DEBUG=1 to see a Python traceback for an internal error."""


def _spec_parser(sub: argparse._SubParsersAction, name: str, help_: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("spec", help="the spec file (YAML)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a param of the spec (repeatable)",
    )
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlc",
        description="dlc: a declarative deep-learning compiler. A YAML spec of a network "
        "is validated, shape-checked and lowered to PyTorch and ONNX.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dlc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = _spec_parser(sub, "check", "validate a spec and check every tensor shape; nothing runs")
    p.add_argument("--ir", action="store_true", help="print the checked IR in its text form")
    p.add_argument(
        "-q", "--quiet", action="store_true", help="print nothing when the spec is sound"
    )
    p.set_defaults(run=cmd_check)

    p = _spec_parser(sub, "summary", "a table of nodes: op, output shape, parameters, FLOPs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(run=cmd_summary)

    p = _spec_parser(sub, "lint", "the course's lessons as located warnings (rule ids DLC1xx)")
    p.add_argument("--json", action="store_true", help="print the warnings as a JSON list")
    p.add_argument(
        "--strict",
        "--error-on-warning",
        dest="strict",
        action="store_true",
        help="exit 1 when there is any warning (for CI)",
    )
    p.add_argument(
        "--probe",
        action="store_true",
        help="also run the model once at init on a batch of its training data: per-layer "
        "activation statistics and gradient norms, and the warnings DLC201-DLC203",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="GRADS.png",
        help="with --probe: plot the per-layer gradient norms into this PNG",
    )
    p.set_defaults(run=cmd_lint)

    p = _spec_parser(sub, "graph", "draw the architecture: .svg, .html, .dot or .mmd")
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the drawing: .svg, .html (pan, zoom, open groups), .dot (Graphviz) "
                   "or .mmd (Mermaid)")  # fmt: skip
    p.add_argument("--expand", action="append", default=[], metavar="GROUP",
                   help="draw a group open (a dotted path such as body.repeat, repeatable), "
                   "or 'all'; default: the spec's top level")  # fmt: skip
    p.set_defaults(run=cmd_graph)

    p = _spec_parser(sub, "compile", "write the ONNX model of a spec (and a standalone model.py)")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT.onnx",
        help="where to write the ONNX model (default: next to the spec, same name)",
    )
    p.add_argument(
        "--weights",
        metavar="CKPT",
        help="weights: a torch state dict or checkpoint (.pt/.pth/.ckpt) or a .npz; "
        "default: fresh weights from the spec's init schemes",
    )
    p.add_argument(
        "--emit",
        default="onnx",
        metavar="onnx,torch",
        help="what to write: onnx, torch (a standalone model.py beside it), or both",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="run the torch module and onnxruntime on random inputs and compare",
    )
    p.add_argument(
        "--size",
        dest="sizes",
        action="append",
        default=[],
        metavar="NAME=SIZE",
        help="with --verify: the size of an input's symbolic dim, e.g. H=64 (repeatable, "
        "or H=64,W=32); default: the smallest the model accepts, 3 where it can",
    )
    p.add_argument("--opset", type=int, help="ONNX opset (default: export.opset, else 17; 23 "
                   "with attention, where onnxruntime runs its fused op)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed for fresh weights (default 0)")
    p.set_defaults(run=cmd_compile)

    help_ = "train a spec's model as its training section says; write a run folder"
    p = sub.add_parser("train", help=help_, description=help_)
    p.set_defaults(run=cmd_train)
    p.add_argument("spec", nargs="?", help="the spec file (YAML); with --resume: the run's own")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="NAME=VALUE",
                   help="override a param, or a training option as training.KEY=VALUE")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="the run folder (default: runs/NAME/TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN from its last checkpoint")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                   help="where to train (default: training.device, else auto)")  # fmt: skip
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="train on N processes with DistributedDataParallel (torchrun)")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true",
                   help="plain progress lines instead of progress bars")  # fmt: skip

    help_ = ("search a spec's hyperparameters (its search: section) on Optuna; every point "
             "is checked before it trains")  # fmt: skip
    p = sub.add_parser("search", help=help_, description=help_ + ". Rerun to resume.")
    p.set_defaults(run=cmd_search)
    p.add_argument("spec", help="the spec file (YAML) with a search: section")
    p.add_argument("--trials", type=int, metavar="N",
                   help="trials in the study when done (default: search.trials, 20)")  # fmt: skip
    p.add_argument("--jobs", type=int, default=1, metavar="J",
                   help="trials that train at once, each in its own process (1)")  # fmt: skip
    p.add_argument("--storage", metavar="URL",
                   help="Optuna storage (sqlite:///OUT/study.db); rerun to resume")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="the study folder (default: searches/NAME)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"),
                   help="where trials train (default: training.device, else auto)")  # fmt: skip

    p = sub.add_parser(
        "predict",
        help="run an ONNX model on inputs from a file",
        description="Run an ONNX model with onnxruntime. INPUT is .npy, .npz, .csv or .json; "
        "it is checked against the model's inputs first.",
    )
    p.add_argument("model", help="the ONNX model")
    p.add_argument("input", help="the inputs: .npy, .npz (by input name), .csv or .json")
    p.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="write the outputs to .npy, .npz, .csv or .json instead of printing them",
    )
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser(
        "serve",
        help="serve ONNX models over HTTP with the KServe v2 inference protocol",
        description="Serve ONNX models with onnxruntime over the KServe v2 REST protocol "
        "(the one Triton's clients speak): health, metadata and infer, JSON or binary "
        "tensors, at /v2. Concurrent requests are batched; every request is checked "
        "against the model's signature. /docs describes the API, /metrics is Prometheus'. "
        "SIGTERM answers the requests in flight, then exits.",
    )
    p.add_argument(
        "models",
        nargs="+",
        metavar="MODEL.onnx|DIR",
        help="a model to serve, named after its file, or NAME=PATH, or a Triton model "
        "repository DIR (dlc export --triton DIR): each DIR/NAME at its latest version",
    )
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="the port (8000; 0: any free one)")
    p.add_argument("--max-batch", type=int, default=64, metavar="N",
                   help="stack at most N rows of concurrent requests in one call (64)")  # fmt: skip
    p.add_argument("--max-delay-ms", type=float, default=2.0, metavar="D",
                   help="wait at most D ms for a batch to fill, only while more requests "
                   "are arriving (2)")  # fmt: skip
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="onnxruntime calls that run at once, each on one thread (1)")  # fmt: skip
    p.add_argument("--max-body-mb", type=float, default=64.0, metavar="M",
                   help="refuse a request body over M MiB with 413 (64)")  # fmt: skip
    p.add_argument("--noop-endpoint", action="store_true", help=argparse.SUPPRESS)  # benchmarks
    p.set_defaults(run=cmd_serve)

    help_ = "write a Triton model repository (and a KServe InferenceService) for a run or spec"
    p = sub.add_parser("export", help=help_, description=help_ + ". From a run folder: its "
                       "trained model.onnx; from a spec: compiled with fresh weights.")  # fmt: skip
    p.add_argument("source", metavar="RUN|SPEC", help="a run folder of dlc train, or a spec")
    p.add_argument("--triton", required=True, metavar="DIR",
                   help="the model repository: DIR/NAME/config.pbtxt, 1/model.onnx")  # fmt: skip
    p.add_argument("--name", help="the model's name in the repository (default: the spec's)")
    p.add_argument("--force", action="store_true", help="replace an existing DIR/NAME")
    p.add_argument("--gpu", action="store_true", help="instance_group KIND_GPU (default CPU)")
    p.add_argument("--max-batch", type=int, default=64, metavar="N",
                   help="max_batch_size when the model has a batch dim (64)")  # fmt: skip
    p.add_argument("--set", dest="overrides", action="append", default=[],
                   metavar="NAME=VALUE", help="override a param of the spec")  # fmt: skip
    p.set_defaults(run=cmd_export)

    help_ = "list the run folders of dlc train with their metrics; compare runs"
    p = sub.add_parser("runs", help=help_, description=help_ + ": --compare overlays "
                       "their curves in one PNG and diffs their resolved specs")  # fmt: skip
    p.add_argument("dir", nargs="?", metavar="DIR",
                   help="where to look for run folders, recursively (default: runs/)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--sort", metavar="METRIC",
                   help="best first by a metric: val_loss, test_accuracy, ...")  # fmt: skip
    p.add_argument("--compare", nargs="+", metavar="RUN",
                   help="compare two runs or more: their curves and their specs")  # fmt: skip
    p.add_argument("-o", "--output", default="compare.png", metavar="OUT.png",
                   help="with --compare: the PNG of the curves (default: compare.png)")  # fmt: skip
    p.set_defaults(run=cmd_runs)

    help_ = "an int8 ONNX model (onnxruntime quantization), gated on the run's test accuracy"
    p = sub.add_parser("quantize", help=help_, description=help_ + ". Dynamic (int8 weights) "
                       "for models without convolutions, static QDQ calibrated on the run's "
                       "training inputs for models with them. From a RUN folder it measures "
                       "float vs int8 on the test split and refuses (exit 1, no file written) "
                       "when accuracy drops more than --max-drop points or the MSE rises "
                       "more than --max-rise percent; a bare MODEL.onnx is not gated.")  # fmt: skip
    p.add_argument("target", metavar="MODEL.onnx|RUN", help="an ONNX model or a run folder")
    p.add_argument("-o", "--output", metavar="OUT.onnx",
                   help="the int8 model (default: MODEL.int8.onnx beside the float)")  # fmt: skip
    p.add_argument("--static", action="store_true",
                   help="static QDQ quantization (default for conv models)")  # fmt: skip
    p.add_argument("--dynamic", action="store_true",
                   help="dynamic quantization (default for models without conv)")  # fmt: skip
    p.add_argument("--calibrate", type=int, default=256, metavar="N",
                   help="calibrate static quantization on N training examples (256)")  # fmt: skip
    p.add_argument("--per-channel", action=argparse.BooleanOptionalAction, default=None,
                   help="per-channel weight scales (default: static on, dynamic off)")  # fmt: skip
    p.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                   help="refuse when test accuracy drops more than POINTS (1.0)")  # fmt: skip
    p.add_argument("--max-rise", type=float, default=5.0, metavar="PCT",
                   help="regression: refuse when test MSE rises over PCT%% (5)")  # fmt: skip
    p.add_argument("--force", action="store_true",
                   help="write the int8 model even when the gate refuses it")  # fmt: skip
    p.set_defaults(run=cmd_quantize)

    help_ = "draw samples from a trained VAE, GAN or diffusion model"
    p = sub.add_parser("sample", help=help_, description=help_ + " (on onnxruntime, from the "
                       "exported model), as an image grid, a scatter plot or an .npy array; "
                       "--judge and --reference score them.")  # fmt: skip
    p.add_argument("source", metavar="RUN|MODEL.onnx", help="a run folder or an ONNX model")
    p.add_argument("-n", type=int, default=64, help="how many samples (64)")
    p.add_argument("--seed", type=int, default=0, help="the noise's seed (0)")
    p.add_argument("-o", "--output", metavar="OUT.png|OUT.npy",
                   help="where to write them (default: RUN/samples.png)")  # fmt: skip
    p.add_argument("--method", choices=("ddpm", "ddim"), default=None,
                   help="diffusion: the ancestral sampler or DDIM (ddpm)")  # fmt: skip
    p.add_argument("--steps", type=int, default=None,
                   help="diffusion: DDIM's steps (given alone: DDIM; default T)")  # fmt: skip
    p.add_argument("--label", type=int, default=None,
                   help="conditional models: all of this class (default: cycle)")  # fmt: skip
    p.add_argument("--judge", metavar="CLASSIFIER.onnx|RUN",
                   help="a classifier of the same data reads the samples")  # fmt: skip
    p.add_argument("--reference", metavar="builtin:NAME(...)|DATA.npy",
                   help="held-out data: MMD and nearest-neighbour distance")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(run=cmd_sample)

    p = sub.add_parser(
        "schema",
        help="print the JSON Schema of a spec (for editors)",
        description="Print the JSON Schema (draft 2020-12) of a spec document. "
        "Editors with a YAML language server use it for completion and checks: "
        "put `# yaml-language-server: $schema=spec.schema.json` atop a spec.",
    )
    p.set_defaults(run=cmd_schema)

    from .generate.command import add_parser as add_generate  # issue 13: dlc generate

    add_generate(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except DlcError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as e:  # noqa: BLE001 - the last line of defence against a traceback
        if os.environ.get("DLC_DEBUG"):
            raise
        print(
            f"dlc: internal error: {type(e).__name__}: {e}\n"
            "  this is a bug in dlc; run again with DLC_DEBUG=1 for a traceback and "
            "report it",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
