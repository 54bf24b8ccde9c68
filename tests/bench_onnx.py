"""Benchmark (not a test): onnxruntime on dlc's ONNX graph vs onnxruntime on
`torch.onnx.export`'s graph of the same torch module vs torch eager, single-threaded.

    python tests/bench_onnx.py [--specs mnist_mlp,resnet_mlp] [--rounds 7]
    python tests/bench_onnx.py --specs layers   # the CNN, LSTM and transformer examples
    python tests/bench_onnx.py --specs transformer_lm --opset 17,23   # both, interleaved
    python tests/bench_onnx.py --specs vit_digits --batches 64 --profile  # where time goes

dlc's graph is built at opset 23, where attention is the fused `Attention` op (if the
installed onnxruntime has its kernel; else at the highest opset it runs) unless `--opset`
says otherwise; several opsets are measured side by side, one row each.
torch.onnx.export's graph is at opset 17.

Every variant runs the same weights on the same input. The three are measured side by
side in interleaved rounds (A, B, C, A, B, C, ...) so that a noisy, shared machine
affects them alike; each figure is the median over rounds of the mean latency of a
batch of calls. Ratios: dlc/export (<= 1.0: dlc's graph is at least as fast) and
eager/dlc (> 1: onnxruntime on dlc's graph is faster than torch eager).

`--baseline SRC` measures, in the same interleaved rounds, the graphs that another dlc source
tree (SRC: a checkout or `git archive` of an older commit, its root the `dlc` package) builds
for the same weights at the same opsets: before/after figures from one run.

`--profile` runs each graph under onnxruntime's profiler instead (same session options
plus `enable_profiling`) and prints, per graph, the kernel time of each op type per call
(the optimized graph's ops, so fusions show) and its node count.
"""

from __future__ import annotations

import argparse
import collections
import functools
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from dlc.compiler.dims import is_sym
from dlc.compiler.lower.onnx import supported_opsets, to_onnx
from dlc.compiler.lower.torch import state_dict_numpy, to_torch
from dlc.compiler.ops.attention.onnx import FUSED_OPSET, runs_attention
from dlc.compiler.pipeline import check_file
from dlc.runtime.compile import sample_inputs

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPECS = "mnist_mlp,digits_mlp,resnet_mlp,highway_net,graph_mlp,rbf_net"
# the layer library's examples: CNNs, recurrent nets, transformers
LAYER_SPECS = (
    "lenet_digits,resnet_small,gru_digits,lstm_digits,bilstm_tagger,transformer_lm,vit_digits"
)


def session(model_bytes: bytes, profile: str = "") -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    return ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])


def profile(name: str, model_bytes: bytes, outputs: list[str], feeds: dict[str, np.ndarray],
            calls: int) -> None:  # fmt: skip
    """Print the kernel time per call of each op type of the graph, most first."""
    with tempfile.TemporaryDirectory() as tmp:
        s = session(model_bytes, profile=os.path.join(tmp, "profile"))
        for _ in range(calls):
            s.run(outputs, feeds)
        events = json.loads(Path(s.end_profiling()).read_text())
    took: collections.Counter[str] = collections.Counter()
    nodes: collections.Counter[str] = collections.Counter()
    for ev in events:
        if ev.get("cat") == "Node" and ev["name"].endswith("_kernel_time"):
            took[ev["args"]["op_name"]] += ev["dur"]
            nodes[ev["args"]["op_name"]] += 1
    print(f"  {name}: {sum(took.values()) / calls:.1f} us of kernels per call, "
          f"{sum(nodes.values()) // calls} nodes")  # fmt: skip
    for op, us in took.most_common():
        print(f"    {op:26} {us / calls:9.1f} us  x{nodes[op] // calls}")


def exported(module: torch.nn.Module, feeds: dict[str, np.ndarray], dims: dict[str, dict[int, str]],
             outputs: list[str], opset: int) -> bytes:  # fmt: skip
    """torch.onnx.export's graph of the module (the TorchScript exporter), with the
    spec's symbolic dims as dynamic axes."""
    buf = io.BytesIO()
    args = tuple(torch.from_numpy(v) for v in feeds.values())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=list(feeds),
            output_names=outputs,
            dynamic_axes={**dims, **{o: {0: "B"} for o in outputs}},
        )
    return buf.getvalue()


def per_call(fn: Callable[[], object], budget: float = 0.05) -> float:
    """Mean seconds per call over a batch of calls lasting about `budget` seconds."""
    fn()
    n, start = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / n


_BASELINE = """
import pickle, sys
import numpy as np
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.pipeline import check_file
spec, weights, out, *opsets = sys.argv[1:]
checked, w = check_file(spec), dict(np.load(weights))
with open(out, "wb") as f:
    pickle.dump({int(o): to_onnx(checked.graph, w, opset=int(o)).SerializeToString()
                 for o in opsets}, f)
"""


