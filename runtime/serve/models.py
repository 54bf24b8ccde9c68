"""The models `dlc serve` serves: `NAME=PATH` arguments, or Triton model repositories
(`dlc export --triton DIR`: `DIR/<name>/config.pbtxt` and `DIR/<name>/<version>/model.onnx`),
each opened as an onnxruntime session with its KServe signature and the metadata document
it answers with (dlc's model metadata, runtime/metadata.py, under `parameters`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ...compiler.errors import DlcError, UsageError
from ..metadata import read_metadata
from .batching import Batcher
from .protocol import PLATFORM, VERSION, Signature

NAME = re.compile(r"[A-Za-z0-9_.-]+")


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
    version: str = VERSION
    max_batch: int | None = None  # a repository's max_batch_size: 0 none, None unbounded


@dataclass(frozen=True)
class Entry:
    """A model to open: its name, file, version and batch limit."""

    name: str
    path: Path
    version: str = VERSION
    max_batch: int | None = None


MODEL = "model.onnx"  # Triton's default_model_filename for onnxruntime_onnx
CONFIG_NAME = re.compile(r'^name:\s*"([^"]*)"', re.M)
CONFIG_BATCH = re.compile(r"^max_batch_size:\s*(\d+)", re.M)


def repository(root: Path) -> list[Entry]:
    """The models of a Triton repository: each folder with a config.pbtxt, at its
    highest numbered version holding a model.onnx (Triton's default policy, latest 1)."""
    entries = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        config = folder / "config.pbtxt"
        if not config.is_file():
            continue
        text = config.read_text()
        named = CONFIG_NAME.search(text)
        if named and named.group(1) != folder.name:
            raise ServeError(
                f"'{config}' names the model '{named.group(1)}' in the folder '{folder.name}'",
                hint="Triton requires the two to agree: rename one",
            )
        versions = [v for v in folder.iterdir() if v.name.isdigit() and (v / MODEL).is_file()]
        if not versions:
            raise ServeError(f"model '{folder.name}' in '{root}' has no <version>/model.onnx")
        latest = max(versions, key=lambda v: int(v.name))
        batch = CONFIG_BATCH.search(text)
        entries.append(Entry(folder.name, latest / MODEL, str(int(latest.name)),
                             int(batch.group(1)) if batch else 0))  # fmt: skip
    if not entries:
        raise UsageError(
            f"'{root}' is a folder but no model repository: no <name>/config.pbtxt in it",
            hint="write one with dlc export RUN|SPEC --triton DIR",
        )
    return entries


def model_paths(items: list[str]) -> list[Entry]:
    """`PATH`, `NAME=PATH` or repository `DIR` arguments as entries; a model file is named
    after its file."""
    out: list[Entry] = []
    for item in items:
        if Path(item).is_dir():
            for entry in repository(Path(item)):
                if any(entry.name == e.name for e in out):
                    raise UsageError(f"two models are named '{entry.name}'")
                out.append(entry)
            continue
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
        if any(name == e.name for e in out):
            raise UsageError(f"two models are named '{name}'", hint="name one with NAME=PATH")
        out.append(Entry(name, path))
    return out


def load_models(items: list[str]) -> dict[str, Model]:
    """Open every model with onnxruntime; ServeError for a file that is not one."""
    import onnxruntime as ort

    models = {}
    for entry in model_paths(items):
        name, path = entry.name, entry.path
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
        model = Model(name, path, session, signature, version=entry.version,
                      max_batch=entry.max_batch)  # fmt: skip
        doc: dict[str, Any] = {
            "name": name,
            "versions": [entry.version],
            "platform": PLATFORM,
            "inputs": [t.metadata() for t in signature.inputs],
            "outputs": [t.metadata() for t in signature.outputs],
        }
        meta = read_metadata(session.get_modelmeta().custom_metadata_map)
        if meta:  # KServe v2 lets a metadata response carry `parameters`
            doc["parameters"] = meta
        model.metadata = orjson.dumps(doc)
        models[name] = model
    return models
