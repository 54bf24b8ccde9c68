"""The tests' shared helpers: specs from snippets, running the real `dlc` CLI, random
weights for a graph, readable case ids, ONNX files built by hand, a real `dlc serve`
process (`Server`), and the parity tolerances (the code's own, from
dlc.runtime.compile, not restated). Test modules import them from here (`from conftest
import ...`); no test module imports another."""

from __future__ import annotations

import http.client
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper as h

from dlc.compiler.errors import DlcError
from dlc.compiler.ir import Graph
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked, check_text
from dlc.runtime.compile import ATOL, RTOL  # noqa: F401  (the parity criterion, for the tests)

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def one_layer(layer: str, shape: str = "[B, 16]", dtype: str | None = None) -> str:
    inp = f"{{shape: {shape}, dtype: {dtype}}}" if dtype else shape
    return f"dlc: 1\nname: t\ninputs:\n  x: {inp}\nmodel:\n  - {layer}\n"


def check_layer(layer: str, shape: str = "[B, 16]", **kw: str) -> Checked:
    return check_text(one_layer(layer, shape, **kw), "t.yaml")


def checked_example(e: Example) -> Checked:
    """An op's example (OpDef.examples) as a checked one-layer spec."""
    return check_layer(e.layer, e.shape, **({"dtype": e.dtype} if e.dtype else {}))


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


def random_weights(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Normal weights (matrices scaled by 1/√fan_in); the op's positive_params (running
    variances, scales, widths) > 0; num_batches_tracked an int64 count."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for node in graph.nodes:
        positive = REGISTRY[node.op].positive_params
        for p in node.params:
            key = f"{node.name}.{p.name}"
            if p.name == "num_batches_tracked":
                out[key] = np.array(7, np.int64)
                continue
            a = rng.standard_normal(p.shape)
            if len(p.shape) >= 2:
                a /= math.sqrt(p.shape[-1])
            out[key] = (0.5 + np.abs(a) if p.name in positive else a).astype(np.float32)
    return out


def case_id(v: Any) -> str:
    """A readable, stable test id: `adam-lr=0.1`, `int64[4, 1]`, no memory addresses."""
    if isinstance(v, dict):
        return ",".join(f"{k}={x}" for k, x in v.items()) or "defaults"
    if isinstance(v, np.ndarray):
        return f"{v.dtype}{list(v.shape)}"
    if callable(v):
        return "formula"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def save_onnx(graph: onnx.GraphProto, path: Path) -> Path:
    """`graph` as an opset-17 ONNX file, checked in full."""
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


# -- a real `dlc serve` process on a free 127.0.0.1 port (test_serve and its kin) ----


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    out: Path  # the access log
    err: Path

    def call(self, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def infer(self, model: str, doc: dict, **kw: str) -> Reply:
        return self.call("POST", f"/v2/models/{model}/infer", json.dumps(doc).encode(), kw or None)

    def metrics(self) -> dict[str, float]:
        text = self.call("GET", "/metrics").body.decode()
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line and not line.startswith("#")
        }


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def start_server(args: list[str], workdir: Path) -> Server:
    out, err = workdir / "access.log", workdir / "server.err"
    env = dict(os.environ)
    env.pop("DLC_DEBUG", None)
    cmd = [sys.executable, "-m", "dlc.runtime.cli", "serve", *args, "--port", "0"]
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e, cwd=ROOT, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        text = err.read_text()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m and "startup complete" in text:
            return Server(proc, int(m.group(1)), out, err)
        if proc.poll() is not None:
            raise AssertionError(f"dlc serve exited {proc.returncode}:\n{text}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"dlc serve did not start:\n{err.read_text()}")


def stop(server: Server) -> None:
    if server.proc.poll() is None:
        server.proc.send_signal(signal.SIGTERM)
        try:
            server.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
