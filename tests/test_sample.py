"""runtime/sample: the figures samples are drawn as, the quality figures, `dlc sample`."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dlc.compiler.errors import UsageError
from dlc.compiler.lower.onnx import ir_version_for
from dlc.runtime.sample.figures import as_images, write_samples
from dlc.runtime.sample.quality import judge, mmd_rbf, nearest_neighbour

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("shape", "image"),
    [
        ((5, 64), (8, 8)),
        ((5, 8, 8), (8, 8)),
        ((5, 1, 6, 6), (6, 6)),
        ((5, 3, 4, 4), (4, 4, 3)),
        ((5, 2), None),
        ((5, 10), None),
    ],
)
def test_as_images(shape: tuple[int, ...], image: tuple[int, ...] | None) -> None:
    got = as_images(np.zeros(shape))
    assert (got is None) if image is None else got.shape == (5, *image)


def test_write_samples_grid_scatter_npy(tmp_path):
    rng = np.random.default_rng(0)
    assert write_samples(rng.random((20, 64)), tmp_path / "g.png").read_bytes()[:8] == PNG
    pts = rng.normal(size=(50, 2))
    assert write_samples(pts, tmp_path / "s.png", reference=pts).read_bytes()[:8] == PNG
    np.testing.assert_array_equal(np.load(write_samples(pts, tmp_path / "s.npy")), pts)
    with pytest.raises(UsageError, match=r"as \.png or \.npy, not '\.jpg'"):
        write_samples(pts, tmp_path / "s.jpg")
    with pytest.raises(UsageError, match=r"cannot draw samples of shape \[4, 10\] as images"):
        write_samples(np.zeros((4, 10)), tmp_path / "x.png")


def test_mmd_separates_distributions():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(400, 2)), rng.normal(size=(400, 2))
    shifted = rng.normal(1.0, 1.0, size=(400, 2))
    same, apart = mmd_rbf(a, b), mmd_rbf(shifted, b)
    assert abs(same) < 0.01 < apart
    assert nearest_neighbour(b, b) == pytest.approx(0.0, abs=1e-6)
    assert nearest_neighbour(np.array([[3.0, 4.0]]), np.array([[0.0, 0.0], [10.0, 0.0]])) == 5.0


def _classifier(path, classes: int = 3) -> str:
    """An ONNX 'classifier' whose logits are its input's first `classes` values."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["B", classes])
    starts = helper.make_tensor("s", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("e", TensorProto.INT64, [1], [classes])
    axes = helper.make_tensor("a", TensorProto.INT64, [1], [1])
    node = helper.make_node("Slice", ["x", "s", "e", "a"], ["logits"])
    graph = helper.make_graph([node], "c", [x], [y], [starts, ends, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = ir_version_for(17)
    onnx.save(model, path)
    return str(path)


def test_judge_reads_confidence_and_classes(tmp_path):
    model = _classifier(tmp_path / "c.onnx")
    samples = np.array([[9, 0, 0, 0], [0, 9, 0, 0], [9, 0, 0, 5], [0, 0, 0, 0]], np.float32)
    got = judge(samples.reshape(4, 2, 2), model)  # reshaped to the classifier's rows
    conf = (3 * (np.exp(9) / (np.exp(9) + 2)) + 1 / 3) / 4
    assert got == {"confidence": pytest.approx(conf), "classes": 2, "counts": [3, 1, 0]}
    with pytest.raises(UsageError, match=r"the judge reads rows of 4 values .* the samples have 3"):
        judge(np.zeros((2, 3)), model)
