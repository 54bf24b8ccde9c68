"""`dlc export RUN|SPEC --triton DIR`: a Triton model repository and a KServe
InferenceService, so the compiled model deploys unchanged.

    DIR/<name>/config.pbtxt                 derived from the model's own signature
    DIR/<name>/1/model.onnx                 a run's trained model, or a spec compiled
    DIR/<name>/labels.txt                   class names, one a line (classifiers)
    DIR/<name>.inferenceservice.yaml        KServe v1beta1, protocol v2, Triton runtime

The config comes from the ONNX graph's inputs and outputs, which the checked signature
wrote (symbolic dims keep their names there): the batch is the symbolic dim that leads
every input and output and appears nowhere else; it is left out of `dims` and
`max_batch_size` is set. With no such dim `max_batch_size` is 0 and dims are full. Other
symbolic dims are -1. Triton skips the files at the top of a repository, and so does
`dlc serve DIR`, so the InferenceService YAML can sit there.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..compiler.errors import DlcError, UsageError
from .files import atomic_write
from .metadata import labelled_outputs, read_metadata

NAME = re.compile(r"[A-Za-z0-9_.-]+")
LABELS = "labels.txt"
# the Triton datatype of each ONNX TensorProto element type
TRITON_TYPES = {
    1: "TYPE_FP32", 2: "TYPE_UINT8", 3: "TYPE_INT8", 4: "TYPE_UINT16", 5: "TYPE_INT16",
    6: "TYPE_INT32", 7: "TYPE_INT64", 8: "TYPE_STRING", 9: "TYPE_BOOL", 10: "TYPE_FP16",
    11: "TYPE_FP64", 12: "TYPE_UINT32", 13: "TYPE_UINT64", 16: "TYPE_BF16",
}  # fmt: skip
QUEUE_DELAY_US = 2000  # as dlc serve's --max-delay-ms default


class ExportError(DlcError):
    phase = "export"


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    shape: tuple[int | str, ...]  # a fixed size or a symbolic dim's name ("" unnamed)


@dataclass
class TritonConfig:
    name: str
    inputs: list[Tensor]
    outputs: list[Tensor]
    max_batch_size: int
    batch_dim: str | None
    labelled: list[str] = field(default_factory=list)
    gpu: bool = False

    def dims(self, t: Tensor) -> list[int]:
        shape = t.shape[1:] if self.batch_dim else t.shape
        return [d if isinstance(d, int) else -1 for d in shape]

    def text(self) -> str:
        """config.pbtxt, in protobuf's text format of Triton's ModelConfig."""
        lines = [f'name: "{self.name}"', 'platform: "onnxruntime_onnx"',
                 f"max_batch_size: {self.max_batch_size}"]  # fmt: skip
        for kind, tensors in (("input", self.inputs), ("output", self.outputs)):
            entries = []
            for t in tensors:
                dims = self.dims(t)
                body = [f'name: "{t.name}"', f"data_type: {t.datatype}"]
                # a batched [B] tensor: Triton wants dims [1] reshaped to a scalar
                body.append(f"dims: [ {', '.join(map(str, dims or [1]))} ]")
                if not dims:
                    body.append("reshape: { shape: [ ] }")
                if t.name in self.labelled:
                    body.append(f'label_filename: "{LABELS}"')
                entries.append("  {\n" + "".join(f"    {b}\n" for b in body) + "  }")
            lines.append(f"{kind} [\n" + ",\n".join(entries) + "\n]")
        if self.max_batch_size > 0:
            sizes = preferred_sizes(self.max_batch_size)
            lines.append(
                "dynamic_batching {\n"
                f"  preferred_batch_size: [ {', '.join(map(str, sizes))} ]\n"
                f"  max_queue_delay_microseconds: {QUEUE_DELAY_US}\n}}"
            )
        kind = "KIND_GPU" if self.gpu else "KIND_CPU"
        lines.append(f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]")
        return "\n".join(lines) + "\n"


def preferred_sizes(max_batch: int) -> list[int]:
    """Powers of two from 8 up to `max_batch`, and `max_batch` itself."""
    sizes = [s for s in (8, 16, 32, 64, 128, 256) if s < max_batch]
    return [*sizes[-3:], max_batch]


@dataclass
class Exported:
    model_dir: Path
    config: TritonConfig
    kserve: Path
    written: list[Path]


def load_model(source: str, overrides: list[str]) -> tuple[Any, str]:
    """The ONNX model of a run folder (its model.onnx) or of a spec (compiled with fresh
    weights), and where it came from."""
    import onnx

    path = Path(source)
    if path.is_dir():
        onnx_path = path / "model.onnx"
        if not onnx_path.is_file():
            raise UsageError(
                f"'{source}' is a folder but not a run folder: it has no model.onnx",
                hint="give a run folder of dlc train (runs/NAME/TIMESTAMP) or a spec",
            )
        if overrides:
            raise UsageError("--set changes a spec; a run folder's model is already trained")
        return onnx.load(str(onnx_path)), f"run {source}"
    if path.is_file() and path.suffix.lower() in (".yaml", ".yml"):
        from ..compiler.pipeline import check_file
        from .compile import build_onnx, resolve_weights

        checked = check_file(path, overrides)
        return build_onnx(checked, resolve_weights(checked, None), None), f"spec {source}"
    what = "does not exist" if not path.exists() else "is neither a run folder nor a spec (.yaml)"
    raise UsageError(f"'{source}' {what}", hint="dlc export RUN_FOLDER|SPEC.yaml --triton DIR")


def _tensors(values: Any) -> list[Tensor]:
    out = []
    for v in values:
        t = v.type.tensor_type
        datatype = TRITON_TYPES.get(t.elem_type)
        if datatype is None:
            raise ExportError(f"'{v.name}' has ONNX element type {t.elem_type}, not one Triton has")
        shape = tuple(d.dim_value if d.HasField("dim_value") else d.dim_param for d in t.shape.dim)
        out.append(Tensor(v.name, datatype, shape))
    return out


def batch_dim(tensors: list[Tensor]) -> str | None:
    """The named symbolic dim leading every tensor and appearing nowhere else in them."""
    if not tensors or any(not t.shape for t in tensors):
        return None
    lead = tensors[0].shape[0]
    if not isinstance(lead, str) or not lead:
        return None
    if any(t.shape[0] != lead or lead in t.shape[1:] for t in tensors):
        return None
    return lead


def triton_config(model: Any, name: str, max_batch: int = 64, gpu: bool = False) -> TritonConfig:
    initializers = {i.name for i in model.graph.initializer}
    ins = _tensors([v for v in model.graph.input if v.name not in initializers])
    outs = _tensors(model.graph.output)
    batch = batch_dim(ins + outs)
    meta = read_metadata({p.key: p.value for p in model.metadata_props})
    shapes = {t.name: [d if isinstance(d, int) else -1 for d in t.shape] for t in outs}
    return TritonConfig(
        name, ins, outs, max_batch if batch else 0, batch, labelled_outputs(meta, shapes), gpu
    )


def kserve_yaml(name: str) -> str:
    import yaml

    doc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-") or "model"},
        "spec": {
            "predictor": {
                "model": {
                    "modelFormat": {"name": "onnx"},
                    "protocolVersion": "v2",
                    "runtime": "kserve-tritonserver",
                    "storageUri": "s3://YOUR-BUCKET/PATH/TO/REPOSITORY",
                }
            }
        },
    }
    head = (
        f"# KServe InferenceService for the Triton model repository holding '{name}'.\n"
        "# Upload the repository folder (the one holding this file) and set storageUri to it.\n"
    )
    return head + yaml.safe_dump(doc, sort_keys=False)


def export_triton(
    source: str,
    out: str | Path,
    *,
    name: str | None = None,
    force: bool = False,
    gpu: bool = False,
    max_batch: int = 64,
    overrides: list[str] | None = None,
) -> Exported:
    if max_batch < 1:
        raise UsageError("--max-batch must be 1 or more")
    if name is not None and not NAME.fullmatch(name):
        raise UsageError(
            f"'{name}' cannot name a Triton model",
            hint="use letters, digits, '_', '-' and '.'",
        )
    model, _ = load_model(source, overrides or [])
    meta = read_metadata({p.key: p.value for p in model.metadata_props})
    name = name or str(meta.get("spec") or Path(source).stem)
    root = Path(out)
    target = root / name
    if target.exists() and not force:
        raise UsageError(f"'{target}' exists", hint="add --force to replace it")
    config = triton_config(model, name, max_batch, gpu)
    # build the model folder beside its place, then swap it in: never half a model there
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        atomic_write(staging / "config.pbtxt", config.text())
        atomic_write(staging / "1" / "model.onnx", model.SerializeToString())
        if config.labelled:
            atomic_write(staging / LABELS, "".join(f"{c}\n" for c in meta["class_names"]))
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    kserve = atomic_write(root / f"{name}.inferenceservice.yaml", kserve_yaml(name))
    written = [target / "config.pbtxt", target / "1" / "model.onnx"]
    if config.labelled:
        written.append(target / LABELS)
    return Exported(target, config, kserve, [*written, kserve])
