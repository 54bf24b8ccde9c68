"""Tests of the layer library's generative pieces and the rest of normalization: groupnorm,
stochastic_depth (drop_path in the IR), gaussian_sample, batchnorm on [B, C, L] and
[B, C, H, W]. Their rows of the registry tables (test_registry and test_parity run
them), the ONNX models against numpy references, the training-time behaviour of each op
against its definition, and the VAE spec trained with its kl_normal term."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from conftest import ROOT, check_layer, random_weights, run_dlc
from dlc.compiler.dims import evaluate
from dlc.compiler.errors import DlcError, ElaborationError
from dlc.compiler.ir import Graph, Node
from dlc.compiler.lower.onnx import to_onnx
from dlc.compiler.lower.torch import to_torch
from dlc.compiler.ops import REGISTRY
from dlc.compiler.ops.registry import Example
from dlc.compiler.pipeline import Checked, check_text
from dlc.runtime.train.loop import Trainer
from dlc.runtime.train.losses import kl_normal


def _shape(e: Example) -> str:
    """The input as one_layer writes it: the shape, with its dtype if not float32."""
    return f"{{shape: {e.shape}, dtype: {e.dtype}}}" if e.dtype else e.shape


# op -> [(layer text, input shape, expected output shape)]: the examples of these ops
# that the differential tests run (their OpDefs carry them)
SHAPES: dict[str, list[tuple[str, str, str]]] = {
    op: [(e.layer, _shape(e), e.out) for e in REGISTRY[op].examples if e.parity]
    for op in (
        "groupnorm",
        "stochastic_depth",
        "drop_path",
        "gaussian_sample",
    )
}


ENV = {"B": 3, "T": 5, "H": 4, "W": 6}  # values for the symbolic dims


# ---- numpy references (float64), independent of both lowerings ------------------------


def groupnorm_ref(node: Node, xs: list[np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
    """Each sample's channels in G groups; each group normalized over its channels and
    positions with the biased variance; then γ, β per channel."""
    x = xs[0]
    g = x.reshape(len(x), node.attr("groups"), -1)
    mean, var = g.mean(axis=2, keepdims=True), g.var(axis=2, keepdims=True)
    y = ((g - mean) / np.sqrt(var + node.attr("eps"))).reshape(x.shape)
    if not node.attr("affine"):
        return y
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    return y * p["weight"].reshape(per_channel) + p["bias"].reshape(per_channel)


def batchnorm_ref(node: Node, xs: list[np.ndarray], p: dict[str, np.ndarray]) -> np.ndarray:
    """Inference: the running statistics, then γ, β per channel (axis 1)."""
    x = xs[0]
    per_channel = (1, -1) + (1,) * (x.ndim - 2)
    mean, var = (p[k].reshape(per_channel) for k in ("running_mean", "running_var"))
    y = (x - mean) / np.sqrt(var + node.attr("eps"))
    if node.attr("affine"):
        y = y * p["weight"].reshape(per_channel) + p["bias"].reshape(per_channel)
    return y


# op -> reference(node, inputs, params by local name), inference semantics
REFERENCE: dict[str, Callable[[Node, list[np.ndarray], dict[str, np.ndarray]], np.ndarray]] = {
    "groupnorm": groupnorm_ref,
    "drop_path": lambda node, xs, p: xs[0],  # the identity at inference
    "gaussian_sample": lambda node, xs, p: xs[0],  # the mean
    "batchnorm": batchnorm_ref,
}


def run_reference(graph: Graph, weights: dict, feeds: dict) -> dict[str, np.ndarray]:
    env = {k: v.astype(np.float64) for k, v in feeds.items()}
    for node in graph.nodes:
        params = {p.name: weights[f"{node.name}.{p.name}"].astype(np.float64)
                  for p in node.params}  # fmt: skip
        xs = [env[i] for i in node.inputs]
        if node.op in REFERENCE:
            env[node.name] = REFERENCE[node.op](node, xs, params)
        elif node.op in ("residual_add", "add"):
            env[node.name] = xs[0] + xs[1]
        elif node.op == "dense":
            env[node.name] = xs[0] @ params["weight"].T + params["bias"]
        else:
            assert node.op in ("identity", "relu", "tanh"), node.op
            env[node.name] = {"identity": lambda a: a, "relu": lambda a: np.maximum(a, 0),
                              "tanh": np.tanh}[node.op](xs[0])  # fmt: skip
    return {name: env[value] for name, value in graph.outputs}



def inputs(checked: Checked, env: dict[str, int], seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i.name: (2 * rng.standard_normal([evaluate(d, env) for d in i.type.shape]) + 0.5)
            .astype(np.float32) for i in checked.graph.inputs}  # fmt: skip


def inferred_dims(model: onnx.ModelProto) -> dict[str, list]:
    """The output dims ONNX shape inference finds with the declared ones cleared."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for o in m.graph.output:
        o.type.tensor_type.ClearField("shape")
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    return {o.name: [d.dim_value if d.HasField("dim_value") else None
                     for d in o.type.tensor_type.shape.dim] for o in m.graph.output}  # fmt: skip


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


