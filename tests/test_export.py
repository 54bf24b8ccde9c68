"""`dlc export --triton DIR`: the Triton model repository, parsed with Triton's own
ModelConfig protobuf (tests/triton_proto: Triton's model_config.proto and the module protoc
generates from it, vendored, so the check always runs) and checked against the ONNX file
beside it; the KServe InferenceService; `dlc serve DIR` on the same repository, with dlc's
model metadata (runtime/metadata.py) at /v2/models/<m>, and Triton's HTTP client as a real
client when tritonclient is installed.

tritonclient is not a dependency of dlc: `pip install "tritonclient[http]"` to run the
opt-in client test (it pins ml-dtypes <= 0.5.4, which onnx 1.23 accepts).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import onnx
import pytest
import yaml

from conftest import Server, run_dlc, start_server, stop

SPECS = ("digits_mlp", "lenet_digits", "transformer_lm")
DIGITS = [str(i) for i in range(10)]
ONNX_TRITON = {onnx.TensorProto.FLOAT: "TYPE_FP32", onnx.TensorProto.INT64: "TYPE_INT64",
               onnx.TensorProto.BOOL: "TYPE_BOOL"}  # fmt: skip


TRITON_PB2 = Path(__file__).parent / "triton_proto" / "model_config_pb2.py"


@pytest.fixture(scope="module")
def model_config() -> ModuleType:
    """Triton's model_config_pb2 (tests/triton_proto), loaded from its file: one module per
    process, as its descriptors go into protobuf's default pool once."""
    name = "triton_model_config_pb2"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.util.spec_from_file_location(name, TRITON_PB2)
    assert loader is not None and loader.loader is not None
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    sys.modules[name] = module
    return module


def parse_config(path: Path, model_config: ModuleType) -> Any:
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config.ModelConfig())


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    for name in SPECS:
        r = run_dlc("export", f"specs/{name}.yaml", "--triton", str(root))
        assert r.returncode == 0, r.stderr
        assert f"wrote {root / name / 'config.pbtxt'}" in r.stdout
    return root


def onnx_signature(path: Path) -> tuple[list[Any], list[Any], dict[str, str]]:
    model = onnx.load(str(path))
    inits = {i.name for i in model.graph.initializer}
    ins = [v for v in model.graph.input if v.name not in inits]
    return ins, list(model.graph.output), {p.key: p.value for p in model.metadata_props}


def dims_of(value: Any) -> list[int | str]:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in value.type.tensor_type.shape.dim]  # fmt: skip


def check_against_onnx(config: Any, model_dir: Path) -> None:
    """Every input and output of the ONNX file, in order, with its datatype and its dims
    (the batch dropped when max_batch_size > 0, -1 for a symbolic dim)."""
    ins, outs, _ = onnx_signature(model_dir / "1" / "model.onnx")
    batched = config.max_batch_size > 0
    for declared, values in ((config.input, ins), (config.output, outs)):
        assert [t.name for t in declared] == [v.name for v in values]
        for t, v in zip(declared, values, strict=True):
            want_type = ONNX_TRITON[v.type.tensor_type.elem_type]
            assert config.DESCRIPTOR.file.enum_types_by_name["DataType"].values_by_number[
                t.data_type
            ].name == want_type
            shape = dims_of(v)
            if batched:
                assert isinstance(shape[0], str) and shape[0]
                shape = shape[1:]
            want = [d if isinstance(d, int) else -1 for d in shape]
            if not want:  # a batched [B] tensor: dims [1], reshaped to a scalar
                assert list(t.dims) == [1] and t.HasField("reshape") and not t.reshape.shape
            else:
                assert list(t.dims) == want


