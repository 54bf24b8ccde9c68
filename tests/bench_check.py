"""Benchmark of the front end: how long `dlc check` takes as a spec grows.

Not a pytest test (the name does not start with `test_`): run it by hand,

    python tests/bench_check.py [--sizes 10,100,1000,10000] [--variant graph,sequential]

For each size N it generates a spec as YAML text and times

* in process: `dlc.compiler.pipeline.check_text(text, name)` (load the YAML, JSON Schema
  validation, parse the expressions, elaborate, infer shapes), best of k repeats
  (k = 5, or 3 from 10,000 nodes up), measured with `time.perf_counter`;
* end to end: one real `dlc check FILE` subprocess (interpreter start-up, imports, the
  check and the report), wall-clock time.

"Nodes" are the spec's named graph nodes (the keys of the `model:` mapping) for the graph
variant, and the layer strings of the `model:` list for the sequential variant; the IR
has more (every `->` step is an IR node), its count is printed too.

The graph variant is a chain of width-32 nodes with a mix of ops and skip connections:

    n17: n16 -> dense(32) -> relu
    n20: n19 + n15 -> layernorm          # every 5th node: a skip connection
    n21: concat(n20, n19) -> dense(32)   # every 7th node: two branches joined
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WIDTH = 32
# the pipelines of the plain chain nodes, in turn (each keeps the width WIDTH)
CHAIN = [
    f"dense({WIDTH}) -> relu",
    f"dense({WIDTH}, bias=false) -> gelu",
    "layernorm -> dropout(p)",
    "dense(width) -> tanh",
    f"residual(dense({WIDTH}) -> relu)",
    "silu",
    f"dense({WIDTH}) -> leaky_relu(slope=0.1)",
]


def _head(name: str) -> list[str]:
    """The lines before the model's entries."""
    return [
        "dlc: 1",
        f"name: {name}",
        f"params: {{width: {WIDTH}, p: 0.1}}",
        f"inputs: {{x: [B, {WIDTH}]}}",
        "model:",
    ]


def graph_spec(n: int) -> str:
    """A graph model of n named nodes (n >= 1)."""
    lines = _head(f"bench_graph_{n}") + [f"  n0: x -> dense({WIDTH}) -> relu"]
    for i in range(1, n):
        prev = f"n{i - 1}"
        if i % 5 == 0 and i >= 5:
            body = f"{prev} + n{i - 5} -> layernorm"
        elif i % 7 == 0 and i >= 2:
            body = f"concat({prev}, n{i - 2}) -> dense({WIDTH})"
        else:
            body = f"{prev} -> {CHAIN[i % len(CHAIN)]}"
        lines.append(f"  n{i}: {body}")
    return "\n".join(lines) + "\n"


def sequential_spec(n: int) -> str:
    """A sequential model: a list of n layer strings."""
    lines = _head(f"bench_seq_{n}") + [f"  - {CHAIN[i % len(CHAIN)]}" for i in range(n)]
    return "\n".join(lines) + "\n"


VARIANTS = {"graph": graph_spec, "sequential": sequential_spec}


def best_of(fn, k: int) -> tuple[float, object]:  # noqa: ANN001
    best = float("inf")
    result = None
    for _ in range(k):
        result = None
        gc.collect()  # start each run without the previous run's garbage
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def wall(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return time.perf_counter() - t0, proc


def dlc_command() -> list[str]:
    """`dlc` next to this interpreter (the venv's script), else `python -m dlc.runtime.cli`."""
    script = Path(sys.executable).with_name("dlc")
    if script.exists():
        return [str(script)]
    found = shutil.which("dlc")
    return [found] if found else [sys.executable, "-m", "dlc.runtime.cli"]


def startup(dlc: list[str], repeats: int = 5) -> None:
    rows = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        (
            "python -c 'import dlc.compiler.pipeline'",
            [sys.executable, "-c", "import dlc.compiler.pipeline"],
        ),
        ("dlc --version", [*dlc, "--version"]),
    ]
    print(f"start-up floor (subprocess wall seconds, best of {repeats}):")
    for label, cmd in rows:
        best = min(wall(cmd)[0] for _ in range(repeats))
        print(f"  {label:<42} {best:8.3f} s")
    print()


def bench(variant: str, sizes: list[int], dlc: list[str], tmp: Path) -> None:
    from dlc.compiler.errors import DlcError
    from dlc.compiler.pipeline import check_text

    make = VARIANTS[variant]
    unit = "named graph nodes" if variant == "graph" else "layer strings (list items)"
    print(f"variant: {variant} (nodes = {unit})")
    header = (
        f"{'nodes':>7} {'IR nodes':>9} {'lines':>7} {'k':>2} {'in-proc s':>10} "
        f"{'us/node':>9} {'ratio':>7} {'subproc s':>10}"
    )
    print(header)
    print("-" * len(header))
    prev: float | None = None
    for n in sizes:
        text = make(n)
        name = f"bench_{variant}_{n}.yaml"
        k = 3 if n >= 10_000 else 5
        try:
            seconds, checked = best_of(lambda text=text, name=name: check_text(text, name), k)
        except DlcError as e:
            print(f"{n:>7} spec does not check:\n{e.render()}")
            return
        ir_nodes = len(checked.graph.nodes)
        path = tmp / name
        path.write_text(text)
        sub, proc = wall([*dlc, "check", "-q", str(path)])
        ratio = f"{seconds / prev:7.2f}" if prev else f"{'-':>7}"
        status = "" if proc.returncode == 0 else f"  (exit {proc.returncode}: {proc.stderr[:200]})"
        print(
            f"{n:>7} {ir_nodes:>9} {text.count(chr(10)):>7} {k:>2} {seconds:>10.4f} "
            f"{seconds / n * 1e6:>9.1f} {ratio} {sub:>10.3f}{status}"
        )
        prev = seconds
    print("ratio: in-process time over the previous size's (10x the nodes: ~10 is linear)")
    print()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="time `dlc check` on generated specs")
    ap.add_argument(
        "--sizes",
        default="10,100,1000,10000",
        help="comma-separated node counts (default: %(default)s)",
    )
    ap.add_argument(
        "--variant",
        default="graph,sequential",
        help="comma-separated: graph, sequential (default: %(default)s)",
    )
    ap.add_argument(
        "--dump", metavar="N", help="print the graph spec of N nodes and exit (for profiling)"
    )
    args = ap.parse_args(argv)
    if args.dump:
        sys.stdout.write(graph_spec(int(args.dump)))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    variants = [v.strip() for v in args.variant.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v!r}; choose from {', '.join(VARIANTS)}")

    print(
        f"machine: {platform.platform()}, {platform.machine()}, "
        f"os.cpu_count()={os.cpu_count()}, {platform.processor() or 'cpu ?'}"
    )
    print(f"python {platform.python_version()} ({sys.executable})")
    import yaml

    print(f"pyyaml {yaml.__version__}, libyaml: {getattr(yaml, '__with_libyaml__', False)}")
    dlc = dlc_command()
    print(f"dlc command: {' '.join(dlc)}")
    print()
    startup(dlc)
    with tempfile.TemporaryDirectory(prefix="dlc-bench-") as tmp:
        for v in variants:
            bench(v, sizes, dlc, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