# every SHAPES row, and batchnorm on sequences and images with running statistics
ONNX_CASES = [(layer, shape) for rows in SHAPES.values() for layer, shape, _ in rows] + [
    ("batchnorm", "[B, 4, T]"),
    ("batchnorm(eps=0.001, affine=false)", "[B, 3, T]"),
    ("batchnorm(momentum=0.3)", "[B, 3, H, W]"),
    ("batchnorm(affine=false)", "[2, 5, 4, 4]"),
    ("groupnorm(2, affine=false)", "[B, 4, H, W]"),
    ("groupnorm(4, eps=0.1)", "[B, 8, T]"),
]


@pytest.mark.parametrize(("layer", "shape"), ONNX_CASES, ids=[f"{a}:{b}" for a, b in ONNX_CASES])
def test_onnx_model_torch_and_reference_agree(layer: str, shape: str) -> None:
    """Full checker; ONNX shape inference agrees with the IR; at two batch sizes,
    onnxruntime equals the float64 reference and the torch module in eval mode; the
    shape torch produces is the IR's."""
    checked = check_layer(layer, shape)
    weights = random_weights(checked.graph)
    model = to_onnx(checked.graph, weights)
    onnx.checker.check_model(model, full_check=True)
    want_type = checked.graph.types()[dict(checked.graph.outputs)["y"]]
    dims = inferred_dims(model)["y"]
    assert [d if isinstance(d, int) else None for d in want_type.shape] == dims
    module = to_torch(checked.graph, weights).eval()
    for batch in (1, 3):
        env = dict(ENV, B=batch)
        feeds = inputs(checked, env)
        (got,) = session(model).run(None, feeds)
        want = run_reference(checked.graph, weights, feeds)["y"]
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        with torch.no_grad():
            ours = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
        assert ours.shape == tuple(evaluate(d, env) for d in want_type.shape)
        scale = float(np.abs(got).max())
        np.testing.assert_allclose(ours, got, rtol=0, atol=1e-6 + 1e-5 * scale)


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layer", "shape", "message", "col"),
    [
        ("groupnorm(3)", "[B, 8, H, W]",
         "groupnorm(3) splits the channels into 3 equal groups, but [B, 8, H, W] has 8 "
         "channels", 5),
        ("groupnorm(2)", "[B, C, T]", "groupnorm needs a known channel count on axis 1", 5),
        ("groupnorm(1)", "[B]", "groupnorm needs [B, C, ...], got [B]", 5),
        ("groupnorm(0)", "[B, 4]", "argument 'groups': expected an integer >= 1, got 0", 15),
        ("dense(4) -> stochastic_depth(0.1)", "[B, 4]",
         "stochastic_depth is valid only inside residual(...)", 17),
        ("residual(stochastic_depth(0.1) -> dense(4))", "[B, 4]",
         "stochastic_depth must be the last op of the residual body", 14),
        ("residual(parallel(stochastic_depth(0.1), relu, merge=add))", "[B, 4]",
         "stochastic_depth must be the last op of the residual body", 23),
        ("residual(dense(4) -> stochastic_depth(1))", "[B, 4]",
         "argument 'p': expected a probability in [0, 1), got 1", 43),
        ("residual(dense(4) -> stochastic_depth(0.1, mode=col))", "[B, 4]",
         "expected one of row, batch, got string 'col'", 53),
        ("gaussian_sample(dense(4), dense(3))", "[B, 8]",
         "gaussian_sample needs mu and logvar of one shape, got [B, 4] and [B, 3]", 5),
        ("gaussian_sample(dense(4))", "[B, 8]", "gaussian_sample needs 2 tensors, got 1", 5),
    ],
)  # fmt: skip
def test_errors_are_located(layer: str, shape: str, message: str, col: int) -> None:
    with pytest.raises(DlcError) as info:
        check_layer(layer, shape)
    assert message in info.value.render()
    loc = info.value.loc
    assert loc is not None and (loc.line, loc.col) == (6, col)  # the layer's line