@pytest.mark.parametrize("name", SPECS)
def test_config_parses_with_tritons_proto(
    repo: Path, name: str, model_config: ModuleType
) -> None:
    config = parse_config(repo / name / "config.pbtxt", model_config)
    assert config.name == name and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 64
    check_against_onnx(config, repo / name)
    batching = config.dynamic_batching
    assert config.WhichOneof("scheduling_choice") == "dynamic_batching"
    assert list(batching.preferred_batch_size) == [8, 16, 32, 64]
    assert batching.max_queue_delay_microseconds > 0
    kinds = model_config.ModelInstanceGroup.Kind
    assert [(g.kind, g.count) for g in config.instance_group] == [(kinds.Value("KIND_CPU"), 1)]
    labelled = {o.name for o in config.output if o.label_filename}
    if name == "transformer_lm":  # builtin:copy names no classes
        assert not labelled and not (repo / name / "labels.txt").exists()
    else:
        assert labelled == {"logits", "probs"}
        assert {o.label_filename for o in config.output} == {"labels.txt"}
        assert (repo / name / "labels.txt").read_text().splitlines() == DIGITS


def test_symbolic_dims_are_minus_one(repo: Path, model_config: ModuleType) -> None:
    config = parse_config(repo / "transformer_lm" / "config.pbtxt", model_config)
    assert [list(t.dims) for t in config.input] == [[-1]]  # [B, T] -> T
    assert [list(t.dims) for t in config.output] == [[-1, 16], [-1, 16]]


@pytest.mark.parametrize(
    "inputs, model, batch, dims_in, dims_out",
    [
        ("{x: [2, 3]}", "[dense(4)]", 0, [[2, 3]], [[2, 4]]),  # no batch dim: full dims
        ("{x: {shape: [B], dtype: int64}}", "['embedding(10, 4)']", 64, [[1]], [[4]]),
        ("{x: [B, T, 3]}", "[dense(4)]", 64, [[-1, 3]], [[-1, 4]]),
        ("{x: [N, 3]}", "[dense(4)]", 64, [[3]], [[4]]),  # any name leads: the batch
    ],
)
def test_batch_and_symbolic_dims(
    tmp_path: Path, model_config: ModuleType, inputs: str, model: str, batch: int,
    dims_in: list, dims_out: list,
) -> None:  # fmt: skip
    spec = tmp_path / "m.yaml"
    spec.write_text(f"dlc: 1\nname: m\ninputs: {inputs}\nmodel: {model}\n")
    r = run_dlc("export", str(spec), "--triton", str(tmp_path / "repo"), "--gpu")
    assert r.returncode == 0, r.stderr
    config = parse_config(tmp_path / "repo" / "m" / "config.pbtxt", model_config)
    assert config.max_batch_size == batch
    assert [list(t.dims) for t in config.input] == dims_in
    assert [list(t.dims) for t in config.output] == dims_out
    assert config.HasField("dynamic_batching") == (batch > 0)
    assert config.instance_group[0].kind == model_config.ModelInstanceGroup.Kind.Value("KIND_GPU")
    check_against_onnx(config, tmp_path / "repo" / "m")
    assert not (tmp_path / "repo" / "m" / "labels.txt").exists()  # no training data


def test_the_proto_is_tritons(model_config: ModuleType) -> None:
    """The parse is strict: a field Triton's ModelConfig lacks, or a wrong enum value, is
    an error, so the checks above cannot pass on a config Triton would refuse."""
    from google.protobuf import text_format

    assert model_config.ModelConfig.DESCRIPTOR.full_name == "inference.ModelConfig"
    good = 'name: "m"\nplatform: "onnxruntime_onnx"\nmax_batch_size: 8\n'
    assert text_format.Parse(good, model_config.ModelConfig()).max_batch_size == 8
    with pytest.raises(text_format.ParseError, match="no field named \"max_batch\""):
        text_format.Parse('name: "m"\nmax_batch: 8\n', model_config.ModelConfig())
    bad_kind = "instance_group [{ kind: KIND_TPU }]"
    with pytest.raises(text_format.ParseError, match="KIND_TPU"):
        text_format.Parse(bad_kind, model_config.ModelConfig())


@pytest.mark.parametrize("name", SPECS)
def test_kserve_inference_service(repo: Path, name: str) -> None:
    doc = yaml.safe_load((repo / f"{name}.inferenceservice.yaml").read_text())
    assert doc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert doc["kind"] == "InferenceService"
    assert doc["metadata"]["name"] == name.replace("_", "-")
    model = doc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "onnx"}
    assert model["protocolVersion"] == "v2"
    assert model["runtime"] == "kserve-tritonserver"
    assert model["storageUri"].startswith("s3://YOUR-BUCKET")


