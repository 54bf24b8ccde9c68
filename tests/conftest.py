"""Shared test helpers: specs from snippets, and running the real `dlc` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dlc.compiler.errors import DlcError
from dlc.compiler.pipeline import Checked, check_text

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def one_layer(layer: str, shape: str = "[B, 16]", dtype: str | None = None) -> str:
    inp = f"{{shape: {shape}, dtype: {dtype}}}" if dtype else shape
    return f"dlc: 1\nname: t\ninputs:\n  x: {inp}\nmodel:\n  - {layer}\n"


def check_layer(layer: str, shape: str = "[B, 16]", **kw: str) -> Checked:
    return check_text(one_layer(layer, shape, **kw), "t.yaml")


def error_of(text: str, name: str = "spec.yaml") -> DlcError:
    try:
        check_text(text, name)
    except DlcError as e:
        return e
    raise AssertionError("expected a DlcError")


def run_dlc(*args: str, cwd: Path = ROOT, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, **(env or {}))
    full_env.pop("DLC_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "dlc.runtime.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
