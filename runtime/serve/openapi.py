"""The OpenAPI 3.1 description of the endpoints `dlc serve` answers (/openapi.json), and
the /docs page over it. Written by hand from the routes in app.py and the wire format in
protocol.py: a route added there is described here too."""

from __future__ import annotations

import html
from typing import Any

from .generate import openapi_parts
from .protocol import DTYPES, PLATFORM
from .sample import sample_path


def openapi_doc(models: list[str], version: str, noop: bool = False) -> dict[str, Any]:
    """The OpenAPI 3.1 description of the endpoints `dlc serve` answers."""
    ref = "#/components/schemas/"

    def body(schema: str, text: str) -> dict[str, Any]:
        content = {"application/json": {"schema": {"$ref": ref + schema}}}
        return {"description": text, "content": content}

    error = {"description": "an error", "content": body("Error", "")["content"]}
    model = {"name": "model", "in": "path", "required": True, "schema": {"enum": models}}
    infer_errors = {
        "400": error | {"description": "a malformed request or tensor, named in the message"},
        "404": error | {"description": "no such model or version"},
        "413": error | {"description": "the body is over the size limit"},
        "500": error | {"description": "onnxruntime failed on the request"},
    }

    def get(summary: str, schema: str, params: list[Any] | None = None) -> dict[str, Any]:
        op = {"summary": summary, "responses": {"200": body(schema, "OK")}}
        return {"get": op | ({"parameters": params} if params else {})}

    binary = (
        "JSON tensors, or the binary tensor data extension: the header "
        "Inference-Header-Content-Length gives the length of the JSON part; each input with "
        "a binary_data_size parameter takes that many raw little-endian bytes after it, in "
        "order. Responses carry binary outputs the same way when asked."
    )
    infer = {
        "post": {
            "summary": "run the model on a request's tensors (concurrent requests are batched)",
            "description": binary,
            "parameters": [model],
            "requestBody": body("InferRequest", "the input tensors"),
            "responses": {"200": body("InferResponse", "the output tensors")} | infer_errors,
        }
    }
    paths = {
        "/v2/health/live": get("the server is live", "Live"),
        "/v2/health/ready": get("the server is ready for requests", "Ready"),
        "/v2": get("server metadata", "ServerMetadata"),
        "/v2/models/{model}": get("a model's inputs and outputs", "ModelMetadata", [model]),
        "/v2/models/{model}/ready": get("the model is ready", "ModelReady", [model]),
        "/v2/models/{model}/infer": infer,
        "/v2/models/{model}/sample": sample_path(model, body, infer_errors),
        "/metrics": {"get": {"summary": "Prometheus metrics (text format)", "responses": {}}},
    }
    if noop:
        paths["/v2/noop"] = {"post": {"summary": "read the body, answer at once (benchmarks)"}}
    tensor: dict[str, Any] = {
        "type": "object",
        "required": ["name", "shape", "datatype"],
        "properties": {
            "name": {"type": "string"},
            "shape": {"type": "array", "items": {"type": "integer"}},
            "datatype": {"enum": sorted(DTYPES)},
            "parameters": {"type": "object"},
            "data": {"type": "array", "description": "row-major values, nested or flat"},
        },
    }
    meta = {"type": "array", "items": {"$ref": ref + "TensorMetadata"}}
    schemas = {
        "Tensor": tensor,
        "TensorMetadata": {
            "type": "object",
            "properties": {k: tensor["properties"][k] for k in ("name", "shape", "datatype")},
        },
        "InferRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "id": {"type": "string"},
                "parameters": {"type": "object"},
                "inputs": {"type": "array", "items": {"$ref": ref + "Tensor"}},
                "outputs": {"type": "array", "items": {"type": "object"}},
            },
        },
        "InferResponse": {
            "type": "object",
            "properties": {
                "model_name": {"type": "string"},
                "model_version": {"type": "string"},
                "id": {"type": "string"},
                "outputs": {"type": "array", "items": {"$ref": ref + "Tensor"}},
            },
        },
        "ModelMetadata": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "versions": {"type": "array", "items": {"type": "string"}},
                "platform": {"const": PLATFORM},
                "inputs": meta,
                "outputs": meta,
            },
        },
        "ServerMetadata": {"type": "object", "properties": {"name": {}, "version": {}}},
        "Live": {"type": "object", "properties": {"live": {"type": "boolean"}}},
        "Ready": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
        "ModelReady": {"type": "object", "properties": {"name": {}, "ready": {}}},
        "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
    }
    generate_paths, generate_schemas = openapi_parts(model, error, body)  # generate.py
    paths |= generate_paths
    schemas |= generate_schemas
    return {
        "openapi": "3.1.0",
        "info": {"title": "dlc serve: the KServe v2 inference protocol", "version": version},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def docs_page(doc: dict[str, Any]) -> str:
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