def test_spec_metadata(repo: Path) -> None:
    _, _, props = onnx_signature(repo / "digits_mlp" / "1" / "model.onnx")
    assert json.loads(props["dlc.preprocessing"]) == [
        {"op": "standardize", "node": "standardize", "method": "minmax", "baked_in": True,
         "statistics": "not fitted (identity): train the model to fit them"}
    ]  # fmt: skip
    assert json.loads(props["dlc.outputs"]) == {"logits": "logits", "probs": "probabilities"}
    assert json.loads(props["dlc.class_names"]) == DIGITS
    assert props["dlc.data"] == "builtin:digits"
    assert "dlc.metrics" not in props  # a compiled spec has no run's figures
    _, _, lm = onnx_signature(repo / "transformer_lm" / "1" / "model.onnx")
    assert "dlc.class_names" not in lm and "dlc.preprocessing" not in lm


@pytest.mark.parametrize(
    "make, args, message",
    [
        (None, ["specs/digits_mlp.yaml"], "exists"),
        ("folder", [], "is a folder but not a run folder: it has no model.onnx"),
        ("text", [], "is neither a run folder nor a spec (.yaml)"),
        ("missing", [], "does not exist"),
        (None, ["specs/digits_mlp.yaml", "--name", "a/b"], "'a/b' cannot name a Triton model"),
    ],
)
def test_errors(
    repo: Path, tmp_path: Path, make: str | None, args: list[str], message: str
) -> None:
    source = {"folder": tmp_path, "text": tmp_path / "notes.txt", "missing": tmp_path / "x.yaml"}
    (tmp_path / "notes.txt").write_text("hello")
    argv = [str(source[make])] if make else args
    r = run_dlc("export", *argv, "--triton", str(repo))
    assert r.returncode == 1
    assert message in r.stderr and "Traceback" not in r.stderr
    if message == "exists":
        assert "add --force to replace it" in r.stderr


