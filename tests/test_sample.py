"""runtime/sample: the figures samples are drawn as, the quality figures, `dlc sample`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from onnx import TensorProto, helper

from conftest import ROOT, save_onnx
from dlc.compiler.errors import UsageError
from dlc.runtime.cli import main
from dlc.runtime.sample.draw import open_sampler
from dlc.runtime.sample.figures import as_images, write_samples
from dlc.runtime.sample.quality import judge, mmd_rbf, nearest_neighbour

PNG = b"\x89PNG\r\n\x1a\n"
SPECS = ROOT / "specs"


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
    return str(save_onnx(graph, path))


def test_judge_reads_confidence_and_classes(tmp_path):
    model = _classifier(tmp_path / "c.onnx")
    samples = np.array([[9, 0, 0, 0], [0, 9, 0, 0], [9, 0, 0, 5], [0, 0, 0, 0]], np.float32)
    got = judge(samples.reshape(4, 2, 2), model)  # reshaped to the classifier's rows
    conf = (3 * (np.exp(9) / (np.exp(9) + 2)) + 1 / 3) / 4
    assert got == {"confidence": pytest.approx(conf), "classes": 2, "counts": [3, 1, 0]}
    with pytest.raises(UsageError, match=r"the judge reads rows of 4 values .* the samples have 3"):
        judge(np.zeros((2, 3)), model)


# ---- dlc sample on a VAE: the decoder cut out of the exported model at z ----


@pytest.fixture(scope="module")
def vae_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vae") / "vae.onnx"
    assert main(["compile", str(SPECS / "vae_digits.yaml"), "-o", str(out)]) == 0
    return out


def test_vae_metadata_names_latent_and_decoder_outputs(vae_model) -> None:
    props = {p.key: p.value for p in onnx.load(str(vae_model)).metadata_props}
    assert json.loads(props["dlc.sampler"]) == {
        "kind": "vae", "latent": "z", "shape": [4], "outputs": ["recon"], "condition": None,
    }  # fmt: skip


def test_vae_samples_are_the_decoder_of_seeded_normal_latents(vae_model) -> None:
    """The decoder of the cut model on z ~ N(0, I) equals the whole model's torch module
    fed that z at its gaussian_sample node (here: the ONNX graph from z on, by hand)."""
    sampler = open_sampler(vae_model)
    a, b = sampler.draw(8, seed=3), sampler.draw(8, seed=3)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (8, 64) and not np.array_equal(a, sampler.draw(8, seed=4))
    z = np.random.default_rng(3).standard_normal((8, 4)).astype(np.float32)
    model = onnx.load(str(vae_model))
    w = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    h = np.maximum(z @ w["recon.dense.weight"].T + w["recon.dense.bias"], 0)
    expected = h @ w["recon.dense_1.weight"].T + w["recon.dense_1.bias"]
    np.testing.assert_allclose(a, expected, rtol=1e-5, atol=1e-5)
    assert [i.name for i in sampler.session.get_inputs()] == ["z"]


def test_dlc_sample_writes_grid_and_array_and_judges(vae_model, tmp_path, capsys) -> None:  # noqa: ANN001
    classifier = tmp_path / "mlp.onnx"
    assert main(["compile", str(SPECS / "digits_mlp.yaml"), "-o", str(classifier)]) == 0
    args = ["sample", str(vae_model), "-n", "30", "--seed", "2", "-o"]
    capsys.readouterr()
    assert main([*args, str(tmp_path / "s.png"), "--judge", str(classifier)]) == 0
    out = capsys.readouterr().out
    assert "drew [30, 64] from" in out and "(vae, seed 2)" in out
    assert "judge, samples: confidence " in out and " of 10 classes (counts " in out
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG
    assert main([*args, str(tmp_path / "s.npy"), "--json", "--reference", "builtin:digits"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["samples"] == [30, 64] and report["kind"] == "vae" and "judge" not in report
    assert main([*args, str(tmp_path / "t.npy"), "--judge", str(classifier), "--json",
                 "--reference", "builtin:digits"]) == 0  # fmt: skip
    judged = json.loads(capsys.readouterr().out)["judge"]
    assert sum(judged["counts"]) == 30 and sum(judged["noise"]["counts"]) == 30
    assert sum(judged["data"]["counts"]) == 1797
    assert set(report["reference"]) == {"data", "mmd", "mmd_noise", "nearest_neighbour",
                                        "nearest_neighbour_noise"}  # fmt: skip
    np.testing.assert_allclose(np.load(tmp_path / "s.npy"), open_sampler(vae_model).draw(30, 2),
                               rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "ddim"], "vae.onnx is a vae: --method and --steps are a diffusion model's"),
        (["--label", "3"], "vae.onnx is not conditional: it takes no label"),
        (["-n", "0"], "the number of samples must be 1..100,000, got 0"),
        (["-o", "x.jpg"], "samples are written as .png or .npy, not '.jpg'"),
        (["--reference", "nothing.csv"], "--reference takes builtin:NAME(...) or an existing"),
        (["--reference", "builtin:moons"], "the samples have 64 values per row, the reference 2"),
        (["--judge", "nowhere"], "--judge: 'nowhere' is neither an ONNX model nor a run folder"),
    ],
)
def test_dlc_sample_errors(vae_model, tmp_path, monkeypatch, capsys, args, message) -> None:  # noqa: ANN001
    monkeypatch.chdir(tmp_path)
    assert main(["sample", str(vae_model), *args]) == 1  # in-process: main's error handling
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert not list(tmp_path.iterdir())  # nothing written


def test_dlc_sample_refuses_a_model_without_a_sampler(tmp_path, capsys) -> None:  # noqa: ANN001
    model = tmp_path / "mlp.onnx"
    assert main(["compile", str(SPECS / "digits_mlp.yaml"), "-o", str(model)]) == 0
    assert main(["sample", str(model)]) == 1
    assert "mlp.onnx has nothing to sample: dlc sample draws from a VAE" in capsys.readouterr().err
    assert main(["sample", str(tmp_path)]) == 1
    assert "is a folder but not a run folder: it has no model.onnx" in capsys.readouterr().err
