"""Benchmark of `dlc graph`: how long drawing a spec takes as it grows, per format.

Not a pytest test: run it by hand,

    python tests/bench_graph.py [--sizes 1000,10000]

For each size N it makes bench_check.py's graph spec of N named nodes (a chain with skip
connections and concats; each named node is a group of its `->` steps), checks it once
(timed apart: that is `dlc check`'s cost), then times `render_graph` for each format,
collapsed (the spec's top level: N group units) and with `--expand all` (every IR node),
and one end-to-end `dlc graph -o FILE.svg --expand all` subprocess.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_check import dlc_command, graph_spec  # noqa: E402

FORMATS = (".svg", ".html", ".dot", ".mmd")


def main(argv: list[str] | None = None) -> int:
    from dlc.compiler.graph import render_graph
    from dlc.compiler.pipeline import check_text

    ap = argparse.ArgumentParser(description="time `dlc graph` on generated specs")
    ap.add_argument("--sizes", default="1000,10000", help="node counts (default: %(default)s)")
    sizes = [int(s) for s in ap.parse_args(argv).sizes.split(",") if s.strip()]
    header = f"{'nodes':>6} {'IR':>6} {'check s':>8} {'expand':>9} " + " ".join(
        f"{f:>7}" for f in FORMATS
    )
    print("seconds per format (render only, after the check), and end to end")
    print(header)
    print("-" * len(header))
    with tempfile.TemporaryDirectory(prefix="dlc-bench-graph-") as tmp:
        for n in sizes:
            text = graph_spec(n)
            t0 = time.perf_counter()
            checked = check_text(text, f"bench_{n}.yaml")
            check_s = time.perf_counter() - t0
            for expand in ([], ["all"]):
                cells = []
                for fmt in FORMATS:
                    t0 = time.perf_counter()
                    render_graph(checked.graph, fmt, expand)
                    cells.append(f"{time.perf_counter() - t0:7.2f}")
                label = "all" if expand else "top"
                print(f"{n:>6} {len(checked.graph.nodes):>6} {check_s:>8.2f} {label:>9} "
                      + " ".join(cells))  # fmt: skip
            spec = Path(tmp) / f"bench_{n}.yaml"
            spec.write_text(text)
            cmd = [*dlc_command(), "graph", str(spec), "-o", str(Path(tmp) / "g.svg"),
                   "--expand", "all"]  # fmt: skip
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            wall = time.perf_counter() - t0
            status = "ok" if proc.returncode == 0 else f"exit {proc.returncode}: {proc.stderr}"
            print(f"{'':>6} end to end: dlc graph --expand all -o .svg  {wall:.2f} s ({status})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
