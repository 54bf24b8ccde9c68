"""Load test of `dlc serve`: throughput, latency and a soak, against a real server.

    python tests/load_serve.py [--spec specs/digits_mlp.yaml] [--seconds 4] [--soak-seconds 60]

It compiles the spec's model into a temp dir, starts `dlc serve` on a free 127.0.0.1 port
(with the hidden no-op endpoint, `--max-body-mb 1`), and prints, measured in this one run:

- the in-process onnxruntime call rate on batch-1 inputs (the model's own ceiling);
- requests/s and p50/p99 latency at concurrency 1, 8 and 32 with batch-1 requests for
  the no-op endpoint (the HTTP floor of the same server stack: it reads the same body
  and answers at once), infer with JSON tensors and infer with binary tensors, and
  the ratio infer / no-op side by side;
- a soak of mixed valid and invalid requests (bad JSON, wrong datatype and shape,
  unknown model, over the size limit, not HTTP at all, a body cut short), counting 5xx
  answers and wrong results on the valid ones, and the server's RSS growth.

Each run also shows the server's CPU time per request (from /proc), which other load on
the machine inflates less than it does the wall-clock rates, and the load average is
printed before and after. With specs/mnist_mlp.yaml a JSON request carries 784 decimal
numbers: parsing them costs about as much as the no-op's whole request, so JSON infer
stays near half the no-op's rate there, while binary requests skip that cost.

The client is one asyncio process with keep-alive connections and hand-written
HTTP/1.1 (uvloop when installed), so it costs the 2-core machine little next to the
server. It stops each run after --seconds or --max-requests. Exit status 1 when a
criterion fails: infer (JSON) at concurrency 32 under 70% of the no-op's rate, p99 at
concurrency 8 over 10 ms, a 5xx or a wrong result on a valid request in the soak, or
RSS growth over 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


# -- requests -----------------------------------------------------------------------


def http_request(path: str, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {HOST}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def json_infer(x: np.ndarray, name: str = "x", datatype: str = "FP32") -> bytes:
    doc = {"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype, "data": x}]}
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def binary_infer(x: np.ndarray, output: str) -> tuple[bytes, dict[str, str]]:
    raw = x.astype("<f4").tobytes()
    head = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": list(x.shape),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": output, "parameters": {"binary_data": True}}],
        }
    )
    return head + raw, {"Inference-Header-Content-Length": str(len(head))}


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if b":" in line:
            k, v = line.split(b":", 1)
            headers[k.strip().lower()] = v.strip()
    body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return status, headers, body


# -- throughput ---------------------------------------------------------------------


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0
    server_cpu: float = 0.0  # CPU seconds the server process used during the run

    @property
    def cpu_us(self) -> float:
        """The server's CPU time per request: what load on the machine does not inflate
        as much as it does wall-clock rates."""
        return self.server_cpu / len(self.latencies) * 1e6 if self.latencies else float("nan")

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return float(np.percentile(self.latencies, q)) * 1e3


async def closed_loop(
    port: int, requests: list[bytes], concurrency: int, seconds: float, max_requests: int
) -> Run:
    run = Run()
    budget = [max_requests]
    start = time.perf_counter()
    deadline = start + seconds

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = k
        try:
            while budget[0] > 0 and time.perf_counter() < deadline:
                budget[0] -= 1
                t0 = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status, _, _ = await read_response(reader)
                run.latencies.append(time.perf_counter() - t0)
                if status != 200:
                    run.errors += 1
                i += concurrency
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    run.seconds = time.perf_counter() - start
    return run


def onnxruntime_rate(model: Path, xs: list[np.ndarray], seconds: float) -> Run:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the server runs each call
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    run = Run()
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        session.run(None, {"x": xs[i % len(xs)]})
        run.latencies.append(time.perf_counter() - t0)
        i += 1
    run.seconds = time.perf_counter() - start
    return run


# -- soak ---------------------------------------------------------------------------


@dataclass
class Kind:
    name: str
    payload: bytes
    valid: bool
    expect: tuple[int, ...]  # the statuses that are right for it
    check: np.ndarray | None = None  # a valid request's expected output
    fresh: bool = False  # on a connection of its own (the server may close it)
    cut: bool = False  # send part of the body, then hang up


@dataclass
class SoakCounts:
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    valid_5xx: int = 0
    wrong: int = 0

    def note(self, kind: str, outcome: str) -> None:
        counts = self.by_kind.setdefault(kind, {})
        counts[outcome] = counts.get(outcome, 0) + 1


def soak_kinds(model: str, xs: list[np.ndarray], ys: list[np.ndarray], out: str) -> list[Kind]:
    infer = f"/v2/models/{model}/infer"
    x, y = xs[0], ys[0]
    body, headers = binary_infer(x, out)
    four = np.concatenate(xs[:4])
    big = json_infer(np.zeros((1, 300_000), np.float32))  # over --max-body-mb 1
    return [
        Kind("valid json", http_request(infer, json_infer(x)), True, (200,), y),
        Kind("valid binary", http_request(infer, body, headers), True, (200,), y),
        Kind("valid batch of 4", http_request(infer, json_infer(four)), True, (200,)),
        Kind("malformed json", http_request(infer, b'{"inputs": [{'), False, (400,)),
        Kind("wrong datatype", http_request(infer, json_infer(x, datatype="FP64")), False, (400,)),
        Kind("wrong shape", http_request(infer, json_infer(x[:, :-1])), False, (400,)),
        Kind("unknown input", http_request(infer, json_infer(x, name="z")), False, (400,)),
        Kind("unknown model", http_request("/v2/models/nope/infer", json_infer(x)), False, (404,)),
        Kind("over the limit", http_request(infer, big), False, (413,), fresh=True),
        Kind("not http", b"\x00\x01GARBAGE\r\n\r\n", False, (400,), fresh=True),
        Kind("body cut short", http_request(infer, json_infer(x))[:-100], False, (), cut=True),
    ]


async def soak(port: int, kinds: list[Kind], concurrency: int, seconds: float) -> SoakCounts:
    counts = SoakCounts()
    deadline = time.perf_counter() + seconds
    schedule = [k for k in kinds for _ in range(8 if k.valid else 1)]  # mostly valid traffic

    async def one_off(kind: Kind) -> None:
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError as e:
            counts.note(kind.name, f"connect failed: {e}")
            return
        try:
            writer.write(kind.payload)
            if kind.cut:
                await writer.drain()
                counts.note(kind.name, "hung up")
                return
            status, _, _ = await read_response(reader)
            counts.note(kind.name, str(status) if status in kind.expect else f"UNEXPECTED {status}")
        except (ConnectionError, asyncio.IncompleteReadError):
            counts.note(kind.name, "connection closed")  # the server may hang up on garbage
        finally:
            writer.close()

    async def client(k: int) -> None:
        reader, writer = await asyncio.open_connection(HOST, port)
        i = k
        try:
            while time.perf_counter() < deadline:
                kind = schedule[i % len(schedule)]
                i += concurrency
                if kind.fresh or kind.cut:
                    await one_off(kind)
                    continue
                writer.write(kind.payload)
                status, headers, body = await read_response(reader)
                if kind.valid and status >= 500:
                    counts.valid_5xx += 1
                if kind.check is not None and status == 200:
                    if not np.array_equal(_output(headers, body), kind.check.ravel()):
                        counts.wrong += 1
                counts.note(
                    kind.name, str(status) if status in kind.expect else f"UNEXPECTED {status}"
                )
        finally:
            writer.close()

    await asyncio.gather(*(client(k) for k in range(concurrency)))
    return counts


def _output(headers: dict[bytes, bytes], body: bytes) -> np.ndarray:
    """The first output of a response, JSON or binary."""
    n = headers.get(b"inference-header-content-length")
    if n is None:
        return np.asarray(orjson.loads(body)["outputs"][0]["data"], np.float32)
    return np.frombuffer(body[int(n) :], "<f4")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# -- the run ------------------------------------------------------------------------


def start_server(model: Path, workdir: Path, extra: list[str]) -> tuple[subprocess.Popen, int]:
    err = open(workdir / "server.err", "w")  # noqa: SIM115 - lives as long as the server
    access = open(workdir / "access.log", "w")  # noqa: SIM115
    cmd = [sys.executable, "-m", "dlc.runtime.cli", "serve", f"model={model}", "--port", "0"]
    proc = subprocess.Popen(cmd + ["--noop-endpoint", "--max-body-mb", "1", *extra],
                            stdout=access, stderr=err)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        text = (workdir / "server.err").read_text()
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", text)
        if m and "startup complete" in text:
            return proc, int(m.group(1))
        if proc.poll() is not None:
            sys.exit(f"the server did not start:\n{text}")
        time.sleep(0.05)
    proc.kill()
    sys.exit("the server did not start in 60 s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--spec",
        default=str(ROOT / "specs" / "digits_mlp.yaml"),
        help="the model (default: the digits MLP, README's main job; or specs/mnist_mlp.yaml)",
    )
    ap.add_argument("--seconds", type=float, default=4.0, help="each throughput run (4)")
    ap.add_argument("--max-requests", type=int, default=100_000, help="per run (100000)")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--soak-seconds", type=float, default=60.0)
    ap.add_argument("--soak-concurrency", type=int, default=8)
    ap.add_argument("--server-args", default="", help="more `dlc serve` options, quoted")
    args = ap.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    with tempfile.TemporaryDirectory(prefix="dlc-load-") as tmp:
        workdir = Path(tmp)
        model = workdir / "model.onnx"
        subprocess.run([sys.executable, "-m", "dlc.runtime.cli", "compile", args.spec, "-o",
                        str(model)], check=True, capture_output=True)  # fmt: skip
        import onnxruntime as ort

        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        (inp,) = session.get_inputs()
        out = session.get_outputs()[0].name
        width = int(inp.shape[1])
        rng = np.random.default_rng(0)
        xs = [rng.standard_normal((1, width), dtype=np.float32) for _ in range(16)]
        ys = [session.run([out], {"x": x})[0] for x in xs]

        print(f"model: {Path(args.spec).name} ({width} inputs -> {out}), cores: {os.cpu_count()}")
        ref = onnxruntime_rate(model, xs, min(args.seconds, 3.0))
        print(
            f"onnxruntime in-process, batch 1, 1 thread: {ref.rate:,.0f} calls/s "
            f"(p50 {ref.pct(50):.3f} ms, p99 {ref.pct(99):.3f} ms)"
        )
        proc, port = start_server(model, workdir, args.server_args.split())
        try:
            return _measure(args, proc, port, xs, ys, out, ref)
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _measure(args, proc, port, xs, ys, out, ref) -> int:  # noqa: ANN001
    infer = "/v2/models/model/infer"
    binaries = [binary_infer(x, out) for x in xs]
    endpoints = {
        "noop": [http_request("/v2/noop", json_infer(x)) for x in xs],
        "infer json": [http_request(infer, json_infer(x)) for x in xs],
        "infer binary": [http_request(infer, b, h) for b, h in binaries],
    }
    levels = [int(c) for c in args.concurrency.split(",")]
    asyncio.run(closed_loop(port, endpoints["infer json"], 8, 1.0, 5000))  # warm up
    results: dict[tuple[int, str], Run] = {}
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"\n{'conc':>4}  {'endpoint':<13}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'server CPU us/req':>19}  non-200"
    )
    for c in levels:
        for name, requests in endpoints.items():
            cpu = cpu_seconds(proc.pid)
            run = asyncio.run(closed_loop(port, requests, c, args.seconds, args.max_requests))
            run.server_cpu = cpu_seconds(proc.pid) - cpu
            results[c, name] = run
            print(
                f"{c:>4}  {name:<13}{run.rate:>9,.0f}{run.pct(50):>9.2f}{run.pct(99):>9.2f}"
                f"{run.cpu_us:>19,.0f}  {run.errors}"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\nside by side (same run, same server):")
    for c in levels:
        noop = results[c, "noop"].rate
        j, b = results[c, "infer json"].rate, results[c, "infer binary"].rate
        cpu = results[c, "noop"].cpu_us / results[c, "infer json"].cpu_us
        print(
            f"  concurrency {c:>2}: infer json / noop {j / noop:.2f}, infer binary / noop "
            f"{b / noop:.2f}, infer json / onnxruntime in-process {j / ref.rate:.2f}; "
            f"server CPU per request, noop / infer json {cpu:.2f}"
        )

    kinds = soak_kinds("model", xs, ys, out)
    rss_start = rss_kib(proc.pid)
    counts = asyncio.run(soak(port, kinds, args.soak_concurrency, args.soak_seconds))
    rss_end = rss_kib(proc.pid)
    alive = proc.poll() is None
    growth = (rss_end - rss_start) / rss_start if rss_start else float("nan")
    print(f"\nsoak: {args.soak_seconds:.0f} s at concurrency {args.soak_concurrency}")
    for kind, outcome in counts.by_kind.items():
        print(f"  {kind:<18} {', '.join(f'{k}: {v:,}' for k, v in sorted(outcome.items()))}")
    print(
        f"  5xx on valid requests: {counts.valid_5xx}; wrong results: {counts.wrong}; "
        f"server RSS {rss_start / 1024:.1f} -> {rss_end / 1024:.1f} MiB ({growth:+.1%}); "
        f"server {'alive' if alive else 'DEAD'}"
    )
    unexpected = sum(
        v for o in counts.by_kind.values() for k, v in o.items() if k.startswith("UNEXPECTED")
    )

    checks = []
    if 32 in levels:
        ratio = results[32, "infer json"].rate / results[32, "noop"].rate
        checks.append((ratio >= 0.7, f"concurrency 32: infer json at {ratio:.0%} of noop (>= 70%)"))
    if 8 in levels:
        p99 = results[8, "infer json"].pct(99)
        checks.append((p99 < 10, f"concurrency 8: infer json p99 {p99:.2f} ms (< 10 ms)"))
    checks.append((counts.valid_5xx == 0 and counts.wrong == 0, "soak: no 5xx, no wrong result"))
    checks.append((unexpected == 0, f"soak: {unexpected} answers with an unexpected status"))
    checks.append((growth <= 0.10 and alive, f"soak: RSS growth {growth:+.1%} (<= 10%)"))
    print()
    for ok, text in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
