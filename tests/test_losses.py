"""The losses and metrics of runtime/train/losses.py against their formulas in numpy: each
loss's value, the stable forms at extreme logits, fitting numpy-shaped targets to the
output, the DataError for a target that cannot fit, weighted sums of terms, and epoch
metrics (accuracy over all examples, R² about the epoch's mean)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from conftest import case_id
from dlc.compiler.errors import DataError, TrainError
from dlc.compiler.training import LOSSES
from dlc.runtime.train.losses import (
    LOSS_FUNCTIONS,
    Metrics,
    OutputsLoss,
    infer_task,
    kl_normal,
    make_loss,
    total_loss,
)

RNG = np.random.default_rng(0)



def t(a: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=dtype)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    m = z.max(axis=axis, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=axis, keepdims=True))


def test_every_table_entry_is_built() -> None:
    assert set(LOSS_FUNCTIONS) == set(LOSSES)


# ---- values against formulas -----------------------------------------------------------

PRED = RNG.normal(size=(6, 2))
TRUE = RNG.normal(size=(6, 2)) * 2


def huber(r: np.ndarray, d: float) -> float:
    return float(np.where(np.abs(r) <= d, 0.5 * r**2, d * (np.abs(r) - 0.5 * d)).mean())


def bce(z: np.ndarray, y: np.ndarray) -> float:
    # −[y log σ(z) + (1−y) log(1−σ(z))], in the form that stays finite for large |z|
    return float((np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))).mean())


REGRESSION: list[tuple[str, dict[str, Any], Callable[[np.ndarray, np.ndarray], float]]] = [
    ("mse", {}, lambda p, y: float(((p - y) ** 2).mean())),
    ("l1", {}, lambda p, y: float(np.abs(p - y).mean())),
    ("huber", {}, lambda p, y: huber(p - y, 1.0)),
    ("huber", {"delta": 0.5}, lambda p, y: huber(p - y, 0.5)),
    ("huber", {"delta": 10.0}, lambda p, y: float((0.5 * (p - y) ** 2).mean())),
]


@pytest.mark.parametrize(("name", "args", "formula"), REGRESSION, ids=case_id)
def test_regression_losses(name: str, args: dict, formula: Callable) -> None:
    got = make_loss(name, args)(t(PRED), t(TRUE))
    assert got.item() == pytest.approx(formula(PRED, TRUE), rel=1e-12)


def test_bce_takes_logits() -> None:
    z = RNG.normal(size=(8, 1)) * 3
    y = (RNG.random(size=(8, 1)) > 0.5).astype(np.float64)
    sig = 1 / (1 + np.exp(-z))
    direct = -(y * np.log(sig) + (1 - y) * np.log(1 - sig)).mean()
    got = make_loss("bce", {})(t(z), t(y)).item()
    assert got == pytest.approx(direct, rel=1e-10)
    assert got == pytest.approx(bce(z, y), rel=1e-12)


def test_bce_is_stable_at_extreme_logits() -> None:
    z = torch.tensor([100.0, -100.0, 100.0, -100.0], requires_grad=True)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    loss = make_loss("bce", {})(z, y)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(50.0)  # (100 + 100 + 0 + 0)/4
    loss.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_cross_entropy_is_minus_log_softmax() -> None:
    z = RNG.normal(size=(5, 4)) * 2
    y = np.array([0, 3, 1, 2, 3])
    expected = -log_softmax(z)[np.arange(5), y].mean()
    assert make_loss("cross_entropy", {})(t(z), t(y)).item() == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_is_stable_at_extreme_logits() -> None:
    z = torch.tensor([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]])
    loss = make_loss("cross_entropy", {})(z, torch.tensor([2, 1]))
    assert loss.item() == pytest.approx(2000.0 / 2)  # −log softmax: 2000 and 0


def test_cross_entropy_label_smoothing() -> None:
    z, y, eps, c = RNG.normal(size=(5, 4)), np.array([0, 3, 1, 2, 3]), 0.2, 4
    logp = log_softmax(z)
    # the smoothed target (1−ε)·onehot + ε/C
    smooth = np.full((5, c), eps / c)
    smooth[np.arange(5), y] += 1 - eps
    expected = -(smooth * logp).sum(axis=1).mean()
    got = make_loss("cross_entropy", {"label_smoothing": eps})(t(z), t(y)).item()
    assert got == pytest.approx(expected, rel=1e-12)


def test_nll_takes_log_probabilities() -> None:
    logp = log_softmax(RNG.normal(size=(5, 3)))
    y = np.array([2, 0, 1, 1, 0])
    assert make_loss("nll", {})(t(logp), t(y)).item() == pytest.approx(
        -logp[np.arange(5), y].mean(), rel=1e-12
    )
    # nll of log_softmax is cross_entropy of the logits
    z = t(RNG.normal(size=(5, 3)))
    torch.testing.assert_close(
        make_loss("nll", {})(torch.log_softmax(z, -1), t(y)),
        make_loss("cross_entropy", {})(z, t(y)),
    )


# ---- fitting targets -------------------------------------------------------------------

Z3 = RNG.normal(size=(4, 3))
Y3 = np.array([2, 0, 1, 2])
CE3 = -log_softmax(Z3)[np.arange(4), Y3].mean()
SEQ = RNG.normal(size=(2, 5, 3))  # [B, T, C]
SEQ_Y = RNG.integers(0, 3, size=(2, 5))
SEQ_CE = -np.take_along_axis(log_softmax(SEQ), SEQ_Y[..., None], axis=-1).mean()
PROBS = np.exp(log_softmax(RNG.normal(size=(4, 3))))
PROB_CE = -(PROBS * log_softmax(Z3)).sum(axis=1).mean()
IMG = RNG.normal(size=(2, 3, 2, 2))  # [B, C, H, W]: torch's layout, class axis at 1
IMG_Y = RNG.integers(0, 3, size=(2, 2, 2))
IMG_CE = -np.take_along_axis(log_softmax(IMG, axis=1), IMG_Y[:, None], axis=1).mean()
P1 = RNG.normal(size=(4, 1))
V4 = np.array([0.5, -1.0, 2.0, 0.0])
MSE_COL = float(((P1[:, 0] - V4) ** 2).mean())

# loss, output, target (as numpy gave it), expected value
FITS: list[tuple[str, np.ndarray, np.ndarray, float]] = [
    ("cross_entropy", Z3, Y3, CE3),  # int64 indices [B]
    ("cross_entropy", Z3, Y3.astype(np.int32), CE3),
    ("cross_entropy", Z3, Y3.astype(np.uint8), CE3),
    ("cross_entropy", Z3, Y3[:, None], CE3),  # a [B, 1] column of labels
    ("cross_entropy", Z3, Y3.astype(np.float64), CE3),  # a CSV's integral floats
    ("cross_entropy", Z3, np.eye(3)[Y3], CE3),  # one-hot rows: probabilities
    ("cross_entropy", Z3, PROBS, PROB_CE),
    ("cross_entropy", SEQ, SEQ_Y, SEQ_CE),  # [B, T, C] with [B, T]: class axis moved
    ("cross_entropy", IMG, IMG_Y, IMG_CE),  # already [B, C, H, W]
    ("nll", log_softmax(Z3), Y3[:, None].astype(np.int32), CE3),
    ("nll", log_softmax(Z3), PROBS, PROB_CE),
    ("nll", log_softmax(SEQ), SEQ_Y, SEQ_CE),
    ("mse", P1, V4, MSE_COL),  # [B] for [B, 1]
    ("mse", P1[:, 0], V4[:, None], MSE_COL),  # [B, 1] for [B]
    ("mse", P1, np.array([1, 0, 2, 3]), float(((P1[:, 0] - [1, 0, 2, 3]) ** 2).mean())),
    ("l1", P1, V4.astype(np.float32), float(np.abs(P1[:, 0] - V4).mean())),
    ("bce", P1, np.array([1, 0, 0, 1]), bce(P1[:, 0], np.array([1.0, 0, 0, 1]))),
    ("bce", P1, np.array([True, False, False, True]), bce(P1[:, 0], np.array([1.0, 0, 0, 1]))),
]


@pytest.mark.parametrize(("name", "out", "target", "expected"), FITS,
                         ids=case_id)  # fmt: skip
def test_targets_fit_the_output(
    name: str, out: np.ndarray, target: np.ndarray, expected: float
) -> None:
    got = make_loss(name, {})(t(out, torch.float32), t(target))
    assert got.dtype == torch.float32
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_float64_outputs_keep_their_precision() -> None:
    got = make_loss("mse", {})(t(P1), t(V4.astype(np.float32)))
    assert got.dtype == torch.float64


def test_ignored_positions_do_not_count() -> None:
    y = SEQ_Y.copy()
    y[1, 3:] = -100  # padding
    keep = y != -100
    picked = np.take_along_axis(log_softmax(SEQ), np.where(keep, y, 0)[..., None], -1)[..., 0]
    expected = -picked[keep].mean()
    got = make_loss("cross_entropy", {})(t(SEQ), t(y)).item()
    assert got == pytest.approx(expected, rel=1e-12)


MISFITS: list[tuple[str, tuple[int, ...], np.ndarray, str]] = [
    ("mse", (4, 1), np.zeros(5), "[5]"),
    ("mse", (4, 2), np.zeros((2, 4)), "[2, 4]"),  # same count, but the batch axis differs
    ("huber", (4,), np.zeros((4, 3)), "[4, 3]"),
    ("bce", (4, 1), np.zeros((4, 2)), "[4, 2]"),
    ("cross_entropy", (4, 3), np.zeros((4, 2), dtype=np.int64), "[4, 2]"),
    ("cross_entropy", (4, 3), np.zeros(5, dtype=np.int64), "[5]"),
    ("cross_entropy", (4,), np.zeros(4, dtype=np.int64), "[4]"),
    ("nll", (2, 5, 3), np.zeros((2, 4), dtype=np.int64), "[2, 4]"),
]


@pytest.mark.parametrize(("name", "out_shape", "target", "target_shape"), MISFITS, ids=case_id)
def test_a_target_that_cannot_fit_is_a_data_error(
    name: str, out_shape: tuple[int, ...], target: np.ndarray, target_shape: str
) -> None:
    out = torch.zeros(out_shape)
    with pytest.raises(DataError) as e:
        make_loss(name, {})(out, t(target))
    out_text = "[" + ", ".join(map(str, out_shape)) + "]"
    assert e.value.message == (
        f"loss {name}: the model output has shape {out_text} but the target has shape "
        f"{target_shape}"
    )
    assert e.value.hint  # what the loss expects


@pytest.mark.parametrize(
    ("name", "out", "target", "message"),
    [
        ("cross_entropy", torch.zeros(3, 4), [0, 4, 1],
         "loss cross_entropy: target class 4 is outside 0..3 (the output [3, 4] has 4 classes)"),
        ("nll", torch.zeros(2, 3), [-1, 0],
         "loss nll: target class -1 is outside 0..2 (the output [2, 3] has 3 classes)"),
        ("cross_entropy", torch.zeros(2, 3), [0.5, 1.0],
         "loss cross_entropy: the target holds fractional values, not class indices "
         "(output [2, 3], target [2])"),
        ("bce", torch.zeros(3, 1), [0, 1, 2],
         "loss bce: targets must lie in [0, 1], got 2 (output [3, 1])"),
        ("bce", torch.zeros(2), [float("nan"), 1.0],
         "loss bce: targets must lie in [0, 1], got nan (output [2])"),
    ],
)  # fmt: skip
def test_bad_target_values_are_data_errors(
    name: str, out: torch.Tensor, target: list, message: str
) -> None:
    with pytest.raises(DataError) as e:
        make_loss(name, {})(out, torch.tensor(target))
    assert e.value.message == message


def test_unknown_loss() -> None:
    with pytest.raises(TrainError) as e:
        make_loss("cross_entropi", {})
    assert e.value.message == "unknown loss 'cross_entropi' (did you mean 'cross_entropy'?)"
    with pytest.raises(TrainError, match="huber has no argument 'beta'"):
        make_loss("huber", {"beta": 1.0})


# ---- total_loss ------------------------------------------------------------------------


def test_total_loss_weights_terms() -> None:
    mse, l1 = make_loss("mse", {}), make_loss("l1", {})
    outputs = {"recon": t(PRED), "code": t(PRED[:, :1])}
    targets = {"x": t(TRUE), "c": t(TRUE[:, 0])}
    terms = [(1.0, mse, "recon", "x"), (0.5, l1, "code", "c"), (2.0, l1, "recon", "x")]
    total, values = total_loss(terms, outputs, targets)
    m = float(((PRED - TRUE) ** 2).mean())
    a = float(np.abs(PRED[:, 0] - TRUE[:, 0]).mean())
    b = float(np.abs(PRED - TRUE).mean())
    assert total.item() == pytest.approx(m + 0.5 * a + 2.0 * b, rel=1e-12)
    assert list(values) == ["recon", "code", "recon/x"]  # a shared output: output/target
    assert [v.item() for v in values.values()] == pytest.approx([m, a, b], rel=1e-12)
    assert not any(v.requires_grad for v in values.values())


def test_total_loss_keeps_the_graph() -> None:
    out = torch.zeros(3, requires_grad=True)
    total, _ = total_loss([(3.0, make_loss("mse", {}), "y", "y")], {"y": out},
                          {"y": torch.ones(3)})  # fmt: skip
    total.backward()
    torch.testing.assert_close(out.grad, torch.full((3,), 3.0 * 2 * -1 / 3))


def test_total_loss_names_a_missing_output() -> None:
    with pytest.raises(DataError) as e:
        total_loss([(1.0, make_loss("mse", {}), "z", "y")], {"y": torch.zeros(2)},
                   {"y": torch.zeros(2)})  # fmt: skip
    assert e.value.message == "a loss term names the output 'z', which is not there"
    assert e.value.hint == "outputs: y"


# ---- kl_normal: a loss of model outputs ------------------------------------------------


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3), (6,)], ids=str)
def test_kl_normal_is_the_kl_divergence_to_the_standard_normal(shape: tuple[int, ...]) -> None:
    """KL(N(μ, σ²) ‖ N(0, I)), summed over the latent axes and averaged over the batch."""
    mu = torch.randn(shape, dtype=torch.float64)
    logvar = torch.randn(shape, dtype=torch.float64)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros(shape), torch.ones(shape))
    kl = torch.distributions.kl_divergence(q, p).reshape(shape[0], -1).sum(1).mean()
    torch.testing.assert_close(kl_normal(mu, logvar), kl)
    assert kl_normal(torch.zeros(shape), torch.zeros(shape)).item() == 0.0


def test_kl_normal_term_reads_its_outputs() -> None:
    kl = make_loss("kl_normal", {"mu": "m", "logvar": "lv"})
    assert isinstance(kl, OutputsLoss) and kl.label == "kl_normal(m, lv)"
    mu = torch.randn(4, 2, requires_grad=True)
    logvar = torch.randn(4, 2, requires_grad=True)
    recon, x = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8)
    outputs = {"recon": recon, "m": mu, "lv": logvar}
    terms = [(1.0, make_loss("mse", {}), "recon", "x"), (0.5, kl, "recon", "y")]
    total, values = total_loss(terms, outputs, {"x": x})  # the KL term needs no target
    want = torch.nn.functional.mse_loss(recon, x) + 0.5 * kl_normal(mu, logvar)
    torch.testing.assert_close(total, want)
    assert list(values) == ["recon", "kl_normal(m, lv)"]
    total.backward()
    assert mu.grad is not None and logvar.grad is not None


def test_kl_normal_errors() -> None:
    kl = make_loss("kl_normal", {"mu": "m", "logvar": "lv"})
    with pytest.raises(DataError) as e:
        total_loss([(1.0, kl, "m", "y")], {"m": torch.zeros(2, 3)}, {})
    assert e.value.message == "a loss term names the output 'lv', which is not there"
    with pytest.raises(DataError) as e:
        kl_normal(torch.zeros(2, 3), torch.zeros(2, 4))
    assert e.value.message == "loss kl_normal: mu has shape [2, 3] but logvar has shape [2, 4]"
    with pytest.raises(TrainError, match="kl_normal needs the argument 'logvar'"):
        make_loss("kl_normal", {"mu": "m"})


# ---- metrics ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loss", "shape", "task"),
    [
        ("cross_entropy", ("B", 10), "classification"),
        ("nll", ("B", 10), "classification"),
        ("cross_entropy", ("B", "T", 100), "sequence"),
        ("bce", ("B", 1), "binary"),
        ("mse", ("B", 1), "regression"),
        ("l1", ("B", 3), "regression"),
        ("huber", ("B",), "regression"),
    ],
)
def test_infer_task(loss: str, shape: tuple, task: str) -> None:
    assert infer_task(loss, shape) == task


def test_accuracy_counts_examples_over_the_epoch() -> None:
    m = Metrics("classification")
    # 1 of 1 right, then 1 of 3: 2/4 over the epoch (not the mean 2/3 of batch accuracies)
    m.update(torch.tensor([[0.1, 0.9]]), torch.tensor([1]))
    m.update(torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]]), torch.tensor([[1], [1], [1]]))
    assert m.compute() == {"accuracy": 0.5}
    m.reset()
    assert m.compute() == {}


def test_accuracy_with_probability_targets() -> None:
    m = Metrics("classification")
    m.update(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([[0.3, 0.7], [0.4, 0.6]]))
    assert m.compute() == {"accuracy": 0.5}


def test_sequence_accuracy_skips_ignored_positions() -> None:
    out = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])  # [1, 3, 2]: predicts 0, 1, 0
    m = Metrics("sequence")
    m.update(out, torch.tensor([[0, 0, -100]]))
    assert m.compute() == {"accuracy": 0.5}


def test_binary_accuracy() -> None:
    m = Metrics("binary")
    m.update(torch.tensor([[2.0], [-1.0], [0.5], [-0.1]]), torch.tensor([1, 0, 0, 1]))  # 2 right
    m.update(torch.tensor([3.0]), torch.tensor([[1.0]]))  # right
    assert m.compute() == {"accuracy": 0.6}
    two = Metrics("binary")  # two logits per example: the argmax
    two.update(torch.tensor([[0.0, 1.0], [2.0, 1.0], [0.0, 1.0]]), torch.tensor([1, 1, 0]))
    assert two.compute() == {"accuracy": pytest.approx(1 / 3)}


def test_regression_metrics_over_the_epoch() -> None:
    y = RNG.normal(size=(10, 2)) * [1.0, 5.0] + [0.0, 100.0]
    p = y + RNG.normal(size=(10, 2)) * [0.5, 2.0]
    m = Metrics("regression")
    m.update(t(p[:3]), t(y[:3]))
    m.update(t(p[3:4]), t(y[3:4]))  # a batch of one
    m.update(t(p[4:]), t(y[4:]))
    got = m.compute()
    r2 = 1 - ((p - y) ** 2).sum(axis=0) / ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    assert got["mse"] == pytest.approx(((p - y) ** 2).mean(), rel=1e-12)
    assert got["mae"] == pytest.approx(np.abs(p - y).mean(), rel=1e-12)
    assert got["r2"] == pytest.approx(r2.mean(), rel=1e-12)  # each column's R², averaged


def test_r2_on_a_known_case() -> None:
    # y = 1, 2, 3, 4 (mean 2.5, SS_tot 5); errors 0.5, 0, 0, −0.5 (SS_res 0.5): R² = 0.9
    m = Metrics("regression")
    m.update(torch.tensor([[1.5], [2.0]]), torch.tensor([1.0, 2.0]))
    m.update(torch.tensor([[3.0], [3.5]]), torch.tensor([3.0, 4.0]))
    got = m.compute()
    assert got == {"mse": pytest.approx(0.125), "mae": pytest.approx(0.25),
                   "r2": pytest.approx(0.9)}  # fmt: skip
    # per batch the R²s would be 1 − 0.25/0.5 = 0.5 and 1 − 0.25/0.5 = 0.5: not 0.9


def test_r2_of_a_constant_target() -> None:
    exact, off = Metrics("regression"), Metrics("regression")
    exact.update(torch.full((3,), 2.0), torch.full((3,), 2.0))
    off.update(torch.tensor([1.0, 2.0, 3.0]), torch.full((3,), 2.0))
    assert exact.compute()["r2"] == 1.0 and off.compute()["r2"] == 0.0


def test_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        Metrics("ranking")