def test_the_hints_say_what_to_write() -> None:
    with pytest.raises(DlcError) as info:
        check_layer("groupnorm(3)", "[B, 8, T]")
    assert info.value.hint == "use a number of groups that divides 8: 1, 2, 4, 8"
    with pytest.raises(DlcError) as info:
        check_layer("relu -> stochastic_depth(0.1)")
    assert info.value.hint is not None and "residual(dense(64) -> relu -> stochastic_depth" in (
        info.value.hint
    )


def test_stochastic_depth_may_end_a_block_used_as_a_residual_body() -> None:
    text = """dlc: 1
name: t
inputs: {x: [B, 8]}
blocks:
  branch(w):
    - dense(w) -> relu
    - stochastic_depth(0.25)
model:
  - residual(branch(8)) -> residual(dense(8) -> stochastic_depth(0.5))
"""
    graph = check_text(text, "t.yaml").graph
    assert [n.op for n in graph.nodes].count("drop_path") == 2
    drops = [n for n in graph.nodes if n.op == "drop_path"]
    assert [n.attr("p") for n in drops] == [0.25, 0.5]
    adds = [n for n in graph.nodes if n.op == "residual_add"]
    assert [a.inputs[1] for a in adds] == [d.name for d in drops]


# ---- training-time behaviour ------------------------------------------------------------


def torchvision_stochastic_depth(x: torch.Tensor, p: float, mode: str) -> torch.Tensor:
    """torchvision.ops.stochastic_depth(x, p, mode, training=True), as it is written."""
    survival_rate = 1.0 - p
    size = [x.shape[0]] + [1] * (x.ndim - 1) if mode == "row" else [1] * x.ndim
    noise = torch.empty(size, dtype=x.dtype, device=x.device).bernoulli_(survival_rate)
    if survival_rate > 0.0:
        noise.div_(survival_rate)
    return x * noise


def _residual_module(mode: str, p: float = 0.5) -> tuple[nn.Module, nn.Module]:
    checked = check_layer(f"residual(dense(6) -> stochastic_depth({p}, mode={mode}))", "[B, 6]")
    module = to_torch(checked.graph, random_weights(checked.graph))
    return module, module.get_submodule("residual.dense")


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_is_torchvisions_in_training(mode: str) -> None:
    module, branch = _residual_module(mode)
    x = torch.randn(400, 6)
    with torch.no_grad():
        torch.manual_seed(3)
        ours = module.train()(x)
        torch.manual_seed(3)
        theirs = x + torchvision_stochastic_depth(branch(x), 0.5, mode)
        assert torch.equal(ours, theirs)
        assert torch.allclose(module.eval()(x), x + branch(x))  # the identity at inference


def test_stochastic_depth_drops_whole_rows_with_probability_p() -> None:
    module, branch = _residual_module("row", p=0.25)
    x = torch.randn(4000, 6)
    torch.manual_seed(0)
    with torch.no_grad():
        y, f = module.train()(x), branch(x)
    dropped = torch.isclose(y, x, atol=1e-6).all(dim=1)
    kept = torch.isclose(y, x + f / 0.75, atol=1e-5).all(dim=1)
    assert bool((dropped | kept).all())  # whole rows: kept rows are scaled by 1/(1-p)
    assert abs(float(dropped.float().mean()) - 0.25) < 0.03


def test_gaussian_sample_reparameterizes_in_training() -> None:
    text = """dlc: 1
name: t
inputs: {mu: [B, 3], logvar: [B, 3]}
model:
  z: gaussian_sample(mu, logvar)
"""
    checked = check_text(text, "t.yaml")
    module = to_torch(checked.graph).train()
    mu = torch.tensor([[1.5, -2.0, 0.0]]).repeat(20000, 1).requires_grad_()
    logvar = torch.log(torch.tensor([[0.25, 4.0, 1.0]])).repeat(20000, 1).requires_grad_()
    torch.manual_seed(0)
    z = module(mu=mu, logvar=logvar)
    torch.testing.assert_close(z.mean(0), mu[0].detach(), atol=0.05, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([0.5, 2.0, 1.0]), atol=0.05, rtol=0)
    z.sum().backward()  # dz/dμ = 1, dz/dlogvar = ½·σ·ε = ½·(z − μ)
    assert mu.grad is not None and logvar.grad is not None
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * (z - mu).detach())
    with torch.no_grad():
        assert torch.equal(module.eval()(mu=mu, logvar=logvar), mu)  # the mean at inference


