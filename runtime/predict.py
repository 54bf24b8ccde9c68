"""`dlc predict MODEL.onnx INPUT [-o OUT]`: run an ONNX model with onnxruntime.

Inputs come from `.npy` (the model's only input), `.npz` (arrays by input name), `.csv`
(numbers, one row per example, an optional header; the only input) or `.json` (an
object of input name to nested lists, or a bare nested list for the only input). They
are checked against the model's signature — names, dtypes, ranks, fixed dims — before
anything runs. Outputs go to the terminal or to OUT as .npy, .npz, .csv or .json.

When the model's metadata (runtime/metadata.py) names its classes and says an output
holds class scores, the printed outputs end with each row's class: the argmax's name.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from ..compiler.dtypes import NUMPY_DTYPES, ort_type
from ..compiler.errors import DlcError, UsageError
from .files import atomic_write
from .metadata import labelled_outputs, read_metadata

# onnxruntime's name of an input's tensor type -> the numpy dtype its feed converts to
ORT_TYPES = {ort_type(d): np.dtype(d) for d in NUMPY_DTYPES}


class PredictError(DlcError):
    phase = "predict"


def open_session(path: str | Path) -> Any:
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"model file '{path}' does not exist")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001 - onnxruntime's own words say what is wrong
        raise PredictError(f"'{path}' is not an ONNX model onnxruntime can load: {e}") from None


def read_inputs(path: str | Path, names: list[str]) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"input file '{path}' does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            return {_only(names, path): np.load(path, allow_pickle=False)}
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return {k: archive[k] for k in archive.files}
        if suffix == ".csv":
            return {_only(names, path): _read_csv(path)}
        if suffix == ".json":
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                return {k: np.asarray(v) for k, v in data.items()}
            return {_only(names, path): np.asarray(data)}
    except (DlcError, KeyboardInterrupt):
        raise
    except Exception as e:  # noqa: BLE001 - a malformed file, whatever the parser says
        raise PredictError(f"cannot read inputs from '{path}': {e}") from None
    raise UsageError(f"unknown input format '{suffix}'", hint="use .npy, .npz, .csv or .json")


def _only(names: list[str], path: Path) -> str:
    if len(names) != 1:
        raise PredictError(
            f"the model has {len(names)} inputs ({', '.join(names)}); '{path}' gives one array",
            hint="use a .npz or a .json object keyed by input name",
        )
    return names[0]


def _read_csv(path: Path) -> np.ndarray:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        float(lines[0].split(",")[0])
    except ValueError:
        lines = lines[1:]  # a header
    return np.loadtxt(io.StringIO("\n".join(lines)), delimiter=",", ndmin=2)


def check_inputs(session: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The inputs converted to the model's dtypes, or one error listing what does not fit."""
    spec = {i.name: i for i in session.get_inputs()}
    problems = []
    missing = [n for n in spec if n not in feeds]
    extra = [n for n in feeds if n not in spec]
    if missing:
        problems.append(f"missing input {', '.join(missing)}")
    if extra:
        problems.append(f"unknown input {', '.join(extra)} (the model takes {', '.join(spec)})")
    out = {}
    for name, value in feeds.items():
        if name not in spec:
            continue
        want = spec[name]
        dtype = ORT_TYPES.get(want.type)
        shape = list(want.shape)
        if value.ndim != len(shape):
            problems.append(
                f"input {name} has rank {value.ndim} {list(value.shape)}, "
                f"the model needs rank {len(shape)} {_dims(shape)}" + _reshape_hint(value, shape)
            )
            continue
        for axis, (have, need) in enumerate(zip(value.shape, shape, strict=True)):
            if isinstance(need, int) and need != have:
                problems.append(
                    f"input {name} has {have} on axis {axis}, the model needs {need} {_dims(shape)}"
                )
        converted = _convert(name, value, dtype, problems)
        if converted is not None:
            out[name] = converted
    if problems:
        raise PredictError("; ".join(problems))
    return out


