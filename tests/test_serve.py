"""`dlc serve` as its clients see it: a real server process on a free 127.0.0.1 port,
spoken to over HTTP in the KServe v2 protocol, JSON and binary.

The models: the digits MLP compiled by `dlc compile` (batchable along B), and three
built here with onnx.helper: `fixed` (a fixed batch dim, an FP32 and an INT64 input),
`fail` (a Reshape that onnxruntime refuses for some inputs: the 500 path) and `slow`
(a Loop that keeps the single worker busy for about a second, so requests pile up
behind it and the test knows they are batched, and so SIGTERM meets a request in
flight).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import signal
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h

from conftest import ROOT, Reply, Server, run_dlc, save_onnx, start_server, stop

SLOW_ITERATIONS = 250_000  # about a second of Loop steps


# -- models -------------------------------------------------------------------------


def vi(name: str, kind: int, shape: list | None) -> onnx.ValueInfoProto:
    return h.make_tensor_value_info(name, kind, shape)


def fixed_model(path: Path) -> Path:
    """y = 2a (FP32 [1, 3]) and c = b + 1 (INT64 [1, 3]): no symbolic batch dim."""
    nodes = [h.make_node("Mul", ["a", "two"], ["y"]), h.make_node("Add", ["b", "one"], ["c"])]
    graph = h.make_graph(
        nodes,
        "fixed",
        [vi("a", T.FLOAT, [1, 3]), vi("b", T.INT64, [1, 3])],
        [vi("y", T.FLOAT, [1, 3]), vi("c", T.INT64, [1, 3])],
        [h.make_tensor("two", T.FLOAT, [], [2.0]), h.make_tensor("one", T.INT64, [], [1])],
    )
    return save_onnx(graph, path)


def fail_model(path: Path) -> Path:
    """x [B, N] reshaped to [-1, 3]: onnxruntime fails when B*N is not a multiple of 3."""
    graph = h.make_graph(
        [h.make_node("Reshape", ["x", "shape"], ["y"])],
        "fail",
        [vi("x", T.FLOAT, ["B", "N"])],
        [vi("y", T.FLOAT, ["R", 3])],
        [h.make_tensor("shape", T.INT64, [2], [-1, 3])],
    )
    return save_onnx(graph, path)


def slow_model(path: Path) -> Path:
    """y = x + SLOW_ITERATIONS, one Loop step at a time; x and y are [B, 4]."""
    step = [h.make_node("Identity", ["go"], ["go_on"]), h.make_node("Add", ["y", "one"], ["y1"])]
    body = h.make_graph(
        step,
        "step",
        [vi("i", T.INT64, []), vi("go", T.BOOL, []), vi("y", T.FLOAT, None)],
        [vi("go_on", T.BOOL, []), vi("y1", T.FLOAT, None)],
        [h.make_tensor("one", T.FLOAT, [], [1.0])],
    )
    n = h.make_tensor("n", T.INT64, [], [SLOW_ITERATIONS])
    graph = h.make_graph(
        [h.make_node("Loop", ["n", "go", "x"], ["y"], body=body)],
        "slow",
        [vi("x", T.FLOAT, ["B", 4])],
        [vi("y", T.FLOAT, ["B", 4])],
        [n, h.make_tensor("go", T.BOOL, [], [True])],
    )
    return save_onnx(graph, path)


def string_model(path: Path) -> Path:
    graph = h.make_graph(
        [h.make_node("Identity", ["s"], ["t"])],
        "strings",
        [vi("s", T.STRING, ["B"])],
        [vi("t", T.STRING, ["B"])],
    )
    return save_onnx(graph, path)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("models")
    mlp = d / "digits_mlp.onnx"
    r = run_dlc("compile", str(ROOT / "specs" / "digits_mlp.yaml"), "-o", str(mlp))
    assert r.returncode == 0, r.stderr
    return {
        "mlp": mlp,
        "fixed": fixed_model(d / "fixed.onnx"),
        "fail": fail_model(d / "fail.onnx"),
        "slow": slow_model(d / "slow.onnx"),
    }


@pytest.fixture(scope="module")
def mlp_session(models: dict[str, Path]) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # as the server runs it
    return ort.InferenceSession(str(models["mlp"]), options, providers=["CPUExecutionProvider"])


# -- the server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    named = [f"{name}={path}" for name, path in models.items()]
    args = [
        *named,
        "--workers",
        "1",
        "--max-batch",
        "32",
        "--max-delay-ms",
        "5",
        "--max-body-mb",
        "1",
    ]
    s = start_server(args, tmp_path_factory.mktemp("server"))
    yield s
    stop(s)
    assert s.proc.returncode == 0, s.err.read_text()
    assert "Traceback" not in s.err.read_text()


def tensor(name: str, x: np.ndarray, datatype: str = "FP32", flat: bool = True) -> dict:
    data = x.reshape(-1).tolist() if flat else x.tolist()
    return {"name": name, "shape": list(x.shape), "datatype": datatype, "data": data}


def binary_request(inputs: dict[str, np.ndarray], outputs: list[dict] | None = None,
                   **params: bool) -> tuple[bytes, dict[str, str]]:  # fmt: skip
    """A request in the binary tensor data extension, as Triton's client writes it."""
    items, blobs = [], []
    for name, x in inputs.items():
        raw = x.astype(x.dtype.newbyteorder("<")).tobytes()
        datatype = {"float32": "FP32", "int64": "INT64"}[x.dtype.name]
        items.append({"name": name, "shape": list(x.shape), "datatype": datatype,
                      "parameters": {"binary_data_size": len(raw)}})  # fmt: skip
        blobs.append(raw)
    doc: dict = {"inputs": items}
    if outputs is not None:
        doc["outputs"] = outputs
    if params:
        doc["parameters"] = params
    head = json.dumps(doc).encode()
    return head + b"".join(blobs), {"Inference-Header-Content-Length": str(len(head))}