def test_gaussian_sample_true_samples_at_inference_in_torch_and_onnx() -> None:
    text = """dlc: 1
name: t
inputs: {mu: [B, 2], logvar: [B, 2]}
model:
  z: gaussian_sample(mu, logvar, sample=true)
"""
    checked = check_text(text, "t.yaml")
    model = to_onnx(checked.graph, {})
    onnx.checker.check_model(model, full_check=True)
    assert "RandomNormalLike" in {n.op_type for n in model.graph.node}
    assert inferred_dims(model)["y"] == [None, 2]
    feeds = {"mu": np.tile(np.float32([[3.0, -1.0]]), (20000, 1)),
             "logvar": np.tile(np.log(np.float32([[0.04, 9.0]])), (20000, 1))}  # fmt: skip
    run = session(model)
    (a,), (b,) = run.run(None, feeds), run.run(None, feeds)
    assert a.shape == (20000, 2) and not np.array_equal(a, b)  # a fresh draw on every run
    np.testing.assert_allclose(a.mean(0), [3.0, -1.0], atol=0.06)
    np.testing.assert_allclose(a.std(0), [0.2, 3.0], rtol=0.03)
    module = to_torch(checked.graph).eval()
    with torch.no_grad():
        z = module(**{k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    np.testing.assert_allclose(z.std(0), [0.2, 3.0], rtol=0.03)


@pytest.mark.parametrize(
    ("shape", "reference"),
    [((8, 4, 5), lambda: nn.BatchNorm1d(4, momentum=0.2)),
     ((8, 3, 4, 4), lambda: nn.BatchNorm2d(3, momentum=0.2))],
    ids=["[B, C, L]", "[B, C, H, W]"],
)  # fmt: skip
def test_batchnorm_training_updates_running_stats_and_eval_uses_them(
    shape: tuple[int, ...], reference: Callable[[], nn.Module]
) -> None:
    dims = ", ".join(["B", *map(str, shape[1:])])
    checked = check_layer("batchnorm(momentum=0.2)", f"[{dims}]")
    weights = random_weights(checked.graph)
    weights["batchnorm.num_batches_tracked"] = np.array(0, np.int64)
    module, theirs = to_torch(checked.graph, weights).train(), reference().train()
    theirs.load_state_dict(module.get_submodule("batchnorm").state_dict())
    torch.manual_seed(0)
    for _ in range(3):
        x = 3 * torch.randn(shape) + 1
        torch.testing.assert_close(module(x), theirs(x))
    state = module.state_dict()
    assert int(state["batchnorm.num_batches_tracked"]) == 3
    assert not torch.allclose(state["batchnorm.running_mean"], torch.from_numpy(
        weights["batchnorm.running_mean"]))  # fmt: skip
    for key, value in theirs.state_dict().items():
        torch.testing.assert_close(state[f"batchnorm.{key}"], value)
    # eval: the running statistics, in torch and in the ONNX model of the trained buffers
    x = torch.randn(shape)
    trained = {k: v.numpy() for k, v in state.items()}
    want = batchnorm_ref(
        checked.graph.nodes[0],
        [x.double().numpy()],
        {k.split(".")[-1]: v.astype(np.float64) for k, v in trained.items()},
    )
    with torch.no_grad():
        np.testing.assert_allclose(module.eval()(x).numpy(), want, rtol=1e-5, atol=1e-5)
    (got,) = session(to_onnx(checked.graph, trained)).run(None, {"x": x.numpy()})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


# ---- the VAE's loss ------------------------------------------------------------------------

VAE = ROOT / "specs" / "vae_digits.yaml"

BAD_LOSS = """dlc: 1
name: t
inputs: {{x: [B, 8]}}
model:
  mu: x -> dense(2)
  logvar: x -> dense({width})
  recon: gaussian_sample(mu, mu) -> dense(8)
outputs: {{recon: recon, mu: mu, logvar: logvar}}
training:
  loss:
    - {{loss: mse, output: recon, target: x}}
    - loss: {loss}
"""


@pytest.mark.parametrize(
    ("loss", "width", "message", "col"),
    [
        ("kl_normal(mu, log_var)", 2,
         "loss kl_normal reads the output 'log_var', which the model does not have (did "
         "you mean 'logvar'?)", 27),
        ("kl_normal(mu, logvar)", 3,
         "loss kl_normal needs outputs of one shape, got mu [B, 2] and logvar [B, 3]", 13),
        ("kl_normal(mu, logvar)\n      target: x", 2,
         "loss kl_normal takes no target: it reads the outputs its arguments name", 13),
    ],
)  # fmt: skip
def test_kl_normal_reads_model_outputs_checked_where_written(
    loss: str, width: int, message: str, col: int, tmp_path: Path
) -> None:
    """Checked by `dlc check` itself (the pipeline), on the typed graph."""
    path = tmp_path / "t.yaml"
    path.write_text(BAD_LOSS.format(loss=loss, width=width))
    with pytest.raises(ElaborationError) as info:
        check_text(path.read_text(), str(path))
    assert info.value.message == message
    loc = info.value.loc
    assert loc is not None and (loc.line, loc.col) == (12, col)
    result = run_dlc("check", str(path))
    assert result.returncode == 1 and message in result.stderr
    assert f"t.yaml:12:{col}:" in result.stderr


def test_kl_normal_arguments_are_output_names() -> None:
    with pytest.raises(DlcError) as info:
        check_text(BAD_LOSS.format(loss="kl_normal(mu, 3)", width=2), "t.yaml")
    assert "argument 'logvar': expected the name of a model output, got the number 3" in (
        info.value.render()
    )
    with pytest.raises(DlcError) as info:
        check_text(BAD_LOSS.format(loss="kl_normal(mu)", width=2), "t.yaml")
    assert "kl_normal needs its argument 'logvar'" in info.value.render()


def _kl_of(module: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        out = module.eval()(x=x)
    return float(kl_normal(out["mu"], out["logvar"]))


def test_vae_training_with_the_kl_term_lowers_it(tmp_path: Path) -> None:
    """Two short epochs of specs/vae_digits.yaml with its KL term weighed 1 and weighed
    0 (listed first there: the metrics follow the reconstruction all the same): the
    reconstruction (target: x, the model's input) trains in both, and the KL of q(z|x)
    to N(0, I) ends far lower with the term."""
    from sklearn.datasets import load_digits

    x = torch.from_numpy(load_digits().data.astype(np.float32))
    recon = "    - {loss: mse, output: recon, target: x}\n"
    kl = "    - loss: kl_normal(mu, logvar)\n      weight: {}\n"
    text = VAE.read_text()
    assert recon + kl.format(0.1) in text
    results = {}
    for weight in (1.0, 0.0):
        terms = recon + kl.format(weight) if weight else kl.format(weight) + recon
        path = tmp_path / f"vae_{weight}.yaml"
        path.write_text(text.replace(recon + kl.format(0.1), terms))
        quick = ["training.epochs=2", "training.batch_size=128"]
        checked = check_text(path.read_text(), str(path), quick)
        trainer = Trainer(checked, path, None, quiet=True)
        report = trainer.run()
        assert report["status"] == "finished"
        results[weight] = (_kl_of(trainer.model, x), report["val"]["mse"])
    (kl_with, mse_with), (kl_without, mse_without) = results[1.0], results[0.0]
    assert kl_with < kl_without / 2
    assert mse_with < 25 and mse_without < 25  # the first epoch averages ~44


def test_standalone_model_py_trains_and_infers_like_the_fx_module() -> None:
    """model.py (dlc compile --emit torch) holds DropPath and GaussianSample: the same
    draws in training for the same seed, the same values in eval."""
    from dlc import __version__
    from dlc.compiler.lower.model_py import model_py

    text = """dlc: 1
name: t
inputs: {x: [B, 4, 6]}
model:
  h: x -> groupnorm(2) -> residual(dense(6) -> stochastic_depth(0.5)) -> flatten
  mu: h -> dense(3)
  logvar: h -> dense(3)
  z: gaussian_sample(mu, logvar)
"""
    graph = check_text(text, "t.yaml").graph
    fx_module = to_torch(graph, random_weights(graph))
    namespace: dict = {}
    exec(compile(model_py(graph, __version__), "model.py", "exec"), namespace)  # noqa: S102
    standalone = namespace["Model"]()
    standalone.load_state_dict(fx_module.state_dict())
    x = torch.randn(64, 4, 6)
    results = {}
    for training in (True, False):
        outs = []
        for module in (fx_module, standalone):
            torch.manual_seed(5)
            with torch.no_grad():
                outs.append(module.train(training)(x))
        assert torch.equal(*outs)
        results[training] = outs[0]
    assert not torch.equal(results[True], results[False])  # training draws; eval is the mean
