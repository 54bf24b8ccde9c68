"""The element types of dlc's tensors, by name, in one place (no torch, no onnx here).

A spec writes a dtype by these names (`int64[B, T]`); the IR's `TensorType.dtype` holds
the name. The backends and the runtime derive their own tables from `DTYPES`: the ONNX
lowering reads `ONNX_NAMES` (TensorProto's member names); torch and numpy call the same
names `torch.<name>` and `numpy.<name>` (numpy has no bfloat16: `NUMPY_DTYPES`), and
onnxruntime names a tensor type after its TensorProto name (`ort_type`).
"""

from __future__ import annotations

FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int64", "int32")
DTYPES = (*FLOAT_DTYPES, *INT_DTYPES, "bool")
NUMPY_DTYPES = tuple(d for d in DTYPES if d != "bfloat16")

# The name of each dtype's `onnx.TensorProto` element type.
ONNX_NAMES: dict[str, str] = {
    "float32": "FLOAT",
    "float64": "DOUBLE",
    "float16": "FLOAT16",
    "bfloat16": "BFLOAT16",
    "int64": "INT64",
    "int32": "INT32",
    "bool": "BOOL",
}


def ort_type(name: str) -> str:
    """onnxruntime's name of the tensor type of dtype `name`, or of another numpy dtype
    such as uint8: its TensorProto name in lower case ("float32" -> "tensor(float)")."""
    return f"tensor({ONNX_NAMES.get(name, name.upper()).lower()})"
