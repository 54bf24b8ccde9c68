"""The sample endpoint of `dlc serve`: a served VAE, GAN generator or diffusion model
draws samples, as `dlc sample` does, under the same rules and messages.

    POST /v2/models/<m>/sample   {"n": 16, "seed": 0, "method": "ddim", "steps": 50,
                                  "label": 3}
    200  {"model_name": "<m>", "model_version": "1", "parameters": {"kind": "diffusion",
          "seed": 0}, "outputs": [{"name": "samples", "datatype": "FP32",
          "shape": [16, 2], "data": [...row-major...]}]}

Every field is optional (n 1, seed 0); the answer is a KServe v2 infer response with one
output, so a v2 client reads it as it reads an infer. The model's sampler (runtime/sample/
draw.py) opens on the first request; drawing runs on a worker thread, off the event loop
(a diffusion model's loop is T calls of the denoiser). A bad field, a model with nothing
to sample, an option its kind does not take: 400 with `dlc sample`'s message.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from starlette.responses import Response

from ...compiler.errors import UsageError
from ..sample.draw import Sampler, open_sampler
from .protocol import HTTPError

if TYPE_CHECKING:
    from .app import KServeApp

MAX_SERVED = 4096  # samples per request: a bound on one request's work
FIELDS = {"n": int, "seed": int, "method": str, "steps": int, "label": int}


def parse_sample(body: bytes) -> dict[str, Any]:
    """The request's options, checked: a JSON object of the known fields, each typed."""
    try:
        doc = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError as e:
        raise HTTPError(400, f"the body is not JSON: {e}") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, 'the body must be a JSON object such as {"n": 16, "seed": 0}')
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise HTTPError(400, f"unknown field '{unknown[0]}'; a sample request takes "
                             f"{', '.join(FIELDS)}")  # fmt: skip
    for key, kind in FIELDS.items():
        value = doc.get(key)
        if value is not None and (type(value) is not kind):
            raise HTTPError(400, f"'{key}' must be {'an integer' if kind is int else 'a string'}, "
                                 f"got {orjson.dumps(value).decode()}")  # fmt: skip
    n = doc.get("n", 1)
    if not 1 <= n <= MAX_SERVED:
        raise HTTPError(400, f"'n' must be 1..{MAX_SERVED} per request, got {n}")
    return {"n": n, "seed": doc.get("seed", 0), "method": doc.get("method"),
            "steps": doc.get("steps"), "label": doc.get("label")}  # fmt: skip


def _sampler(app: KServeApp, name: str) -> Sampler:
    cache = app.samplers
    if name not in cache:
        try:
            cache[name] = open_sampler(app.models[name].path)
        except UsageError as e:
            raise HTTPError(400, e.message) from None
    return cache[name]


def sample_routes(app: KServeApp, route: Any) -> list[Any]:
    """The sample endpoint's route, made by app.py's `route` (as generate.py's)."""

    async def handler(request: Any) -> Response:
        return await sample(app, request)

    return [route("/v2/models/{model}/sample", "sample", handler, "POST")]


async def sample(app: KServeApp, request: Any) -> Response:
    model = app._model(request)
    options = parse_sample(await app._body(request))
    sampler = _sampler(app, model.name)
    n, seed = options.pop("n"), options.pop("seed")
    try:
        samples = await asyncio.to_thread(sampler.draw, n, seed, **options)
    except UsageError as e:
        raise HTTPError(400, e.message) from None
    out = np.ascontiguousarray(samples, dtype=np.float32)
    doc = {
        "model_name": model.name,
        "model_version": model.version,
        "parameters": {"kind": sampler.kind, "seed": seed},
        "outputs": [{"name": "samples", "datatype": "FP32", "shape": list(out.shape),
                     "data": out.ravel().tolist()}],
    }  # fmt: skip
    return Response(orjson.dumps(doc), media_type="application/json")


def sample_path(model_param: dict[str, Any], body: Any, errors: dict[str, Any]) -> dict[str, Any]:
    """The endpoint's OpenAPI description (openapi.py's `paths`)."""
    return {
        "post": {
            "summary": "draw samples from a VAE, GAN generator or diffusion model",
            "description": "JSON {n, seed, method (ddpm|ddim), steps, label}, every field "
            "optional; answered as an infer response with one output, 'samples'.",
            "parameters": [model_param],
            "responses": {"200": body("InferResponse", "the samples")} | errors,
        }
    }
