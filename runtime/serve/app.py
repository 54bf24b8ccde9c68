"""The ASGI application of `dlc serve`: the KServe v2 REST endpoints over the models.

A Starlette router inside `observe.Observe` (the metrics and the access log of every
request). Each endpoint turns `HTTPError` into a status and `{"error": ...}`; anything
else is logged and answered 500, and the server goes on. Request bodies are read
against `--max-body-mb` (413 past it) and unpacked from their Content-Encoding; the
wire format (protocol.py) is checked against the model's signature before anything
runs; then the model's `Batcher` (batching.py) runs onnxruntime on a thread pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TextIO

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route, Router

from ... import __version__
from ..sample.draw import Sampler
from .batching import Batcher, InferenceError, Workers
from .generate import generate_routes
from .models import Model
from .observe import AccessLog, Metrics, Observe
from .openapi import docs_page, openapi_doc
from .protocol import HTTPError, encode_response, parse_infer
from .sample import sample_routes

log = logging.getLogger("dlc.serve")

DISCARD_BYTES = 64 << 20  # how much of a refused body is read and dropped before closing


@dataclass(frozen=True)
class ServeOptions:
    max_batch: int = 64
    max_delay: float = 0.002  # seconds
    workers: int = 1
    max_body: int = 64 << 20  # bytes
    noop: bool = False  # the benchmark's no-op endpoint


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

    def __init__(self, models: dict[str, Model], options: ServeOptions) -> None:
        self.models = models
        self.options = options
        self.metrics = Metrics()
        self.draining = False
        self.openapi = orjson.dumps(openapi_doc(list(models), __version__, options.noop))
        self.access = AccessLog(None)
        self.samplers: dict[str, Sampler] = {}  # opened by the first sample request

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
            *generate_routes(self, route),  # generate.py: POST .../generate (issue 13)
            *sample_routes(self, route),  # sample.py: POST .../sample
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
                max_batch=min(self.options.max_batch, m.max_batch or self.options.max_batch),
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
        if version is not None and version != model.version:
            raise HTTPError(
                404, f"model '{name}' has no version '{version}'; it has {model.version}"
            )
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
            content, json_length = encode_response(model.name, parsed, results, model.version)
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
        return HTMLResponse(docs_page(orjson.loads(self.openapi)))


async def _discard(stream: AsyncIterator[bytes], budget: int) -> None:
    """Read and drop the rest of a refused body, up to `budget` bytes: a connection
    closed with bytes unread resets, and the client would lose the 413."""
    async for chunk in stream:
        budget -= len(chunk)
        if budget < 0:
            return


def decode_body(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo a request's Content-Encoding (gzip or deflate, as Triton's client sends),
    never unpacking past `limit` bytes."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return body
    kind = encoding.strip().lower()
    if kind not in ("gzip", "deflate"):
        raise HTTPError(415, f"Content-Encoding '{encoding}' is not supported; use gzip or deflate")
    wbits = 16 + zlib.MAX_WBITS if kind == "gzip" else zlib.MAX_WBITS
    unpack = zlib.decompressobj(wbits)
    try:
        out = unpack.decompress(body, limit + 1)
    except zlib.error as e:
        raise HTTPError(400, f"the body is not valid {kind} data: {e}") from None
    if len(out) > limit:
        raise HTTPError(413, f"the body unpacks to more than the limit of {limit:,} bytes")
    return out
