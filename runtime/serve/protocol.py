"""The KServe v2 inference protocol (REST), as `dlc serve` speaks it.

Pure functions from bytes to checked numpy arrays and back, with no HTTP framework in
sight, so the wire format is tested apart from the server:

- `Signature.of(session)`: a model's inputs and outputs as KServe sees them (datatype,
  shape with -1 for a symbolic dim) and the dim dynamic batching may stack along.
- `parse_infer(body, header_length, signature)`: an infer request, JSON tensors (nested
  or flat row-major `data`) or the binary tensor data extension that Triton's clients
  use by default (`Inference-Header-Content-Length`: the JSON header's length, the raw
  little-endian tensors after it in input order, each input's `binary_data_size`). Every
  mistake in a request is found and reported at once as one `HTTPError(400)` whose
  message names the input and what the model expects.
- `encode_response(...)`: outputs as JSON `data` or, when asked with the `binary_data`
  output parameter or the request's `binary_data_output`, as binary after the header.

JSON goes through orjson: parsing a 784-float request takes a seventh of the time of
the standard library's json, and it serializes numpy arrays without a Python list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from ...compiler.dtypes import ort_type

PLATFORM = "onnx_onnxv1"
VERSION = "1"  # every model has one version; clients may name it or leave it out

# The KServe v2 datatype of each numpy dtype the protocol carries (ours, and the other
# integer widths a model from elsewhere may take); both tables below derive from it.
KSERVE_DATATYPES = {
    "float32": "FP32", "float64": "FP64", "float16": "FP16",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64",
    "uint8": "UINT8", "uint16": "UINT16", "uint32": "UINT32", "uint64": "UINT64",
    "bool": "BOOL",
}  # fmt: skip

# onnxruntime's name of a tensor type -> the KServe v2 datatype
ORT_DATATYPES = {ort_type(name): datatype for name, datatype in KSERVE_DATATYPES.items()}

# the KServe datatype -> its numpy dtype; binary tensor data is little-endian
DTYPES: dict[str, np.dtype[Any]] = {
    datatype: np.dtype(name).newbyteorder("<") for name, datatype in KSERVE_DATATYPES.items()
}

NATIVE = {datatype: dtype.newbyteorder("=") for datatype, dtype in DTYPES.items()}
_DATATYPE_OF = {dtype: datatype for datatype, dtype in NATIVE.items()}

# which numpy kinds of JSON `data` each datatype accepts (ints may feed a float input)
_KINDS = {"f": "iuf", "i": "iu", "u": "iu", "b": "b"}
_KIND_WORDS = {"f": "numbers", "i": "integers", "u": "integers", "b": "true/false values"}


class HTTPError(Exception):
    """A request the server answers with `status` and `{"error": message}`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Dim = int | str | None  # a fixed size, a named symbolic dim, an unnamed one