def binary_outputs(reply: Reply) -> dict[str, np.ndarray]:
    """Every output of a response, binary ones read from after the JSON header."""
    n = int(reply.headers.get("inference-header-content-length", len(reply.body)))
    head = json.loads(reply.body[:n])
    out, at = {}, n
    for o in head["outputs"]:
        dtype = {"FP32": "<f4", "INT64": "<i8"}[o["datatype"]]
        if "data" in o:
            out[o["name"]] = np.asarray(o["data"], dtype).reshape(o["shape"])
        else:
            size = o["parameters"]["binary_data_size"]
            out[o["name"]] = np.frombuffer(reply.body[at : at + size], dtype).reshape(o["shape"])
            at += size
    assert at == len(reply.body)
    return out


def digits(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 16, (n, 64)).astype(np.float32)


# -- endpoints ----------------------------------------------------------------------


def test_health_and_metadata(server: Server) -> None:
    assert server.call("GET", "/v2/health/live").json() == {"live": True}
    assert server.call("GET", "/v2/health/ready").json() == {"ready": True}
    meta = server.call("GET", "/v2").json()
    assert meta["name"] == "dlc" and "binary_tensor_data" in meta["extensions"]

    mlp = server.call("GET", "/v2/models/mlp").json()
    # dlc's own model metadata, under KServe's `parameters` (tests/test_export.py)
    parameters = mlp.pop("parameters")
    assert parameters["class_names"] == [str(i) for i in range(10)]
    assert mlp == {
        "name": "mlp",
        "versions": ["1"],
        "platform": "onnx_onnxv1",
        "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 64]}],
        "outputs": [
            {"name": "logits", "datatype": "FP32", "shape": [-1, 10]},
            {"name": "probs", "datatype": "FP32", "shape": [-1, 10]},
        ],
    }
    versioned = server.call("GET", "/v2/models/mlp/versions/1").json()
    assert versioned == {**mlp, "parameters": parameters}
    fixed = server.call("GET", "/v2/models/fixed").json()
    assert fixed["inputs"][1] == {"name": "b", "datatype": "INT64", "shape": [1, 3]}
    assert server.call("GET", "/v2/models/mlp/ready").json() == {"name": "mlp", "ready": True}
    assert server.call("GET", "/v2/models/mlp/versions/1/ready").status == 200


