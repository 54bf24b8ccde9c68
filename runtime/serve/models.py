"""The models `dlc serve` serves: `NAME=PATH` arguments, each opened as an onnxruntime
session with its KServe signature and the metadata document it answers with."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ...compiler.errors import DlcError, UsageError
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