@dataclass(frozen=True, slots=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[Dim, ...]
    wire_shape: list[int] = field(init=False, compare=False)  # -1 for a symbolic dim

    def __post_init__(self) -> None:
        wire = [d if isinstance(d, int) else -1 for d in self.shape]
        object.__setattr__(self, "wire_shape", wire)

    def metadata(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": self.wire_shape}

    def describe(self) -> str:
        dims = ", ".join(str(d) if d is not None else "?" for d in self.shape)
        return f"{self.name}: {self.datatype} [{dims}]"


@dataclass(frozen=True, slots=True)
class Signature:
    """A model's inputs and outputs. `batch_dim` is the symbolic dim that leads every
    input and every output and appears nowhere else: requests are stacked along it.
    None when there is no such dim (a fixed batch dim): requests then run one by one."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    batch_dim: str | None
    shared_dims: bool = field(init=False, compare=False)  # a named dim occurs twice
    by_name: dict[str, TensorSpec] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        named = [d for t in self.inputs for d in t.shape if isinstance(d, str)]
        object.__setattr__(self, "shared_dims", len(named) != len(set(named)))
        object.__setattr__(self, "by_name", {t.name: t for t in self.inputs})

    @classmethod
    def of(cls, session: Any) -> Signature:
        """The signature of an onnxruntime session; ValueError for a tensor type the
        protocol's numeric datatypes cannot carry."""
        ins = tuple(_spec(a, "input") for a in session.get_inputs())
        outs = tuple(_spec(a, "output") for a in session.get_outputs())
        return cls(ins, outs, _batch_dim(ins, outs))

    def output(self, name: str) -> TensorSpec | None:
        for t in self.outputs:
            if t.name == name:
                return t
        return None


def _spec(arg: Any, kind: str) -> TensorSpec:
    datatype = ORT_DATATYPES.get(arg.type)
    if datatype is None:
        raise ValueError(
            f"{kind} '{arg.name}' is {arg.type}; dlc serve carries numeric and bool tensors"
        )
    shape = tuple(d if isinstance(d, int) else (d or None) for d in arg.shape)
    return TensorSpec(arg.name, datatype, shape)


def _batch_dim(ins: tuple[TensorSpec, ...], outs: tuple[TensorSpec, ...]) -> str | None:
    tensors = ins + outs
    if not ins or any(not t.shape for t in tensors):
        return None
    lead = ins[0].shape[0]
    if not isinstance(lead, str):
        return None
    for t in tensors:
        if t.shape[0] != lead or lead in t.shape[1:]:
            return None
    return lead


@dataclass(slots=True)
class InferRequest:
    id: str | None
    inputs: dict[str, np.ndarray]
    outputs: list[tuple[str, bool]]  # (name, as binary) in the order they are answered
    rows: int  # the size of the batch dim (1 for a model without one)


def parse_infer(body: bytes, header_length: str | None, sig: Signature) -> InferRequest:
    """Decode and check an infer request; HTTPError(400) lists every problem found."""
    binary = b""
    if header_length is not None:
        n = _header_length(header_length, len(body))
        body, binary = body[:n], body[n:]
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as e:
        raise HTTPError(400, f"malformed JSON: {e}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise HTTPError(400, "the request must be a JSON object with an 'inputs' list")
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise HTTPError(400, "'id' must be a string")
    params = _parameters(doc)

    problems: list[str] = []
    feeds: dict[str, np.ndarray] = {}
    seen: set[str] = set()  # the model's inputs the request names
    offset = 0
    for i, item in enumerate(doc["inputs"]):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"inputs[{i}] must be an object with a 'name'")
            continue
        name = item["name"]
        spec = sig.by_name.get(name)
        if spec is None:
            takes = ", ".join(t.describe() for t in sig.inputs)
            problems.append(f"unknown input '{name}'; the model takes {takes}")
            continue
        if name in seen:
            problems.append(f"input '{name}' is given twice")
            continue
        seen.add(name)
        value, offset = _tensor(item, spec, binary, offset, problems)
        if value is not None:
            feeds[name] = value
    if offset != len(binary) and not problems:
        problems.append(
            f"{len(binary)} bytes of binary tensor data follow the JSON header, "
            f"but the inputs' binary_data_size parameters add up to {offset}"
        )
    if len(seen) != len(sig.inputs):
        missing = [t.describe() for t in sig.inputs if t.name not in seen]
        problems.append(f"missing input {', '.join(missing)}")
    if sig.shared_dims and not problems:
        _check_dims(feeds, sig, problems)
    outputs = _requested_outputs(doc, sig, bool(params.get("binary_data_output")), problems)
    if problems:
        raise HTTPError(400, "; ".join(problems))
    rows = 1
    if sig.batch_dim is not None:
        rows = feeds[sig.inputs[0].name].shape[0]
    return InferRequest(request_id, feeds, outputs, rows)


def _header_length(text: str, size: int) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= size:
        raise HTTPError(
            400,
            f"Inference-Header-Content-Length is '{text}'; it must be the length of the "
            f"JSON header, a whole number from 0 to the body's {size} bytes",
        )
    return n


def _parameters(doc: dict[str, Any]) -> dict[str, Any]:
    params = doc.get("parameters", {})
    if not isinstance(params, dict):
        raise HTTPError(400, "the request's 'parameters' must be an object")
    return params


def _tensor(
    item: dict[str, Any], spec: TensorSpec, binary: bytes, offset: int, problems: list[str]
) -> tuple[np.ndarray | None, int]:
    """One input as an array of the model's dtype and shape, or None with a problem noted;
    and the offset of the next input's binary data."""
    name = spec.name
    params = item.get("parameters", {})
    if not isinstance(params, dict):
        problems.append(f"'parameters' of input '{name}' must be an object")
        return None, offset
    size = params.get("binary_data_size")
    if size is not None:
        if not _is_count(size):
            problems.append(f"input '{name}': binary_data_size must be a whole number of bytes")
            return None, offset
        offset += size  # the next input's data starts there, whatever is wrong with this one
    shape = item.get("shape")
    if type(shape) is not list or not _sizes(shape):
        problems.append(f"input '{name}' needs a 'shape': a list of sizes, e.g. {spec.wire_shape}")
        return None, offset
    datatype = item.get("datatype")
    if datatype != spec.datatype:
        problems.append(
            f"input '{name}' has datatype {datatype}; the model expects {spec.datatype}"
        )
        return None, offset
    if not _shape_fits(name, shape, spec, problems):
        return None, offset
    count = math.prod(shape)
    dtype = DTYPES[datatype]
    if size is None:
        if "data" not in item:
            problems.append(f"input '{name}' has neither 'data' nor a binary_data_size parameter")
            return None, offset
        return _from_json(name, item["data"], shape, count, datatype, problems), offset
    if offset > len(binary):
        problems.append(
            f"input '{name}': binary_data_size {size} reaches past the "
            f"{len(binary)} bytes of binary data after the JSON header"
        )
        return None, offset
    if size != count * dtype.itemsize:
        problems.append(
            f"input '{name}' has {size} bytes of binary data; shape {shape} of "
            f"{datatype} needs {count * dtype.itemsize}"
        )
        return None, offset
    raw = np.frombuffer(binary, dtype, count, offset - size)
    return raw.astype(NATIVE[datatype], copy=False).reshape(shape), offset


def _is_count(x: object) -> bool:
    return type(x) is int and x >= 0  # not a bool


def _sizes(shape: list[Any]) -> bool:
    for d in shape:
        if type(d) is not int or d < 0:
            return False
    return True


def _shape_fits(name: str, shape: list[int], spec: TensorSpec, problems: list[str]) -> bool:
    want = spec.wire_shape
    if shape == want:
        return True
    if len(shape) != len(want):
        problems.append(
            f"input '{name}' has shape {shape} of rank {len(shape)}; "
            f"the model expects rank {len(want)}: {want}"
        )
        return False
    bad = [a for a, need in enumerate(want) if need not in (-1, shape[a])]
    if bad:
        axes = ", ".join(f"axis {a} must be {want[a]}" for a in bad)
        problems.append(f"input '{name}' has shape {shape}; the model expects {want} ({axes})")
        return False
    return True


def _from_json(
    name: str, data: Any, shape: list[int], count: int, datatype: str, problems: list[str]
) -> np.ndarray | None:
    dtype = DTYPES[datatype]
    try:
        value = np.asarray(data)  # float64, int64, bool, or str/object for a bad payload
    except (ValueError, OverflowError):
        problems.append(f"input '{name}': 'data' is not a rectangular array of numbers")
        return None
    if value.dtype.kind not in _KINDS[dtype.kind]:
        what = {"U": "strings", "S": "strings", "O": "nulls, objects or mixed values"}.get(
            value.dtype.kind, f"{value.dtype} values"
        )
        need = _KIND_WORDS[dtype.kind]
        problems.append(f"input '{name}': datatype {datatype} needs {need}; 'data' holds {what}")
        return None
    if value.size != count:
        problems.append(
            f"input '{name}' has {value.size} values in 'data'; shape {shape} needs {count}"
        )
        return None
    if dtype.kind in "iu" and value.size:
        info = np.iinfo(dtype)
        if value.min() < info.min or value.max() > info.max:
            problems.append(f"input '{name}': a value of 'data' is out of the range of {datatype}")
            return None
    return value.astype(NATIVE[datatype], copy=False).reshape(shape)


def _check_dims(feeds: dict[str, np.ndarray], sig: Signature, problems: list[str]) -> None:
    """Inputs that share a symbolic dim (the batch dim B of x and of mask) agree on it."""
    seen: dict[str, tuple[int, str]] = {}
    for spec in sig.inputs:
        for dim, size in zip(spec.shape, feeds[spec.name].shape, strict=True):
            if not isinstance(dim, str):
                continue
            first = seen.setdefault(dim, (size, spec.name))
            if first[0] != size:
                problems.append(
                    f"inputs disagree on dim {dim}: '{first[1]}' has {first[0]}, "
                    f"'{spec.name}' has {size}"
                )


def _requested_outputs(
    doc: dict[str, Any], sig: Signature, binary_default: bool, problems: list[str]
) -> list[tuple[str, bool]]:
    wanted = doc.get("outputs")
    if wanted is None:
        return [(t.name, binary_default) for t in sig.outputs]
    if not isinstance(wanted, list):
        problems.append("'outputs' must be a list of objects with a 'name'")
        return []
    out = []
    for i, item in enumerate(wanted):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"outputs[{i}] must be an object with a 'name'")
            continue
        if sig.output(item["name"]) is None:
            gives = ", ".join(t.describe() for t in sig.outputs)
            problems.append(f"unknown output '{item['name']}'; the model gives {gives}")
            continue
        params = item.get("parameters", {})
        binary = params.get("binary_data", binary_default) if isinstance(params, dict) else None
        if not isinstance(binary, bool):
            problems.append(f"output '{item['name']}': parameter binary_data must be true or false")
            continue
        out.append((item["name"], binary))
    return out


def encode_response(
    model: str, request: InferRequest, results: dict[str, np.ndarray], version: str = VERSION
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    outputs = []
    blobs = []
    for name, binary in request.outputs:
        value = np.ascontiguousarray(results[name])
        datatype = _DATATYPE_OF.get(value.dtype)
        if datatype is None:  # not a type the model's signature admits: a model bug
            raise TypeError(f"output '{name}' is {value.dtype}, which KServe cannot carry")
        entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": list(value.shape)}
        if binary:
            raw = value.astype(DTYPES[datatype], copy=False).tobytes()
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            entry["data"] = value.reshape(-1)
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": outputs}
    if request.id is not None:
        doc["id"] = request.id
    head = orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)