def baseline_models(src: Path, spec: Path, weights: dict[str, np.ndarray],
                    opsets: list[int]) -> dict[int, bytes]:  # fmt: skip
    """The ONNX graphs of `spec` that the dlc source tree `src` builds (in a subprocess that
    imports it as `dlc`), with `weights`, at `opsets`."""
    import pickle

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "dlc").symlink_to(src.resolve())
        np.savez(Path(tmp) / "w.npz", **weights)
        out = Path(tmp) / "models.pkl"
        subprocess.run([sys.executable, "-c", _BASELINE, str(spec), str(Path(tmp) / "w.npz"),
                        str(out), *map(str, opsets)], check=True, cwd=tmp,
                       env={**os.environ, "PYTHONPATH": tmp})  # fmt: skip
        with out.open("rb") as f:
            models: dict[int, bytes] = pickle.load(f)
    return models


def bench(spec: str, batch: int, rounds: int, opsets: list[int], profiled: bool = False,
          baseline: Path | None = None) -> dict[str, float]:  # fmt: skip
    checked = check_file(ROOT / "specs" / f"{spec}.yaml")
    module = to_torch(checked.graph, seed=0).eval()
    feeds = sample_inputs(checked, batch, np.random.default_rng(0))
    dims = {i.name: {k: str(d) for k, d in enumerate(i.type.shape) if is_sym(d)}
            for i in checked.graph.inputs}  # fmt: skip
    outputs = [name for name, _ in checked.graph.outputs]
    tensors = {k: torch.from_numpy(v) for k, v in feeds.items()}
    weights = state_dict_numpy(module)
    models = {f"dlc{o}": to_onnx(checked.graph, weights, opset=o).SerializeToString()
              for o in opsets}  # fmt: skip
    if baseline is not None:
        old = baseline_models(baseline, ROOT / "specs" / f"{spec}.yaml", weights, opsets)
        models |= {f"base{o}": m for o, m in old.items()}
    models["export"] = exported(module, feeds, dims, outputs, 17)
    if profiled:
        print(f"{spec}, batch {batch}:")
        for name, model in models.items():
            profile(name, model, outputs, feeds, calls=max(10, 2000 // batch))
        return {}
    ours = {name: session(m) for name, m in models.items() if name != "export"}
    theirs = session(models["export"])
    b = theirs.run(outputs[:1], feeds)[0]
    with torch.no_grad():
        c = module(**tensors)
        c = c if torch.is_tensor(c) else c[outputs[0]]
    for s in ours.values():
        a = s.run(outputs, feeds)[0]
        assert np.allclose(a, b, atol=1e-4) and np.allclose(a, c.numpy(), atol=1e-4)

    def eager() -> object:
        with torch.no_grad():
            return module(**tensors)

    variants: dict[str, Callable[[], object]] = {
        name: functools.partial(s.run, outputs, feeds) for name, s in ours.items()
    }
    variants |= {
        "export": lambda: theirs.run(outputs, feeds),
        "eager": eager,
    }
    samples: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            samples[name].append(per_call(fn))
    out = {k: statistics.median(v) for k, v in samples.items()}
    out.update({f"{k}_best": min(v) for k, v in samples.items()})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--specs", default=DEFAULT_SPECS)
    parser.add_argument("--batches", default="1,64")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--baseline", type=Path, metavar="SRC",
                        help="also measure the graphs of the dlc source tree SRC")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="per op type kernel times (onnxruntime's profiler)")  # fmt: skip
    fused = FUSED_OPSET in supported_opsets() and runs_attention(FUSED_OPSET)
    parser.add_argument("--opset", default=str(FUSED_OPSET if fused else supported_opsets()[-1]),
                        help="dlc's opset(s), comma-separated (default: 23)")  # fmt: skip
    args = parser.parse_args()
    opsets = [int(o) for o in args.opset.split(",")]
    torch.set_num_threads(1)
    print(f"machine: {platform.platform()}, os.cpu_count()={os.cpu_count()}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, single-threaded; "
          f"median of {args.rounds} interleaved rounds")  # fmt: skip
    for o in opsets:
        print(f"dlc{o}: dlc's graph at opset {o}; export: torch.onnx.export at opset 17")
    if args.baseline:
        print(f"base{{opset}}: the graph that {args.baseline} builds (same weights, same run)")
    kinds = ["base", "dlc"] if args.baseline else ["dlc"]
    graphs = [f"{k}{o}" for o in opsets for k in kinds]
    head = (f"{'spec':15} {'batch':>5} {'graph':>6} {'dlc ORT us':>11} {'export ORT us':>14} "
            f"{'eager us':>9} {'dlc/export':>10} {'eager/dlc':>9} "
            f"{'(best rounds)':>14}")  # fmt: skip
    if not args.profile:
        print(head)
        print("-" * len(head))
    specs = LAYER_SPECS if args.specs == "layers" else args.specs
    for spec in specs.split(","):
        for batch in (int(b) for b in args.batches.split(",")):
            r = bench(spec, batch, args.rounds, opsets, args.profile, args.baseline)
            if args.profile:
                continue
            for g in graphs:
                d = r[g]
                print(f"{spec:15} {batch:>5} {g:>6} {d * 1e6:>11.1f} {r['export'] * 1e6:>14.1f} "
                      f"{r['eager'] * 1e6:>9.1f} {d / r['export']:>10.3f} "
                      f"{r['eager'] / d:>9.2f} "
                      f"{r[f'{g}_best'] / r['export_best']:>14.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
