"""The operations side of `dlc serve`: Prometheus metrics, the access log, and the ASGI
middleware that feeds both for every request.

/metrics gives requests by model, endpoint and status, a latency histogram, the rows of
each onnxruntime call and its time, and per model the queue depth, the calls running and
the requests in flight. The access log writes one line per request to stdout.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections.abc import Mapping
from typing import Any, TextIO

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

Labels = tuple[tuple[str, str], ...]


class Histogram:
    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.series: dict[Labels, list[Any]] = {}  # labels -> [bucket counts, sum, count]

    def observe(self, labels: Labels, value: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = [[0] * (len(self.bounds) + 1), 0.0, 0]
        counts = series[0]
        counts[bisect.bisect_left(self.bounds, value)] += 1
        series[1] += value
        series[2] += 1

    def render(self, name: str, out: list[str]) -> None:
        for labels, (counts, total, n) in sorted(self.series.items()):
            running = 0
            for bound, c in zip((*self.bounds, "+Inf"), counts, strict=True):
                running += c
                out.append(f"{name}_bucket{_labels(labels + (('le', str(bound)),))} {running}")
            out.append(f"{name}_sum{_labels(labels)} {total:.9g}")
            out.append(f"{name}_count{_labels(labels)} {n}")


def _labels(labels: Labels) -> str:
    text = ",".join(f'{k}="{v}"' for k, v in labels)  # names and tags are [A-Za-z0-9_.-]
    return "{" + text + "}" if text else ""


class Metrics:
    """The server's numbers in Prometheus' text format. Only the event loop touches them."""

    def __init__(self) -> None:
        self.requests: dict[Labels, int] = {}
        self.latency = Histogram(LATENCY_BUCKETS)
        self.batch = Histogram(BATCH_BUCKETS)
        self.compute = Histogram(LATENCY_BUCKETS)

    def request(self, model: str, endpoint: str, status: int, seconds: float) -> None:
        where = (("model", model), ("endpoint", endpoint))
        key = (*where, ("code", str(status)))
        self.requests[key] = self.requests.get(key, 0) + 1
        self.latency.observe(where, seconds)

    def batch_done(self, model: str, rows: int, seconds: float) -> None:
        self.batch.observe((("model", model),), rows)
        self.compute.observe((("model", model),), seconds)

    def render(self, models: Mapping[str, Any]) -> str:
        """The text of /metrics; `models` are models.py's Models (batcher, in_flight)."""
        out: list[str] = []

        def head(name: str, kind: str, text: str) -> None:
            out.extend((f"# HELP {name} {text}", f"# TYPE {name} {kind}"))

        head("dlc_requests_total", "counter", "HTTP requests answered, by model, endpoint, code.")
        for labels, n in sorted(self.requests.items()):
            out.append(f"dlc_requests_total{_labels(labels)} {n}")
        head("dlc_request_duration_seconds", "histogram", "Time to answer a request.")
        self.latency.render("dlc_request_duration_seconds", out)
        head("dlc_batch_size", "histogram", "Rows in each onnxruntime call, by model.")
        self.batch.render("dlc_batch_size", out)
        head("dlc_inference_duration_seconds", "histogram", "Time of each onnxruntime call.")
        self.compute.render("dlc_inference_duration_seconds", out)
        head("dlc_queue_depth", "gauge", "Requests waiting for a batch, by model.")
        for m in models.values():
            depth = m.batcher.queue_depth if m.batcher else 0
            out.append(f'dlc_queue_depth{{model="{m.name}"}} {depth}')
        head("dlc_inference_running", "gauge", "onnxruntime calls running now, by model.")
        for m in models.values():
            running = m.batcher.running if m.batcher else 0
            out.append(f'dlc_inference_running{{model="{m.name}"}} {running}')
        head("dlc_requests_in_flight", "gauge", "Infer requests received, not yet answered.")
        for m in models.values():
            out.append(f'dlc_requests_in_flight{{model="{m.name}"}} {m.in_flight}')
        return "\n".join(out) + "\n"


class AccessLog:
    """One line per request, written in bulk: a line costs a string format, not a
    logging record and a write call; the stream is flushed 0.2 s after a line."""

    def __init__(self, stream: TextIO | None) -> None:
        self.stream = stream
        self._second = -1
        self._stamp = ""
        self._flush_due = False

    def line(self, text: str) -> None:
        if self.stream is None:
            return
        second = int(time.time())
        if second != self._second:
            self._second = second
            self._stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self.stream.write(f"{self._stamp} {text}\n")
        if not self._flush_due:
            self._flush_due = True
            asyncio.get_running_loop().call_later(0.2, self.flush)

    def flush(self) -> None:
        self._flush_due = False
        if self.stream is not None:
            self.stream.flush()


class Observe:
    """ASGI middleware: each HTTP request's metrics and its access-log line. Handlers tag
    the scope with the endpoint and the (known) model, so labels stay few."""

    def __init__(self, app: Any, metrics: Metrics, access: AccessLog) -> None:
        self.app = app
        self.metrics = metrics
        self.access = access

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_noting_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            seconds = time.perf_counter() - start
            endpoint = scope.get("dlc.endpoint", "other")
            self.metrics.request(scope.get("dlc.model", ""), endpoint, status, seconds)
            client = scope.get("client")
            peer = f"{client[0]}:{client[1]}" if client else "-"
            query = scope.get("query_string", b"")
            self.access.line(
                f"{peer} "
                f'"{scope["method"]} {scope["path"]}{"?" if query else ""}'
                f'{query.decode("latin-1")} HTTP/{scope["http_version"]}" '
                f"{status} {seconds * 1e3:.2f}ms"
            )
