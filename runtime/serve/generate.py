"""The generate endpoint of `dlc serve`: decode tokens from a served language model or
encoder-decoder, as `dlc generate` does, after Triton's generate extension.

    POST /v2/models/<name>[/versions/<v>]/generate
    {"prompt": [3, 1, 4], "max_new": 8}                                  greedy
    {"prompt": [3], "strategy": "sample", "temperature": 0.8, "top_k": 5, "top_p": 0.9,
     "seed": 1}
    {"source": [3, 1, 4], "strategy": "beam", "beams": 4, "length_penalty": 1.0,
     "stop": 0}                                                          an encoder-decoder
    -> {"model_name": ..., "model_version": ..., "prompt": [...], "tokens": [...],
        "score": ..., "finished": ..., "strategy": "..."}

`strategy` defaults as the CLI's options do: "sample" when a sampling field is given,
"beam" when `beams` is, else "greedy". Every request goes through runtime/generate's
`from_json` and `validate`, the checks of `dlc generate`, and a refusal is 400 with the
same message. A model that cannot generate (no token input, no [B, T, V] output) answers
400 saying why. A model.onnx served from a run folder decodes with the run's cached
decoder (decoder_cached.onnx, built on the first request) when it has one to keep.
The decoding runs on a thread of its own, beside the batched infer calls.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from starlette.responses import Response

from ..generate.decode import generate
from ..generate.model import CachedStepper, FullStepper, ModelInfo, inspect
from ..generate.request import STRATEGIES, GenerateError, from_json, validate
from .protocol import HTTPError

if TYPE_CHECKING:
    from .app import KServeApp
    from .models import Model

# per served file: what it is (or why it cannot generate) and its cached decoder
_INFO: dict[Path, ModelInfo | GenerateError] = {}
_CACHED: dict[Path, Any] = {}
_LOCK = threading.Lock()


def generate_routes(app: KServeApp, route: Any) -> list[Any]:
    """The generate endpoint's routes, made by app.py's `route`."""

    async def handler(request: Any) -> Any:
        return await generate_endpoint(app, request)

    model, version = "/v2/models/{model}", "/v2/models/{model}/versions/{version}"
    return [
        route(model + "/generate", "generate", handler, "POST"),
        route(version + "/generate", "generate", handler, "POST"),
    ]


async def generate_endpoint(app: KServeApp, request: Any) -> Any:
    model = app._model(request)
    body = await app._body(request)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPError(400, f"the body is not JSON: {e}") from None
    loop = asyncio.get_running_loop()
    try:
        req = from_json(doc)
        info = model_info(model)
        prompt, max_new = validate(info, req)
        stepper = await loop.run_in_executor(None, _stepper, model, info, prompt, req.source)
        result = await loop.run_in_executor(
            None, generate, stepper, req.strategy, max_new, req.stop
        )
    except GenerateError as e:
        raise HTTPError(400, e.message) from None
    out = {"model_name": model.name, "model_version": model.version, "prompt": list(prompt),
           "tokens": result.tokens, "score": result.score, "finished": result.finished,
           "strategy": req.strategy.describe()}  # fmt: skip
    return Response(orjson.dumps(out), media_type="application/json")


def openapi_parts(
    model: dict[str, Any], error: dict[str, Any], body: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The endpoint's OpenAPI paths and schemas, for openapi.py's document."""
    op = {
        "post": {
            "summary": "decode tokens from a language model or encoder-decoder",
            "description": "greedy, sampling (temperature, top_k, top_p, seed) or beam search "
            "(beams, length_penalty), with dlc generate's checks",
            "parameters": [model],
            "requestBody": body("GenerateRequest", "the prompt and the strategy"),
            "responses": {
                "200": body("GenerateResponse", "the new tokens"),
                "400": error | {"description": "a request or model that cannot generate"},
                "404": error | {"description": "no such model or version"},
            },
        }
    }
    tokens = {"type": "array", "items": {"type": "integer", "minimum": 0}}
    number, integer = {"type": "number"}, {"type": "integer"}
    request = {
        "type": "object",
        "properties": {
            "prompt": tokens, "source": tokens, "max_new": integer,
            "strategy": {"enum": list(STRATEGIES)}, "temperature": number, "top_k": integer,
            "top_p": number, "beams": integer, "length_penalty": number, "seed": integer,
            "stop": integer,
        },
    }  # fmt: skip
    response = {
        "type": "object",
        "properties": {
            "model_name": {"type": "string"}, "model_version": {"type": "string"},
            "prompt": tokens, "tokens": tokens, "score": number,
            "finished": {"type": "boolean"}, "strategy": {"type": "string"},
        },
    }  # fmt: skip
    return {"/v2/models/{model}/generate": op}, {
        "GenerateRequest": request,
        "GenerateResponse": response,
    }


def model_info(model: Model) -> ModelInfo:
    """What the served model is, looked at once; a GenerateError when it cannot generate."""
    with _LOCK:
        found = _INFO.get(model.path)
        if found is None:
            import onnx

            try:
                graph = onnx.load(str(model.path), load_external_data=False).graph
                found = inspect(model.session, graph, model.path)
            except GenerateError as e:
                found = GenerateError(f"model '{model.name}' cannot generate: {e.message}")
            _INFO[model.path] = found
    if isinstance(found, GenerateError):
        raise found
    return found


def _stepper(model: Model, info: ModelInfo, prompt: tuple[int, ...], source: Any) -> Any:
    run = model.path.parent
    if model.path.name == "model.onnx" and (run / "spec.yaml").is_file():
        with _LOCK:
            if model.path not in _CACHED:
                from ..generate.cache import cached_session

                _CACHED[model.path] = cached_session(run, info, warn=False)
            cached = _CACHED[model.path]
        if cached is not None:
            return CachedStepper(cached, info, prompt, source)
    return FullStepper(model.session, info, prompt, source)