def test_force_replaces(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for extra in ([], ["--force"]):
        r = run_dlc("export", "specs/digits_mlp.yaml", "--triton", str(root),
                    "--name", "digits", "--set", "hidden=32", *extra)  # fmt: skip
        assert r.returncode == 0, r.stderr
    assert "name: \"digits\"" in (root / "digits" / "config.pbtxt").read_text()
    assert sorted(p.name for p in root.iterdir()) == ["digits", "digits.inferenceservice.yaml"]


# -- a trained run, exported and served ---------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run") / "digits"
    r = run_dlc("train", "specs/digits_mlp.yaml", "--set", "training.epochs=2",
                "--out", str(out), "-q")  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def served(run_dir: Path, repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    r = run_dlc("export", str(run_dir), "--triton", str(repo), "--name", "digits_run")
    assert r.returncode == 0, r.stderr
    server = start_server([str(repo), "--max-delay-ms", "1"], tmp_path_factory.mktemp("srv"))
    try:
        yield server
    finally:
        stop(server)


def test_run_metadata(run_dir: Path) -> None:
    _, _, props = onnx_signature(run_dir / "model.onnx")
    metrics = json.loads(props["dlc.metrics"])
    assert set(metrics) == {"train", "val", "test"}
    report = json.loads((run_dir / "report.json").read_text())
    assert metrics["test"] == pytest.approx(report["test"])
    pre = json.loads(props["dlc.preprocessing"])
    assert pre[0]["statistics"] == "fitted on the training data"


def test_serve_repository(served: Server, repo: Path, run_dir: Path) -> None:
    meta = served.call("GET", "/v2/models/digits_run").json()
    assert meta["versions"] == ["1"]
    assert [t["shape"] for t in meta["inputs"]] == [[-1, 64]]
    params = meta["parameters"]
    assert params["class_names"] == DIGITS
    assert params["outputs"] == {"logits": "logits", "probs": "probabilities"}
    assert params["data"] == "builtin:digits" and params["spec"] == "digits_mlp"
    report = json.loads((run_dir / "report.json").read_text())
    assert params["metrics"]["test"] == pytest.approx(report["test"])
    for name in SPECS:  # every model of the repository, at its version
        assert served.call("GET", f"/v2/models/{name}/versions/1/ready").status == 200
    missing = served.call("GET", "/v2/models/digits_run/versions/2")
    assert missing.status == 404 and "has no version '2'; it has 1" in missing.json()["error"]
    x = np.random.default_rng(0).uniform(0, 16, (3, 64)).astype(np.float32)
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [3, 64],
                       "data": x.ravel().tolist()}]}  # fmt: skip
    reply = served.call("POST", "/v2/models/digits_run/versions/1/infer", json.dumps(doc).encode())
    assert reply.status == 200, reply.body
    body = reply.json()
    assert body["model_version"] == "1"
    import onnxruntime as ort

    session = ort.InferenceSession(str(run_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    want = session.run(["probs"], {"x": x})[0]
    probs = next(o for o in body["outputs"] if o["name"] == "probs")
    np.testing.assert_allclose(np.reshape(probs["data"], (3, 10)), want, rtol=1e-5, atol=1e-6)
    tokens = {"inputs": [{"name": "x", "datatype": "INT64", "shape": [2, 5],
                          "data": list(range(1, 11))}]}  # fmt: skip
    lm = served.call("POST", "/v2/models/transformer_lm/infer", json.dumps(tokens).encode())
    assert lm.status == 200 and lm.json()["outputs"][0]["shape"] == [2, 5, 16]


def test_tritons_http_client(served: Server) -> None:
    """Triton's own HTTP client against dlc serve on the exported repository."""
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(f"127.0.0.1:{served.port}")
    assert client.is_server_live() and client.is_model_ready("lenet_digits", "1")
    meta = client.get_model_metadata("lenet_digits", "1")
    assert meta["parameters"]["class_names"] == DIGITS
    x = np.random.default_rng(1).uniform(0, 16, (4, 1, 8, 8)).astype(np.float32)
    inp = httpclient.InferInput("x", list(x.shape), "FP32")
    inp.set_data_from_numpy(x, binary_data=True)
    out = httpclient.InferRequestedOutput("probs", binary_data=True)
    result = client.infer("lenet_digits", [inp], model_version="1", outputs=[out])
    probs = result.as_numpy("probs")
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    tokens = np.arange(1, 13, dtype=np.int64).reshape(1, 12)
    t = httpclient.InferInput("x", [1, 12], "INT64")
    t.set_data_from_numpy(tokens)
    lm = client.infer("transformer_lm", [t])
    assert lm.as_numpy("logits").shape == (1, 12, 16)


def test_predict_prints_class_names(run_dir: Path, tmp_path: Path) -> None:
    x = np.random.default_rng(2).uniform(0, 16, (3, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run_dlc("predict", str(run_dir / "model.onnx"), str(tmp_path / "x.npy"))
    assert r.returncode == 0, r.stderr
    import onnxruntime as ort

    session = ort.InferenceSession(str(run_dir / "model.onnx"), providers=["CPUExecutionProvider"])
    want = np.argmax(session.run(["logits"], {"x": x})[0], axis=1)
    tail = r.stdout.split("classes (argmax of logits), one row per example:\n")[1]
    assert tail.split() == [DIGITS[i] for i in want]
    # a model without training data names no classes: no class line
    (tmp_path / "m.yaml").write_text("dlc: 1\nname: m\ninputs: {x: [B, 64]}\nmodel: [dense(10)]\n")
    assert run_dlc("compile", str(tmp_path / "m.yaml")).returncode == 0
    r = run_dlc("predict", str(tmp_path / "m.onnx"), str(tmp_path / "x.npy"))
    assert r.returncode == 0 and "logits" not in r.stdout and "classes" not in r.stdout


def test_serve_rejects_a_folder_without_models(tmp_path: Path) -> None:
    r = run_dlc("serve", str(tmp_path), "--port", "0")
    assert r.returncode == 1
    assert "is a folder but no model repository: no <name>/config.pbtxt in it" in r.stderr