def _dims(shape: list[Any]) -> str:
    return "[" + ", ".join(str(d) if isinstance(d, int) else str(d or "?") for d in shape) + "]"


def _convert(name: str, value: np.ndarray, dtype: Any, problems: list[str]) -> Any:
    if dtype is None:
        return value
    kind, want = value.dtype.kind, np.dtype(dtype).kind
    if want == "f" and kind in "fiub":
        return value.astype(dtype)
    if want in "iu" and kind in "iu":
        return value.astype(dtype)
    if want == "b" and kind == "b":
        return value
    problems.append(f"input {name} is {value.dtype}, the model needs {np.dtype(dtype).name}")
    return None


def run(session: Any, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    try:
        return dict(zip(names, session.run(None, check_inputs(session, feeds)), strict=True))
    except DlcError:
        raise
    except Exception as e:  # noqa: BLE001 - onnxruntime's failure, reported, not a traceback
        raise PredictError(f"onnxruntime failed: {e}") from None


def class_labels(session: Any, outputs: dict[str, np.ndarray]) -> tuple[str, np.ndarray] | None:
    """(output, the class name of each row's largest score) for a classifier's output
    whose model names its classes; None otherwise."""
    meta = read_metadata(session.get_modelmeta().custom_metadata_map)
    shapes = {k: list(v.shape) for k, v in outputs.items()}
    chosen = labelled_outputs(meta, shapes)
    if not chosen:
        return None
    name = chosen[0]
    names = np.asarray(meta["class_names"], dtype=object)
    return name, names[np.argmax(outputs[name], axis=-1)]


def format_labels(labelled: tuple[str, np.ndarray]) -> str:
    name, labels = labelled
    rows = labels.reshape(len(labels), -1) if labels.ndim else labels.reshape(1, 1)
    text = "\n".join(" ".join(str(c) for c in row) for row in rows)
    return f"classes (argmax of {name}), one row per example:\n{text}"


def write_outputs(outputs: dict[str, np.ndarray], path: str | Path | None) -> str | None:
    """Write to `path` by its suffix; without a path, the text to print."""
    if path is None:
        with np.printoptions(precision=6, suppress=True, threshold=200):
            return "\n".join(f"{k}: shape {list(v.shape)}\n{v}" for k, v in outputs.items())
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        buf = io.BytesIO()
        np.savez(buf, **outputs)  # type: ignore[arg-type]
        atomic_write(path, buf.getvalue())
    elif suffix == ".json":
        atomic_write(path, json.dumps({k: v.tolist() for k, v in outputs.items()}))
    elif suffix in (".npy", ".csv"):
        if len(outputs) != 1:
            raise UsageError(
                f"the model has {len(outputs)} outputs; {suffix} holds one",
                hint="write .npz or .json",
            )
        (value,) = outputs.values()
        buf = io.BytesIO()
        if suffix == ".npy":
            np.save(buf, value)
        else:
            np.savetxt(
                buf,
                value.reshape(len(value), -1) if value.ndim else value[None],
                delimiter=",",
                fmt="%.8g",
            )
        atomic_write(path, buf.getvalue())
    else:
        raise UsageError(f"unknown output format '{suffix}'", hint="use .npy, .npz, .csv or .json")
    return None


def _reshape_hint(value: np.ndarray, shape: list[Any]) -> str:
    """A reshape that fits, when the values are one example of the model's input or each
    row holds one (a flat [N, 64] digits array for an image model [B, 1, 8, 8])."""
    rest = shape[1:]
    if not all(isinstance(d, int) for d in rest):
        return ""
    if value.size == math.prod(rest):
        target = [1, *rest]
    elif value.ndim >= 1 and math.prod(value.shape[1:]) == math.prod(rest):
        target = [value.shape[0], *rest]
    else:
        return ""
    return f"; the values fit {target}: reshape them, x.reshape({', '.join(map(str, target))})"