def test_not_found_and_wrong_method(server: Server) -> None:
    r = server.call("GET", "/v2/models/nope")
    assert r.status == 404
    assert r.json()["error"] == "unknown model 'nope'; this server has mlp, fixed, fail, slow"
    r = server.infer("nope", {"inputs": []})
    assert r.status == 404 and "unknown model 'nope'" in r.json()["error"]
    r = server.call("GET", "/v2/models/mlp/versions/2")
    assert r.status == 404
    assert r.json()["error"] == "model 'mlp' has no version '2'; it has 1"
    r = server.call("GET", "/v2/nothing/here")
    assert r.status == 404
    assert r.json()["error"] == "GET /v2/nothing/here: no such endpoint (see /docs)"
    r = server.call("GET", "/v2/models/mlp/infer")
    assert r.status == 405 and r.json()["error"] == "GET /v2/models/mlp/infer: use POST"
    assert server.call("POST", "/v2/noop", b"{}").status == 404  # only with --noop-endpoint


def test_docs_and_openapi(server: Server) -> None:
    page = server.call("GET", "/docs")
    assert page.status == 200 and page.headers["content-type"].startswith("text/html")
    assert b"/openapi.json" in page.body and b"/v2/models/{model}/infer" in page.body
    doc = server.call("GET", "/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    infer = doc["paths"]["/v2/models/{model}/infer"]["post"]
    assert infer["parameters"][0]["schema"]["enum"] == ["mlp", "fixed", "fail", "slow"]
    assert set(infer["responses"]) == {"200", "400", "404", "413", "500"}


# -- infer --------------------------------------------------------------------------


def test_infer_json_flat_and_nested(server: Server, mlp_session: ort.InferenceSession) -> None:
    x = digits(3)
    want = dict(zip(["logits", "probs"], mlp_session.run(None, {"x": x}), strict=True))
    for flat in (True, False):
        r = server.infer("mlp", {"id": "req-7", "inputs": [tensor("x", x, flat=flat)]})
        assert r.status == 200, r.body
        assert r.headers["content-type"] == "application/json"
        doc = r.json()
        assert doc["model_name"] == "mlp" and doc["model_version"] == "1" and doc["id"] == "req-7"
        assert [o["name"] for o in doc["outputs"]] == ["logits", "probs"]
        for o in doc["outputs"]:
            assert o["datatype"] == "FP32" and o["shape"] == [3, 10]
            np.testing.assert_array_equal(np.float32(o["data"]).reshape(3, 10), want[o["name"]])
    # only the outputs asked for, in the order asked
    r = server.infer("mlp", {"inputs": [tensor("x", x)], "outputs": [{"name": "probs"}]})
    assert [o["name"] for o in r.json()["outputs"]] == ["probs"]
    assert "id" not in r.json()


def test_infer_binary(server: Server, mlp_session: ort.InferenceSession) -> None:
    x = digits(2, seed=1)
    logits, probs = mlp_session.run(None, {"x": x})
    # binary in, one output binary and one JSON
    outputs = [{"name": "probs", "parameters": {"binary_data": True}}, {"name": "logits"}]
    body, headers = binary_request({"x": x}, outputs)
    r = server.call("POST", "/v2/models/mlp/infer", body, headers)
    assert r.status == 200, r.body
    assert r.headers["content-type"] == "application/octet-stream"
    out = binary_outputs(r)
    np.testing.assert_array_equal(out["probs"], probs)
    np.testing.assert_array_equal(out["logits"], logits)
    # every output binary at the request's word; JSON input
    doc = {"inputs": [tensor("x", x)], "parameters": {"binary_data_output": True}}
    r = server.infer("mlp", doc)
    out = binary_outputs(r)
    np.testing.assert_array_equal(out["logits"], logits)
    assert "data" not in json.loads(r.body[: int(r.headers["inference-header-content-length"])])


def test_infer_int64_on_a_fixed_batch_model(server: Server) -> None:
    a = np.array([[1.5, -2.0, 3.0]], np.float32)
    b = np.array([[1, -2, 2**40]], np.int64)
    r = server.infer("fixed", {"inputs": [tensor("a", a), tensor("b", b, "INT64")]})
    assert r.status == 200, r.body
    out = {o["name"]: o for o in r.json()["outputs"]}
    assert out["y"]["datatype"] == "FP32" and out["y"]["data"] == [3.0, -4.0, 6.0]
    assert out["c"]["datatype"] == "INT64" and out["c"]["data"] == [2, -1, 2**40 + 1]
    body, headers = binary_request({"a": a, "b": b})  # binary in, JSON out
    r = server.call("POST", "/v2/models/fixed/infer", body, headers)
    assert binary_outputs(r)["c"].tolist() == [[2, -1, 2**40 + 1]]


def test_gzip_request_body(server: Server, mlp_session: ort.InferenceSession) -> None:
    x = digits(1, seed=2)
    body = gzip.compress(json.dumps({"inputs": [tensor("x", x)]}).encode())
    r = server.call("POST", "/v2/models/mlp/infer", body, {"Content-Encoding": "gzip"})
    assert r.status == 200, r.body
    got = np.float32(r.json()["outputs"][0]["data"]).reshape(1, 10)
    np.testing.assert_array_equal(got, mlp_session.run(None, {"x": x})[0])
    r = server.call("POST", "/v2/models/mlp/infer", body, {"Content-Encoding": "br"})
    assert r.status == 415
    assert r.json()["error"] == "Content-Encoding 'br' is not supported; use gzip or deflate"


# -- bad requests -------------------------------------------------------------------

X = {"name": "x", "shape": [1, 64], "datatype": "FP32", "data": [0.5] * 64}
MLP_TAKES = "the model takes x: FP32 [B, 64]"

BAD = [
    ("not json", b'{"inputs": [', 400, "malformed JSON: "),
    ("not an object", b"[1, 2]", 400, "the request must be a JSON object with an 'inputs' list"),
    ("no inputs", {"outputs": []}, 400, "the request must be a JSON object with an 'inputs' list"),
    ("missing input", {"inputs": []}, 400, "missing input x: FP32 [B, 64]"),
    ("extra input", {"inputs": [X, {**X, "name": "z"}]}, 400, f"unknown input 'z'; {MLP_TAKES}"),
    ("twice", {"inputs": [X, X]}, 400, "input 'x' is given twice"),
    ("datatype", {"inputs": [{**X, "datatype": "FP64"}]}, 400,
     "input 'x' has datatype FP64; the model expects FP32"),
    ("rank", {"inputs": [{**X, "shape": [64]}]}, 400,
     "input 'x' has shape [64] of rank 1; the model expects rank 2: [-1, 64]"),
    ("fixed dim", {"inputs": [{**X, "shape": [1, 63], "data": [0] * 63}]}, 400,
     "input 'x' has shape [1, 63]; the model expects [-1, 64] (axis 1 must be 64)"),
    ("bad shape", {"inputs": [{**X, "shape": [1, -64]}]}, 400,
     "input 'x' needs a 'shape': a list of sizes, e.g. [-1, 64]"),
    ("length", {"inputs": [{**X, "data": [0.5] * 63}]}, 400,
     "input 'x' has 63 values in 'data'; shape [1, 64] needs 64"),
    ("ragged", {"inputs": [{**X, "shape": [2, 64], "data": [[0] * 64, [0] * 63]}]}, 400,
     "input 'x': 'data' is not a rectangular array of numbers"),
    ("strings", {"inputs": [{**X, "data": ["1"] * 64}]}, 400,
     "input 'x': datatype FP32 needs numbers; 'data' holds strings"),
    ("no data", {"inputs": [{k: v for k, v in X.items() if k != "data"}]}, 400,
     "input 'x' has neither 'data' nor a binary_data_size parameter"),
    ("id", {"id": 7, "inputs": [X]}, 400, "'id' must be a string"),
    ("output", {"inputs": [X], "outputs": [{"name": "nope"}]}, 400,
     "unknown output 'nope'; the model gives logits: FP32 [B, 10], probs: FP32 [B, 10]"),
    ("two at once", {"inputs": [{**X, "datatype": "INT8"}, {**X, "name": "z"}]}, 400,
     f"input 'x' has datatype INT8; the model expects FP32; unknown input 'z'; {MLP_TAKES}"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "status", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_request(server: Server, case: str, body: object, status: int, message: str) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = server.call("POST", "/v2/models/mlp/infer", raw)
    assert r.status == status, r.body
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error.startswith(message) if case == "not json" else error == message


def test_bad_requests_for_the_fixed_model(server: Server) -> None:
    a = {"name": "a", "shape": [2, 3], "datatype": "FP32", "data": [0] * 6}
    b = {"name": "b", "shape": [1, 3], "datatype": "INT64", "data": [1.5, 2, 3]}
    r = server.infer("fixed", {"inputs": [a, b]})
    assert r.status == 400
    assert r.json()["error"] == (
        "input 'a' has shape [2, 3]; the model expects [1, 3] (axis 0 must be 1); "
        "input 'b': datatype INT64 needs integers; 'data' holds float64 values"
    )
    r = server.infer("fixed", {"inputs": [{**a, "shape": [1, 3], "data": [0] * 3}]})
    assert r.json()["error"] == "missing input b: INT64 [1, 3]"
    big = {**b, "data": [2**63 - 1, 0, 0], "datatype": "INT64"}
    assert (
        server.infer("fixed", {"inputs": [{**a, "shape": [1, 3], "data": [0] * 3}, big]}).status
        == 200
    )


def test_bad_binary_requests(server: Server) -> None:
    x = digits(1)
    body, headers = binary_request({"x": x})
    cases = [
        (body[:-10], headers, "input 'x': binary_data_size 256 reaches past the 246 bytes of "
         "binary data after the JSON header"),
        (body + b"extra", headers, "261 bytes of binary tensor data follow the JSON header, "
         "but the inputs' binary_data_size parameters add up to 256"),
        (body, {"Inference-Header-Content-Length": "abc"}, "Inference-Header-Content-Length is "
         "'abc'; it must be the length of the JSON header, a whole number from 0 to the body's "
         f"{len(body)} bytes"),
    ]  # fmt: skip
    for raw, hdrs, message in cases:
        r = server.call("POST", "/v2/models/mlp/infer", raw, hdrs)
        assert r.status == 400 and r.json()["error"] == message, r.body
    head = json.dumps({"inputs": [{**X, "parameters": {"binary_data_size": 10}}]}).encode()
    raw = head + bytes(10)
    r = server.call(
        "POST", "/v2/models/mlp/infer", raw, {"Inference-Header-Content-Length": str(len(head))}
    )
    assert r.json()["error"] == (
        "input 'x' has 10 bytes of binary data; shape [1, 64] of FP32 needs 256"
    )


def test_body_over_the_limit(server: Server) -> None:
    body = json.dumps({"inputs": [{**X, "data": [0.5] * 300_000}]}).encode()  # 1.5 MB > 1 MiB
    r = server.call("POST", "/v2/models/mlp/infer", body)
    assert r.status == 413
    assert r.json()["error"] == f"the body has {len(body):,} bytes, over the limit of 1,048,576"
    # a gzip bomb stops at the limit too
    bomb = gzip.compress(b" " * (3 << 20))
    r = server.call("POST", "/v2/models/mlp/infer", bomb, {"Content-Encoding": "gzip"})
    assert r.status == 413
    assert r.json()["error"] == "the body unpacks to more than the limit of 1,048,576 bytes"
    assert server.call("GET", "/v2/health/live").status == 200


def test_onnxruntime_failure_is_a_500_and_the_server_goes_on(server: Server) -> None:
    bad = {"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    r = server.infer("fail", {"inputs": [bad]})
    assert r.status == 500
    assert r.json()["error"].startswith("onnxruntime failed: ")
    assert "Reshape" in r.json()["error"]
    good = {**bad, "shape": [1, 3], "data": [1, 2, 3]}
    r = server.infer("fail", {"inputs": [good]})
    assert r.status == 200 and r.json()["outputs"][0]["data"] == [1, 2, 3]
    assert server.infer("mlp", {"inputs": [X]}).status == 200


def test_garbage_on_the_wire(server: Server) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    assert server.call("GET", "/v2/health/ready").status == 200


# -- batching -----------------------------------------------------------------------


def _wait_until_running(server: Server, model: str) -> None:
    """Until onnxruntime runs a request for `model`: it holds the only worker."""
    deadline = time.time() + 20
    while time.time() < deadline:
        if server.metrics().get(f'dlc_inference_running{{model="{model}"}}', 0) >= 1:
            return
        time.sleep(0.01)
    raise AssertionError(f"no request for {model} started")


def test_concurrent_requests_are_batched_and_equal_unbatched(
    server: Server, mlp_session: ort.InferenceSession
) -> None:
    before = server.metrics()
    xs = [digits(1, seed=100 + i) for i in range(16)]
    with ThreadPoolExecutor(17) as pool:
        slow = pool.submit(
            server.infer, "slow", {"inputs": [tensor("x", np.zeros((1, 4), np.float32))]}
        )
        _wait_until_running(server, "slow")  # the worker is busy: the MLP requests queue
        replies = list(pool.map(lambda x: server.infer("mlp", {"inputs": [tensor("x", x)]}), xs))
        assert slow.result().json()["outputs"][0]["data"] == [float(SLOW_ITERATIONS)] * 4
    for x, r in zip(xs, replies, strict=True):
        assert r.status == 200, r.body
        alone = mlp_session.run(None, {"x": x})  # unbatched, in this process
        for o, want in zip(r.json()["outputs"], alone, strict=True):
            np.testing.assert_array_equal(np.float32(o["data"]).reshape(1, 10), want)
    after = server.metrics()

    def count(name: str, labels: str) -> float:
        return after.get(f"{name}{{{labels}}}", 0) - before.get(f"{name}{{{labels}}}", 0)

    calls = count("dlc_batch_size_count", 'model="mlp"')
    single = count("dlc_batch_size_bucket", 'model="mlp",le="1"')
    rows = count("dlc_batch_size_sum", 'model="mlp"')
    assert rows == 16 and calls - single >= 1, (calls, single)  # some call had 2 rows or more
    assert calls < 16


def test_a_fixed_batch_model_runs_one_request_per_call(server: Server) -> None:
    before = server.metrics()
    a = np.ones((1, 3), np.float32)
    doc = {"inputs": [tensor("a", a), tensor("b", np.ones((1, 3), np.int64), "INT64")]}
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: server.infer("fixed", doc), range(8)))
    assert all(r.status == 200 for r in replies)
    after = server.metrics()
    key = 'dlc_batch_size_bucket{model="fixed",le="1"}'
    total = 'dlc_batch_size_count{model="fixed"}'
    assert after[total] - before.get(total, 0) == 8
    assert after[key] - before.get(key, 0) == 8


# -- operations ---------------------------------------------------------------------


def test_metrics(server: Server) -> None:
    server.infer("mlp", {"inputs": [X]})
    server.infer("mlp", {"inputs": []})
    server.infer("evil-name", {"inputs": []})
    r = server.call("GET", "/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.body.decode()
    kinds = {
        "dlc_requests_total": "counter",
        "dlc_request_duration_seconds": "histogram",
        "dlc_batch_size": "histogram",
        "dlc_inference_duration_seconds": "histogram",
        "dlc_queue_depth": "gauge",
        "dlc_requests_in_flight": "gauge",
        "dlc_inference_running": "gauge",
    }
    for name, kind in kinds.items():
        assert f"# TYPE {name} {kind}" in text and f"# HELP {name} " in text
    m = server.metrics()
    assert m['dlc_requests_total{model="mlp",endpoint="infer",code="200"}'] >= 1
    assert m['dlc_requests_total{model="mlp",endpoint="infer",code="400"}'] >= 1
    assert m['dlc_requests_total{model="",endpoint="infer",code="404"}'] >= 1
    assert "evil-name" not in text  # an unknown name never becomes a label
    buckets = [
        v
        for k, v in m.items()
        if k.startswith('dlc_request_duration_seconds_bucket{model="mlp",endpoint="infer"')
    ]
    assert (
        buckets == sorted(buckets)
        and buckets[-1] == m['dlc_request_duration_seconds_count{model="mlp",endpoint="infer"}']
    )
    assert m['dlc_queue_depth{model="mlp"}'] == 0


def test_one_access_log_line_per_request(server: Server) -> None:
    tag = uuid.uuid4().hex
    statuses = [server.call("GET", f"/v2/health/live?probe={tag}").status for _ in range(3)]
    statuses.append(server.call("GET", f"/v2/models/nope?probe={tag}").status)
    assert statuses == [200, 200, 200, 404]
    deadline = time.time() + 5
    while time.time() < deadline:
        lines = [line for line in server.out.read_text().splitlines() if tag in line]
        if len(lines) == 4:
            break
        time.sleep(0.05)
    assert len(lines) == 4, lines
    assert re.search(
        rf'127\.0\.0\.1:\d+ "GET /v2/health/live\?probe={tag} HTTP/1\.1" 200 [\d.]+ms$', lines[0]
    )
    assert f'"GET /v2/models/nope?probe={tag} HTTP/1.1" 404 ' in lines[3]


def test_sigterm_drains_the_request_in_flight(models: dict[str, Path], tmp_path: Path) -> None:
    s = start_server([f"slow={models['slow']}", "--noop-endpoint"], tmp_path)
    try:
        assert s.call("POST", "/v2/noop", b"{}").status == 200  # the hidden benchmark endpoint
        with ThreadPoolExecutor(1) as pool:
            doc = {"inputs": [tensor("x", np.ones((2, 4), np.float32))]}
            reply = pool.submit(s.infer, "slow", doc)
            _wait_until_running(s, "slow")
            s.proc.send_signal(signal.SIGTERM)
            r = reply.result(timeout=60)
        assert r.status == 200
        assert r.json()["outputs"][0]["data"] == [SLOW_ITERATIONS + 1.0] * 8
        assert s.proc.wait(timeout=30) == 0
        err = s.err.read_text()
        assert "SIGTERM: draining the requests in flight" in err and "Traceback" not in err
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.port), timeout=5)
    finally:
        stop(s)


# -- start-up -----------------------------------------------------------------------


def test_start_up_errors(models: dict[str, Path], tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_text("not a model")
    strings = string_model(tmp_path / "strings.onnx")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = str(taken.getsockname()[1])
    none = tmp_path / "none.onnx"
    cases = [
        ([str(junk)], f"error: '{junk}' is not an ONNX model onnxruntime can load: "),
        ([str(none)], f"error: model file '{none}' does not exist"),
        ([f"a={models['mlp']}", f"a={models['fixed']}"], "error: two models are named 'a'"),
        ([f"a b={models['mlp']}"], "error: 'a b' cannot name a model in a URL"),
        ([str(strings)], "error: model 'strings' ('" + str(strings) + "'): input 's' is "
         "tensor(string); dlc serve carries numeric and bool tensors"),
        ([str(models["mlp"]), "--port", port], f"error: cannot listen on 127.0.0.1:{port}: "
         "Address already in use"),
        ([str(models["mlp"]), "--max-batch", "0"], "error: --max-batch must be 1 or more"),
    ]  # fmt: skip
    try:
        for args, message in cases:
            r = run_dlc("serve", *args)
            assert r.returncode == 1, (args, r.stderr)
            assert message in r.stderr, r.stderr
            assert "Traceback" not in r.stderr
    finally:
        taken.close()


# -- the batcher alone --------------------------------------------------------------


def test_batcher_waits_only_for_requests_on_their_way(mlp_session: ort.InferenceSession) -> None:
    """A batch closes at once when nothing else is arriving, waits (at most max_delay)
    for a request still being received, and never holds more than max_batch rows."""
    from dlc.runtime.serve.batching import Batcher, Workers
    from dlc.runtime.serve.protocol import Signature

    calls: list[int] = []

    async def scenario() -> list[list[int]]:
        workers = Workers(1)
        batcher = Batcher(
            mlp_session,
            Signature.of(mlp_session),
            workers=workers,
            slots=asyncio.Semaphore(1),
            max_batch=4,
            max_delay=0.5,
            on_batch=lambda rows, seconds: calls.append(rows),
        )
        batcher.start()
        seen = []
        try:
            await batcher.infer({"x": digits(1)}, 1)  # alone: no wait
            seen.append(list(calls))
            batcher.begin_receiving()  # a second request is on its way
            first = asyncio.ensure_future(batcher.infer({"x": digits(1, 1)}, 1))
            await asyncio.sleep(0.05)
            assert not first.done()  # held for the one being received
            second = asyncio.ensure_future(batcher.infer({"x": digits(2, 2)}, 2))
            batcher.end_receiving()
            await asyncio.gather(first, second)
            seen.append(list(calls))
            batcher.begin_receiving()  # never arrives: the batch goes after max_delay
            start = time.perf_counter()
            await batcher.infer({"x": digits(1, 3)}, 1)
            waited = time.perf_counter() - start
            batcher.end_receiving()
            assert 0.4 < waited < 5, waited
            many = [batcher.infer({"x": digits(3, i)}, 3) for i in range(3)]  # 9 rows, max 4
            outs = await asyncio.gather(*many)
            assert [o["logits"].shape for o in outs] == [(3, 10)] * 3
            seen.append(list(calls))
        finally:
            await batcher.stop()
            workers.close()
        return seen

    alone, together, split = asyncio.run(scenario())
    assert alone == [1]
    assert together == [1, 3]  # 1 + 2 rows in one call
    assert split[2] == 1 and split[3:] == [3, 3, 3]  # 3 + 3 > 4: one request per call
