"""`dlc serve`'s sample endpoint: a real server on 127.0.0.1 draws what `dlc sample` draws,
and refuses what it refuses, with its messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, Server, start_server, stop
from dlc.runtime.cli import main
from dlc.runtime.sample.draw import open_sampler


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("sample_models")
    out = {"vae": d / "vae.onnx", "mlp": d / "mlp.onnx"}
    for name, spec in (("vae", "vae_digits"), ("mlp", "digits_mlp")):
        assert main(["compile", str(ROOT / "specs" / f"{spec}.yaml"), "-o", str(out[name])]) == 0
    return out


@pytest.fixture(scope="module")
def server(models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_server([f"{k}={v}" for k, v in models.items()], tmp_path_factory.mktemp("srv"))
    yield s
    stop(s)
    assert "Traceback" not in s.err.read_text()


def _sample(server: Server, model: str, body: object) -> tuple[int, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = server.call("POST", f"/v2/models/{model}/sample", raw)
    return reply.status, reply.json()


def test_sample_equals_dlc_sample(server: Server, models: dict[str, Path]) -> None:
    status, doc = _sample(server, "vae", {"n": 5, "seed": 3})
    assert status == 200, doc
    assert doc["model_name"] == "vae" and doc["parameters"] == {"kind": "vae", "seed": 3}
    (out,) = doc["outputs"]
    assert out["name"] == "samples" and out["datatype"] == "FP32" and out["shape"] == [5, 64]
    expected = open_sampler(models["vae"]).draw(5, 3)
    np.testing.assert_allclose(np.reshape(out["data"], out["shape"]), expected, rtol=1e-6)
    assert _sample(server, "vae", b"")[1]["outputs"][0]["shape"] == [1, 64]  # all defaults


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        ("mlp", {}, "mlp.onnx has nothing to sample: dlc sample draws from a VAE"),
        ("vae", {"method": "ddim"}, "vae.onnx is a vae: --method and --steps are a diffusion"),
        ("vae", {"label": 1}, "vae.onnx is not conditional: it takes no label"),
        ("vae", {"n": 0}, "'n' must be 1..4096 per request, got 0"),
        ("vae", {"n": "3"}, "'n' must be an integer, got \"3\""),
        ("vae", {"n": True}, "'n' must be an integer, got true"),
        (
            "vae",
            {"z": 1},
            "unknown field 'z'; a sample request takes n, seed, method, steps, label",
        ),
        ("vae", [1], "the body must be a JSON object"),
        ("vae", b"{", "the body is not JSON"),
        ("nope", {}, "unknown model 'nope'"),
    ],
)
def test_sample_errors(server: Server, model: str, body: object, message: str) -> None:
    status, doc = _sample(server, model, body)
    assert status == (404 if model == "nope" else 400) and message in doc["error"], doc


def test_sample_is_post_and_documented(server: Server) -> None:
    assert server.call("GET", "/v2/models/vae/sample").status == 405
    paths = server.call("GET", "/openapi.json").json()["paths"]
    assert "post" in paths["/v2/models/{model}/sample"]
