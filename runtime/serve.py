"""`dlc serve MODEL.onnx...`: the KServe v2 inference protocol over onnxruntime.

The pieces, outside in:

- uvicorn, on a socket `serve_command` binds itself (so a port in use is a clean error),
  with a SIGTERM/SIGINT handler that drains: the listener closes, requests in flight
  are answered, the process exits 0.
- `observe.Observe`, a plain ASGI middleware: the metrics of every request and one access-log
  line (stdout) for it.
- Starlette routes to `KServeApp`'s handlers. Each handler turns `HTTPError` into a
  status and `{"error": ...}`; anything else is logged and answered 500, and the server
  goes on. Request bodies are read against `--max-body-mb` (413 past it).
- The wire format (`kserve`), checked against the model's signature before anything
  runs; then the model's `Batcher` (`batching`), which runs onnxruntime on a thread pool.

Only the models named on the command line are served, and the server listens on
127.0.0.1 unless `--host` says otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import logging
import re
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import orjson
import uvicorn
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

from .. import __version__
from ..compiler.errors import DlcError, UsageError
from .batching import Batcher, InferenceError, Workers
from .kserve import (
    PLATFORM,
    VERSION,
    HTTPError,
    Signature,
    decode_body,
    encode_response,
    parse_infer,
)
from .kserve import openapi as openapi_doc
from .observe import AccessLog, Metrics, Observe

log = logging.getLogger("dlc.serve")

NAME = re.compile(r"[A-Za-z0-9_.-]+")
DRAIN_SECONDS = 30  # how long SIGTERM waits for requests in flight before cancelling them
DISCARD_BYTES = 64 << 20  # how much of a refused body is read and dropped before closing


class ServeError(DlcError):
    """A model cannot be served, or the server cannot start."""

    phase = "serve"


@dataclass
class Model:
    name: str
    path: Path
    session: Any
    signature: Signature
    batcher: Batcher | None = None
    in_flight: int = 0
    metadata: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Options:
    max_batch: int = 64
    max_delay: float = 0.002  # seconds
    workers: int = 1
    max_body: int = 64 << 20  # bytes
    noop: bool = False  # the benchmark's no-op endpoint


# -- models -------------------------------------------------------------------------


def model_paths(items: list[str]) -> list[tuple[str, Path]]:
    """`PATH` or `NAME=PATH` arguments as (name, path); a model is named after its file."""
    out: list[tuple[str, Path]] = []
    for item in items:
        name, sep, rest = item.partition("=")
        if sep and not Path(item).is_file():
            path = Path(rest)
        else:
            name, path = Path(item).stem, Path(item)
        if not NAME.fullmatch(name):
            raise UsageError(
                f"'{name}' cannot name a model in a URL",
                hint="name it with NAME=PATH, NAME of letters, digits, '_', '-' and '.'",
            )
        if any(name == n for n, _ in out):
            raise UsageError(f"two models are named '{name}'", hint="name one with NAME=PATH")
        out.append((name, path))
    return out


def load_models(items: list[str]) -> dict[str, Model]:
    """Open every model with onnxruntime; ServeError for a file that is not one."""
    import onnxruntime as ort

    models = {}
    for name, path in model_paths(items):
        if not path.is_file():
            raise UsageError(f"model file '{path}' does not exist")
        options = ort.SessionOptions()
        # one thread per call: the --workers threads run calls side by side, and an idle
        # thread sleeps instead of spinning on the cores the event loop needs
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as e:  # noqa: BLE001 - onnxruntime's own words say what is wrong
            raise ServeError(f"'{path}' is not an ONNX model onnxruntime can load: {e}") from None
        try:
            signature = Signature.of(session)
        except ValueError as e:
            raise ServeError(f"model '{name}' ('{path}'): {e}") from None
        model = Model(name, path, session, signature)
        model.metadata = orjson.dumps(
            {
                "name": name,
                "versions": [VERSION],
                "platform": PLATFORM,
                "inputs": [t.metadata() for t in signature.inputs],
                "outputs": [t.metadata() for t in signature.outputs],
            }
        )
        models[name] = model
    return models


# -- the application ----------------------------------------------------------------


def _json(doc: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status, headers, media_type="application/json")


Handler = Callable[[Any], Awaitable[Any]]


class _Endpoint:
    """An ASGI endpoint around a handler: it tags the request for the metrics, answers a
    wrong method with 405, and every failure with a JSON error. (Plain ASGI rather than
    Starlette's function endpoints, whose exception plumbing wraps every send.)"""

    def __init__(self, tag: str, method: str, handler: Handler) -> None:
        self.tag = tag
        self.method = method
        self.methods = ("GET", "HEAD") if method == "GET" else (method,)
        self.handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope["dlc.endpoint"] = self.tag
        request = Request(scope, receive)
        if request.method not in self.methods:
            what = f"{request.method} {request.url.path}"
            allow = {"Allow": ", ".join(self.methods)}
            response = _json({"error": f"{what}: use {self.method}"}, 405, allow)
        else:
            try:
                response = await self.handler(request)
            except HTTPError as e:
                # after a 413 the connection closes: what is left of a huge body goes unread
                headers = {"Connection": "close"} if e.status == 413 else None
                response = _json({"error": e.message}, e.status, headers)
            except Exception as e:  # noqa: BLE001 - a bug must not take the server down
                log.exception("internal error on %s %s", request.method, request.url.path)
                response = _json({"error": f"internal error: {type(e).__name__}: {e}"}, 500)
        await response(scope, receive, send)


class KServeApp:
    """The handlers of the KServe v2 REST endpoints, over the models being served."""

    def __init__(self, models: dict[str, Model], options: Options) -> None:
        self.models = models
        self.options = options
        self.metrics = Metrics()
        self.draining = False
        self.openapi = orjson.dumps(openapi_doc(list(models), __version__, options.noop))
        self.access = AccessLog(None)

    def asgi(self, access_log: TextIO | None = None) -> Any:
        """The ASGI application: a Starlette router inside `Observe`. (Not a Starlette
        app: its two exception middlewares cost time on every request, and every
        handler already answers its own errors.)"""

        def route(path: str, tag: str, handler: Handler, method: str = "GET") -> Route:
            return Route(path, _Endpoint(tag, method, handler))  # any method; it checks

        model, version = "/v2/models/{model}", "/v2/models/{model}/versions/{version}"
        routes = [route(model + "/infer", "infer", self.infer, "POST")]  # the busy one first
        if self.options.noop:
            routes.append(route("/v2/noop", "noop", self.noop, "POST"))
        routes += [
            route(version + "/infer", "infer", self.infer, "POST"),
            route("/v2/health/live", "live", self.live),
            route("/v2/health/ready", "ready", self.ready),
            route("/v2", "server_metadata", self.server_metadata),
            route(model, "model_metadata", self.model_metadata),
            route(version, "model_metadata", self.model_metadata),
            route(model + "/ready", "model_ready", self.model_ready),
            route(version + "/ready", "model_ready", self.model_ready),
            route("/metrics", "metrics", self.prometheus),
            route("/openapi.json", "docs", self.openapi_json),
            route("/docs", "docs", self.docs),
        ]

        async def no_route(scope: Any, receive: Any, send: Any) -> None:
            what = f"{scope['method']} {scope['path']}"
            response = _json({"error": f"{what}: no such endpoint (see /docs)"}, 404)
            await response(scope, receive, send)

        self.access = AccessLog(access_log)
        router = Router(routes, redirect_slashes=False, default=no_route, lifespan=self._lifespan)
        return Observe(router, self.metrics, self.access)

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Any) -> AsyncIterator[None]:
        workers = Workers(self.options.workers)
        slots = asyncio.Semaphore(self.options.workers)
        for m in self.models.values():
            m.batcher = Batcher(
                m.session,
                m.signature,
                workers=workers,
                slots=slots,
                max_batch=self.options.max_batch,
                max_delay=self.options.max_delay,
                on_batch=partial(self.metrics.batch_done, m.name),
            )
            m.batcher.start()
        try:
            yield
        finally:
            for m in self.models.values():
                if m.batcher is not None:
                    await m.batcher.stop()
            workers.close()
            self.access.flush()

    def _model(self, request: Any) -> Model:
        name = request.path_params["model"]
        model = self.models.get(name)
        if model is None:
            raise HTTPError(
                404, f"unknown model '{name}'; this server has {', '.join(self.models)}"
            )
        version = request.path_params.get("version")
        if version is not None and version != VERSION:
            raise HTTPError(404, f"model '{name}' has no version '{version}'; it has {VERSION}")
        request.scope["dlc.model"] = name
        return model

    async def _body(self, request: Request) -> bytes:
        """The request body, at most --max-body-mb of it (else 413), unpacked."""
        limit = self.options.max_body
        length = request.headers.get("content-length", "")
        stream = request.stream()
        try:
            if length.isdigit() and int(length) > limit:
                # a client that asked "Expect: 100-continue" waits for the answer; any
                # other is still sending, and reads the answer only once it is done
                if "expect" not in request.headers and int(length) <= DISCARD_BYTES:
                    await _discard(stream, DISCARD_BYTES)
                raise HTTPError(
                    413, f"the body has {int(length):,} bytes, over the limit of {limit:,}"
                )
            chunks, size = [], 0
            async for chunk in stream:
                size += len(chunk)
                if size > limit:
                    await _discard(stream, DISCARD_BYTES - size)
                    raise HTTPError(413, f"the body is over the limit of {limit:,} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise HTTPError(400, "the client disconnected before sending the whole body") from None
        return decode_body(b"".join(chunks), request.headers.get("content-encoding"), limit)

    async def live(self, request: Any) -> Any:
        return _json({"live": True})

    async def ready(self, request: Any) -> Any:
        return _json({"ready": not self.draining}, 503 if self.draining else 200)

    async def server_metadata(self, request: Any) -> Any:
        return _json({"name": "dlc", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def model_metadata(self, request: Any) -> Any:
        return Response(self._model(request).metadata, media_type="application/json")

    async def model_ready(self, request: Any) -> Any:
        return _json({"name": self._model(request).name, "ready": True})

    async def infer(self, request: Any) -> Any:
        model = self._model(request)
        batcher = model.batcher
        assert batcher is not None, "batchers start with the server"
        model.in_flight += 1
        try:
            batcher.begin_receiving()
            try:
                body = await self._body(request)
                header_length = request.headers.get("inference-header-content-length")
                parsed = parse_infer(body, header_length, model.signature)
            finally:
                batcher.end_receiving()
            try:
                results = await batcher.infer(parsed.inputs, parsed.rows)
            except InferenceError as e:
                raise HTTPError(500, str(e)) from None
            content, json_length = encode_response(model.name, parsed, results)
        finally:
            model.in_flight -= 1
        if json_length is None:
            return Response(content, media_type="application/json")
        headers = {"Inference-Header-Content-Length": str(json_length)}
        return Response(content, headers=headers, media_type="application/octet-stream")

    async def noop(self, request: Any) -> Any:
        await self._body(request)
        return Response(b'{"outputs":[]}', media_type="application/json")

    async def prometheus(self, request: Any) -> Any:
        text = self.metrics.render(self.models)
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def openapi_json(self, request: Any) -> Any:
        return Response(self.openapi, media_type="application/json")

    async def docs(self, request: Any) -> Any:
        return HTMLResponse(_docs_page(orjson.loads(self.openapi)))


async def _discard(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop the rest of a refused body, up to `budget` bytes: a connection
    closed with bytes unread resets, and the client would lose the 413."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return


def _docs_page(doc: dict[str, Any]) -> str:
    """Swagger UI over /openapi.json, with a plain list of the endpoints that shows as
    it is when the UI's script cannot be fetched (a machine offline)."""
    rows = "".join(
        f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
        f"<td>{html.escape(op.get('summary', ''))}</td></tr>"
        for path, ops in doc["paths"].items()
        for method, op in ops.items()
    )
    ui = "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5"
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(doc["info"]["title"])}</title>
<link rel="stylesheet" href="{ui}/swagger-ui.css"></head>
<body><div id="swagger-ui"><h1>{html.escape(doc["info"]["title"])}</h1>
<p>The OpenAPI description: <a href="/openapi.json">/openapi.json</a></p>
<table>{rows}</table></div>
<script src="{ui}/swagger-ui-bundle.js"></script>
<script>
if (window.SwaggerUIBundle) SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui"}});
</script></body></html>
"""


# -- the command --------------------------------------------------------------------


def serve_command(args: argparse.Namespace) -> int:
    options = _options(args)
    models = load_models(args.models)
    sock = _listen(args.host, args.port)
    app = KServeApp(models, options)
    _setup_logging()
    for m in models.values():
        sig = m.signature
        ins = ", ".join(t.describe() for t in sig.inputs)
        outs = ", ".join(t.describe() for t in sig.outputs)
        how = (
            f"batches up to {options.max_batch} rows along {sig.batch_dim}"
            if sig.batch_dim
            else "one request per call (no symbolic batch dim)"
        )
        log.info("model '%s' from %s: %s -> %s; %s", m.name, m.path, ins, outs, how)
    host, port = sock.getsockname()[:2]
    url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if not _loopback(host):
        log.warning("listening on %s: anyone who can reach this machine can call the models", host)
    log.info("listening on %s (KServe v2 at /v2, docs at /docs, metrics at /metrics)", url)

    config = uvicorn.Config(
        app.asgi(access_log=sys.stdout),
        lifespan="on",
        access_log=False,  # Observe writes one line per request
        log_config=None,
        timeout_graceful_shutdown=DRAIN_SECONDS,
        server_header=False,
        proxy_headers=False,  # on loopback by default; no proxy's headers to trust
    )
    server = _DrainingServer(config, app)
    server.run(sockets=[sock])
    log.info("stopped")
    return 0


def _options(args: argparse.Namespace) -> Options:
    checks = [
        (args.max_batch >= 1, "--max-batch must be 1 or more"),
        (args.max_delay_ms >= 0, "--max-delay-ms must be 0 or more"),
        (args.workers >= 1, "--workers must be 1 or more"),
        (args.max_body_mb > 0, "--max-body-mb must be more than 0"),
        (0 <= args.port <= 65535, "--port must be from 0 to 65535"),
    ]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)
    return Options(
        max_batch=args.max_batch,
        max_delay=args.max_delay_ms / 1e3,
        workers=args.workers,
        max_body=int(args.max_body_mb * (1 << 20)),
        noop=args.noop_endpoint,
    )


def _listen(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as e:
        raise ServeError(f"cannot listen on '{host}': {e.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as e:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {e.strerror}",
            hint="choose another --port (0 picks a free one)",
        ) from None
    return sock


def _loopback(host: str) -> bool:
    return host in ("::1", "localhost") or host.startswith("127.")


def _setup_logging() -> None:
    """Server messages and uvicorn's on stderr (the access log goes to stdout)."""
    info = logging.StreamHandler(sys.stderr)
    info.setFormatter(logging.Formatter("dlc serve: %(message)s"))
    for name in ("dlc.serve", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [info]
        logger.setLevel(logging.INFO)
        logger.propagate = False


class _DrainingServer(uvicorn.Server):
    """uvicorn's Server with a signal handler that drains and then exits 0 (uvicorn's
    own re-raises the signal after draining, so the process would die of SIGTERM)."""

    def __init__(self, config: uvicorn.Config, app: KServeApp) -> None:
        super().__init__(config)
        self.kserve = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def drain(sig: int, frame: Any) -> None:
            if not self.should_exit:
                log.info("%s: draining the requests in flight", signal.Signals(sig).name)
            self.kserve.draining = True
            self.handle_exit(sig, frame)

        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {s: signal.signal(s, drain) for s in handled}
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, handler)
