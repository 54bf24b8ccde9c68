"""Print `dlc lint --probe`'s table for each spec given (default: the three deep MLPs of
this folder), and write each one's gradient PNG beside it in --out, if given.

    python tests/probe_cases/tables.py [SPEC ...] [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlc.compiler.pipeline import check_file
from dlc.runtime.probe import plot_gradients, probe

HERE = Path(__file__).resolve().parent
CASES = ["sigmoid_deep.yaml", "relu_he_deep.yaml", "residual_sigmoid_deep.yaml"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="*", default=[str(HERE / c) for c in CASES])
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    for spec in args.specs:
        report = probe(check_file(spec))
        print(report.table())
        for finding in report.findings:
            print(finding.render())
        if args.out:
            print("wrote", plot_gradients(report, args.out / f"{report.name}.png"))
        print()


if __name__ == "__main__":
    main()
