"""The optimizers, schedules and weight penalty of runtime/train/optimizers.py and
schedules.py against the course's formulas, written out by hand here: a few steps of
each optimizer on fixed gradients or a quadratic, each schedule's lrs against its closed
form, warmup on top of a schedule, and a resumed schedule continuing exactly."""

from __future__ import annotations

import copy
import io
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from conftest import case_id
from dlc.compiler.errors import TrainError
from dlc.compiler.training import OPTIMIZERS, SCHEDULES
from dlc.runtime.train.arguments import bind_args
from dlc.runtime.train.optimizers import (
    NEWTON_MAX_PARAMS,
    OPTIMIZER_BUILDERS,
    Newton,
    _grad_and_hessian,
    _grad_and_hessian_by_rows,
    closure_kind,
    make_optimizer,
    param_groups,
    penalty,
)
from dlc.runtime.train.schedules import SCHEDULER_BUILDERS, make_schedule

# torch registers its forward-mode decompositions with torch.jit.script on first use
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


def test_every_table_entry_is_built() -> None:
    assert set(OPTIMIZER_BUILDERS) == set(OPTIMIZERS)
    assert set(SCHEDULER_BUILDERS) == set(SCHEDULES)


# ---- first-order optimizers on fixed gradients -----------------------------------------
# Two parameters, a 2×2 weight (decayed by adamw) and a bias of 2, run as one flat
# vector of 6 through three fixed gradients. The references below are the course's.

SHAPES = [("w", (2, 2)), ("b", (2,))]
THETA0 = np.array([0.5, -1.0, 2.0, 0.25, 1.5, -0.75])
GRADS = [
    np.array([0.3, -0.2, 1.0, 0.0, -0.5, 0.1]),
    np.array([0.1, 0.4, -0.6, 0.2, 0.05, -0.3]),
    np.array([-0.2, 0.3, 0.9, -0.1, 0.4, 0.2]),
]
WEIGHT_MASK = np.array([1.0, 1, 1, 1, 0, 0])  # which entries are weights (ndim >= 2)


def ref_sgd(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    # the course's momentum: v ← βv − αg; θ ← θ + v (β = 0 is plain SGD: θ − αg)
    v = np.zeros_like(theta)
    for g in grads:
        v = a.get("momentum", 0.0) * v - a["lr"] * g
        theta = theta + v
    return theta


def ref_adagrad(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    r = np.zeros_like(theta)
    for g in grads:
        r = r + g * g
        theta = theta - a["lr"] * g / (a["eps"] + np.sqrt(r))
    return theta


def ref_rmsprop(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    r, buf = np.zeros_like(theta), np.zeros_like(theta)
    for g in grads:
        r = a["rho"] * r + (1 - a["rho"]) * g * g
        step = g / (a["eps"] + np.sqrt(r))
        buf = a["momentum"] * buf + step  # torch's extra momentum; 0 is the course's form
        theta = theta - a["lr"] * buf
    return theta


def ref_adadelta(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    # RMSProp scaled by the EMA of past squared updates (Zeiler 2012)
    rho, eps = a["rho"], a["eps"]
    eg2, edx2 = np.zeros_like(theta), np.zeros_like(theta)
    for g in grads:
        eg2 = rho * eg2 + (1 - rho) * g * g
        dx = -np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx * dx
        theta = theta + a["lr"] * dx
    return theta


def ref_adam(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    b1, b2 = a["beta1"], a["beta2"]
    m, v = np.zeros_like(theta), np.zeros_like(theta)
    for t, g in enumerate(grads, start=1):
        # adamw: decoupled decay of the weights, before the Adam step
        theta = theta - a["lr"] * a.get("weight_decay", 0.0) * WEIGHT_MASK * theta
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - a["lr"] * m_hat / (np.sqrt(v_hat) + a["eps"])
    return theta


def ref_ngd(theta: np.ndarray, grads: list[np.ndarray], a: dict[str, Any]) -> np.ndarray:
    for g in grads:  # ‖g‖ over all parameters together
        theta = theta - a["lr"] * g / np.linalg.norm(g)
    return theta


Ref = Callable[[np.ndarray, list[np.ndarray], dict[str, Any]], np.ndarray]
FIRST_ORDER: list[tuple[str, dict[str, Any], Ref]] = [
    ("gd", {"lr": 0.1}, ref_sgd),
    ("sgd", {"lr": 0.05}, ref_sgd),
    ("sgd", {"lr": 0.05, "momentum": 0.9}, ref_sgd),
    ("adagrad", {"lr": 0.1}, ref_adagrad),
    ("rmsprop", {"lr": 0.01}, ref_rmsprop),
    ("rmsprop", {"lr": 0.01, "rho": 0.5, "momentum": 0.5}, ref_rmsprop),
    ("adadelta", {}, ref_adadelta),
    ("adadelta", {"lr": 0.5, "rho": 0.8}, ref_adadelta),
    ("adam", {}, ref_adam),
    ("adam", {"lr": 0.1, "beta1": 0.5, "beta2": 0.9, "eps": 1e-3}, ref_adam),
    ("adamw", {"lr": 0.1, "weight_decay": 0.5}, ref_adam),
    ("ngd", {"lr": 0.3}, ref_ngd),
]


def named_params(flat: np.ndarray) -> list[tuple[str, nn.Parameter]]:
    out, i = [], 0
    for name, shape in SHAPES:
        n = math.prod(shape)
        data = torch.tensor(flat[i : i + n], dtype=torch.float64).reshape(shape)
        out.append((name, nn.Parameter(data)))
        i += n
    return out


def flat_of(params: list[tuple[str, nn.Parameter]]) -> np.ndarray:
    return np.concatenate([p.detach().numpy().reshape(-1) for _, p in params])


def set_grads(params: list[tuple[str, nn.Parameter]], g: np.ndarray) -> None:
    i = 0
    for _, p in params:
        p.grad = torch.tensor(g[i : i + p.numel()], dtype=torch.float64).reshape(p.shape)
        i += p.numel()


@pytest.mark.parametrize(("name", "args", "ref"), FIRST_ORDER, ids=case_id)
def test_first_order_optimizer_matches_course(name: str, args: dict, ref: Ref) -> None:
    params = named_params(THETA0)
    opt = make_optimizer(name, args, params)
    for g in GRADS:
        set_grads(params, g)
        opt.step()
    expected = ref(THETA0.copy(), GRADS, bind_args("optimizer", name, args))
    np.testing.assert_allclose(flat_of(params), expected, rtol=1e-12, atol=1e-12)


def test_ngd_takes_no_step_on_a_zero_gradient() -> None:
    params = named_params(THETA0)
    opt = make_optimizer("ngd", {"lr": 1.0}, params)
    set_grads(params, np.zeros(6))
    opt.step()
    np.testing.assert_array_equal(flat_of(params), THETA0)


QUAD_A = np.array([[3.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 2.0]])
QUAD_B = np.array([1.0, -1.0, 0.5])


def quad_grad(theta: np.ndarray) -> np.ndarray:  # f(θ) = ½θᵀAθ − bᵀθ
    return QUAD_A @ theta - QUAD_B


def test_nesterov_is_the_course_form_at_the_look_ahead_point() -> None:
    """Course: v ← βv − α∇f(θ + βv); θ ← θ + v. torch's parameter is the look-ahead
    point θ + βv, and its update with the gradient there is the same method."""
    lr, beta = 0.1, 0.8
    theta, v = np.array([2.0, -1.0, 0.5]), np.zeros(3)
    p = nn.Parameter(torch.tensor(theta.copy()))
    opt = make_optimizer("sgd", {"lr": lr, "momentum": beta, "nesterov": True}, [("p", p)])
    for _ in range(6):
        v = beta * v - lr * quad_grad(theta + beta * v)
        theta = theta + v
        p.grad = torch.tensor(quad_grad(p.detach().numpy()))
        opt.step()
        np.testing.assert_allclose(p.detach().numpy(), theta + beta * v, rtol=1e-12)


def test_torch_momentum_equals_the_course_form_on_a_quadratic() -> None:
    lr, beta = 0.1, 0.9
    theta, v = np.array([2.0, -1.0, 0.5]), np.zeros(3)
    p = nn.Parameter(torch.tensor(theta.copy()))
    opt = make_optimizer("sgd", {"lr": lr, "momentum": beta}, [("p", p)])
    for _ in range(6):
        v = beta * v - lr * quad_grad(theta)
        theta = theta + v
        p.grad = torch.tensor(quad_grad(p.detach().numpy()))
        opt.step()
    np.testing.assert_allclose(p.detach().numpy(), theta, rtol=1e-12)


def test_lbfgs_converges_on_a_quadratic() -> None:
    a, b = torch.tensor(QUAD_A), torch.tensor(QUAD_B)
    p = nn.Parameter(torch.zeros(3, dtype=torch.float64))
    opt = make_optimizer("lbfgs", {}, [("p", p)])

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = 0.5 * p @ a @ p - b @ p
        loss.backward()
        return loss

    opt.step(closure)
    np.testing.assert_allclose(p.detach().numpy(), np.linalg.solve(QUAD_A, QUAD_B), atol=1e-5)


# ---- newton ----------------------------------------------------------------------------


def test_newton_reaches_a_quadratics_minimizer_in_one_step() -> None:
    a, b = torch.tensor(QUAD_A), torch.tensor(QUAD_B)
    theta0 = torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64)
    p = nn.Parameter(theta0.clone())
    opt = make_optimizer("newton", {"lr": 1.0}, [("theta", p)])

    def f(params: dict[str, torch.Tensor]) -> torch.Tensor:
        t = params["theta"]
        return 0.5 * t @ a @ t - b @ t

    loss = opt.step(f)
    assert float(loss) == pytest.approx(float(f({"theta": theta0})))  # the loss before
    np.testing.assert_allclose(p.detach().numpy(), np.linalg.solve(QUAD_A, QUAD_B), atol=1e-10)


def test_newton_damping_and_lr_follow_the_formula() -> None:
    a, b = torch.tensor(QUAD_A), torch.tensor(QUAD_B)
    theta0 = np.array([2.0, -1.0, 0.5])
    p = nn.Parameter(torch.tensor(theta0))
    opt = make_optimizer("newton", {"lr": 0.5, "damping": 0.3}, [("theta", p)])
    opt.step(lambda ps: 0.5 * ps["theta"] @ a @ ps["theta"] - b @ ps["theta"])
    step = np.linalg.solve(QUAD_A + 0.3 * np.eye(3), quad_grad(theta0))
    np.testing.assert_allclose(p.detach().numpy(), theta0 - 0.5 * step, atol=1e-10)


def test_newton_on_a_real_model_through_functional_call() -> None:
    """Least squares is quadratic in (w, b): one Newton step is the exact fit."""
    torch.manual_seed(0)
    x = torch.randn(20, 2, dtype=torch.float64)
    y = x @ torch.tensor([[2.0], [-1.0]], dtype=torch.float64) + 0.5 + 0.1 * torch.randn(20, 1)
    model = nn.Linear(2, 1).double()
    params = list(model.named_parameters())
    opt = make_optimizer("newton", {}, params)
    assert closure_kind(opt) == "functional"

    def closure(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return ((torch.func.functional_call(model, ps, (x,)) - y) ** 2).mean()

    opt.step(closure)
    design = np.hstack([x.numpy(), np.ones((20, 1))])
    fit = np.linalg.lstsq(design, y.numpy(), rcond=None)[0].reshape(-1)
    got = np.concatenate([model.weight.detach().numpy().reshape(-1), model.bias.detach().numpy()])
    np.testing.assert_allclose(got, fit, atol=1e-10)


def test_newton_with_a_checked_loss_stays_on_the_torch_func_path(monkeypatch: Any) -> None:
    """The losses check their targets with data-dependent `if`s; those read the target,
    not the transformed parameters, so jacfwd/grad run them without falling back."""
    from dlc.runtime.train import optimizers
    from dlc.runtime.train.losses import make_loss

    def no_fallback(*_: Any) -> None:
        raise AssertionError("fell back to the row-by-row Hessian")

    monkeypatch.setattr(optimizers, "_grad_and_hessian_by_rows", no_fallback)
    torch.manual_seed(0)
    x, y = torch.randn(30, 2, dtype=torch.float64), torch.randint(0, 3, (30,))
    model = nn.Linear(2, 3).double()
    loss_fn = make_loss("cross_entropy", {})
    opt = make_optimizer("newton", {"damping": 1e-3}, list(model.named_parameters()))

    def closure(ps: dict[str, torch.Tensor]) -> torch.Tensor:
        return loss_fn(torch.func.functional_call(model, ps, (x,)), y)

    losses = [float(opt.step(closure)) for _ in range(3)]
    assert losses[2] < losses[1] < losses[0]


def test_newton_singular_hessian_takes_the_least_squares_step() -> None:
    # f = (a + b − 1)²: H = 2[[1, 1], [1, 1]] is singular; the minimum-norm step lands on
    # the line a + b = 1, at the point nearest the start
    p = nn.Parameter(torch.tensor([2.0, 3.0], dtype=torch.float64))
    opt = make_optimizer("newton", {}, [("p", p)])
    opt.step(lambda ps: (ps["p"].sum() - 1) ** 2)
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 1.0], atol=1e-10)


def test_newton_refuses_a_large_model() -> None:
    model = nn.Linear(100, 100)  # 10,100 parameters
    with pytest.raises(TrainError) as e:
        make_optimizer("newton", {}, list(model.named_parameters()))
    assert e.value.message == (
        "newton needs the exact N×N Hessian: this model has 10,100 parameters, "
        "over the limit of 5,000; use lbfgs or adam"
    )
    assert NEWTON_MAX_PARAMS == 5000


def test_newton_hessian_by_rows_agrees_with_torch_func() -> None:
    """The fallback for models torch.func cannot transform (batchnorm in training)."""
    w = torch.tensor([0.3, -0.7, 1.1], dtype=torch.float64)

    def f(v: torch.Tensor) -> torch.Tensor:
        return torch.sin(v @ w) + (v**4).sum() + v[0] * v[2]

    x = torch.tensor([0.5, -0.2, 0.8], dtype=torch.float64)
    g1, h1, l1 = _grad_and_hessian(f, x)
    g2, h2, l2 = _grad_and_hessian_by_rows(f, x)
    torch.testing.assert_close(h1, h2)
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(l1, l2)
    torch.testing.assert_close(h1, torch.autograd.functional.hessian(f, x))


def test_newton_runs_on_a_batchnorm_model_in_training_mode() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.Linear(3, 1)).double()
    x, y = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 1, dtype=torch.float64)
    opt = make_optimizer("newton", {"damping": 1.0}, list(model.named_parameters()))
    loss = opt.step(lambda ps: ((torch.func.functional_call(model, ps, (x,)) - y) ** 2).mean())
    assert math.isfinite(float(loss))
    assert all(torch.isfinite(p).all() for p in model.parameters())


# ---- the optimizer table's plumbing ----------------------------------------------------

CLOSURE_KINDS = {"lbfgs": "closure", "newton": "functional"}


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_closure_kind(name: str) -> None:
    params = named_params(THETA0)
    args = {"momentum": 0.9, "nesterov": True} if name == "sgd" else {}
    opt = make_optimizer(name, args, params)
    assert isinstance(opt, torch.optim.Optimizer)
    assert closure_kind(opt) == CLOSURE_KINDS.get(name, "none")
    assert isinstance(opt, Newton) == (name == "newton")


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("adma", {}, "unknown optimizer 'adma' (did you mean 'adam'?)"),
        (
            "adam",
            {"epsilon": 0.1},
            "optimizer adam has no argument 'epsilon' (did you mean 'eps'?)",
        ),
        ("sgd", {"nesterov": True}, "sgd(nesterov=true) needs momentum > 0"),
    ],
    ids=case_id,
)
def test_optimizer_errors(name: str, args: dict, message: str) -> None:
    with pytest.raises(TrainError) as e:
        make_optimizer(name, args, named_params(THETA0))
    assert e.value.message == message


def test_no_trainable_parameters_is_an_error() -> None:
    with pytest.raises(TrainError, match="no trainable parameters"):
        make_optimizer("adam", {}, [])


# ---- regularization --------------------------------------------------------------------


def small_model() -> nn.Module:
    model = nn.Sequential(
        nn.Linear(3, 4), nn.LayerNorm(4), nn.BatchNorm1d(4), nn.PReLU(), nn.Linear(4, 2)
    )
    model[4].bias.requires_grad_(False)  # frozen: in neither group
    return model


def test_param_groups_decay_weights_only() -> None:
    decayed, kept = param_groups(small_model())
    assert [n for n, _ in decayed] == ["0.weight", "4.weight"]
    assert [n for n, _ in kept] == ["0.bias", "1.weight", "1.bias", "2.weight", "2.bias",
                                    "3.weight"]  # fmt: skip
    everything, none = param_groups(small_model(), regularize_all=True)
    assert len(everything) == 8 and none == []


def test_param_groups_keep_weight_norms_scale() -> None:
    # g of w = g·v/‖v‖ is [out, 1]: a scale, not decayed; v is the weight
    model = nn.utils.parametrizations.weight_norm(nn.Linear(3, 4))
    decayed, kept = param_groups(model)
    assert [n for n, _ in decayed] == ["parametrizations.weight.original1"]
    assert [n for n, _ in kept] == ["bias", "parametrizations.weight.original0"]


def test_penalty_is_the_course_formula() -> None:
    torch.manual_seed(0)
    decayed, _ = param_groups(small_model())
    ws = [p.detach().numpy() for _, p in decayed]
    lam, lam1 = 0.3, 0.02
    expected = lam / 2 * sum((w**2).sum() for w in ws) + lam1 * sum(np.abs(w).sum() for w in ws)
    value = penalty(decayed, lam, lam1)
    assert value is not None
    assert value.item() == pytest.approx(expected, rel=1e-6)
    # its gradient is λW + λ₁ sign(W)
    value.backward()
    w = decayed[0][1]
    torch.testing.assert_close(w.grad, lam * w.detach() + lam1 * w.detach().sign())
    # bare tensors work as well; nothing to add is None
    assert penalty([p for _, p in decayed], lam, 0.0).item() == pytest.approx(
        lam / 2 * sum((w**2).sum() for w in ws), rel=1e-6
    )
    assert penalty(decayed, 0.0, 0.0) is None
    assert penalty([], 0.1, 0.1) is None


# ---- schedules -------------------------------------------------------------------------

LR = 0.1


def run_schedule(
    name: str | None,
    args: dict[str, Any],
    *,
    epochs: int,
    spe: int = 1,
    warmup: int = 0,
    losses: list[float] | None = None,
    lr: float = LR,
) -> list[float]:
    """The lr of every optimizer step of a run, driven as the trainer drives it."""
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_schedule(name, args, opt, epochs=epochs, steps_per_epoch=spe, warmup=warmup)
    used: list[float] = []
    drive(opt, sched, used, range(epochs), spe, losses)
    return used


def drive(opt: Any, sched: Any, used: list[float], epochs: Any, spe: int,
          losses: list[float] | None) -> None:  # fmt: skip
    for e in epochs:
        for _ in range(spe):
            used.append(sched.lrs()[0])
            assert opt.param_groups[0]["lr"] == used[-1]
            opt.step()  # no gradient: a no-op, but in the order the trainer keeps
            sched.step_batch()
        sched.step_epoch(losses[e] if losses else None)


def warm_restarts(t_0: int, t_mult: int, eta_min: float, epochs: int) -> list[float]:
    out, t_cur, t_i = [], 0, t_0
    for _ in range(epochs):
        out.append(eta_min + (LR - eta_min) * (1 + math.cos(math.pi * t_cur / t_i)) / 2)
        t_cur += 1
        if t_cur == t_i:
            t_cur, t_i = 0, t_i * t_mult
    return out


# name, args, epochs, the closed form of epoch e's lr
EPOCH_SCHEDULES: list[tuple[str | None, dict[str, Any], int, Callable[[int], float]]] = [
    (None, {}, 4, lambda e: LR),
    ("constant", {}, 4, lambda e: LR),
    ("step", {"step_size": 3}, 8, lambda e: LR * 0.1 ** (e // 3)),
    ("step", {"step_size": 2, "gamma": 0.5}, 8, lambda e: LR * 0.5 ** (e // 2)),
    ("multistep", {"milestones": [2, 5], "gamma": 0.5}, 8,
     lambda e: LR * 0.5 ** sum(e >= m for m in (2, 5))),
    ("exponential", {"gamma": 0.8}, 8, lambda e: LR * 0.8**e),
    ("cosine", {"t_max": 6, "eta_min": 0.01}, 7,
     lambda e: 0.01 + (LR - 0.01) * (1 + math.cos(math.pi * e / 6)) / 2),
    ("linear", {"start_factor": 0.5, "end_factor": 1.0, "total_iters": 4}, 7,
     lambda e: LR * (0.5 + 0.5 * min(e, 4) / 4)),
    ("linear", {}, 5, lambda e: LR * (1 - e / 5)),  # total_iters defaults to the epochs
    ("warm_restarts", {"t_0": 3}, 9, lambda e: warm_restarts(3, 1, 0.0, 9)[e]),
    ("warm_restarts", {"t_0": 2, "t_mult": 2, "eta_min": 0.01}, 14,
     lambda e: warm_restarts(2, 2, 0.01, 14)[e]),
]  # fmt: skip


@pytest.mark.parametrize(("name", "args", "epochs", "closed"), EPOCH_SCHEDULES,
                         ids=case_id)  # fmt: skip
def test_epoch_schedule_matches_closed_form(
    name: str | None, args: dict, epochs: int, closed: Callable[[int], float]
) -> None:
    got = run_schedule(name, args, epochs=epochs, spe=3)
    expected = [closed(e) for e in range(epochs) for _ in range(3)]  # constant within epochs
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


def test_onecycle_steps_per_batch_and_peaks_at_max_lr() -> None:
    epochs, spe, max_lr, pct = 2, 10, 1.0, 0.3
    got = run_schedule("onecycle", {"max_lr": max_lr, "pct_start": pct}, epochs=epochs, spe=spe)
    total = epochs * spe
    start, end = max_lr / 25, max_lr / 25 / 1e4  # torch's div_factor and final_div_factor
    peak = pct * total - 1  # step 5

    def cos_anneal(a: float, b: float, frac: float) -> float:
        return b + (a - b) * (1 + math.cos(math.pi * frac)) / 2

    expected = [
        cos_anneal(start, max_lr, k / peak) if k <= peak
        else cos_anneal(max_lr, end, (k - peak) / (total - 1 - peak))
        for k in range(total)
    ]  # fmt: skip
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert max(got) == pytest.approx(max_lr) and got.index(max(got)) == 5


def test_onecycle_leaves_momentum_alone() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.0)
    make_schedule("onecycle", {"max_lr": 1.0}, opt, epochs=1, steps_per_epoch=5)
    assert opt.param_groups[0]["momentum"] == 0.0


def test_plateau_reduces_after_patience_bad_epochs() -> None:
    """torch's rule: the lr drops at the first bad epoch beyond `patience` of them."""
    losses = [1.0, 0.9, 0.95, 0.91, 0.92, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6]
    got = run_schedule("plateau", {"patience": 2}, epochs=len(losses), losses=losses)
    # epochs 2, 3, 4 are bad; after the third (epoch 4) the lr halves; 0.5 at epoch 5 is
    # the new best; 6, 7, 8 are bad, so the lr halves again from epoch 9
    expected = [LR] * 5 + [LR / 2] * 4 + [LR / 4] * 2
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_plateau_min_lr_and_patience_zero() -> None:
    losses = [1.0] * 6
    got = run_schedule("plateau", {"patience": 0, "factor": 0.1, "min_lr": 0.002},
                       epochs=6, losses=losses)  # fmt: skip
    np.testing.assert_allclose(got, [LR, LR, LR / 10, 0.002, 0.002, 0.002], rtol=1e-12)


def test_plateau_watches_the_training_loss_without_validation() -> None:
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=LR)
    sched = make_schedule("plateau", {"patience": 0}, opt, epochs=3, steps_per_epoch=1)
    opt.step()
    sched.step_epoch(None, train_loss=1.0)
    sched.step_epoch(None, train_loss=2.0)
    assert sched.lrs() == [pytest.approx(LR / 2)]
    with pytest.raises(TrainError, match="plateau needs a loss"):
        sched.step_epoch(None)


def test_warmup_ramps_a_constant_lr() -> None:
    got = run_schedule(None, {}, epochs=2, spe=3, warmup=4)
    np.testing.assert_allclose(got, [LR * min(1, (k + 1) / 4) for k in range(6)], rtol=1e-12)


@pytest.mark.parametrize(
    ("name", "args", "closed"),
    [
        ("exponential", {"gamma": 0.5}, lambda e: LR * 0.5**e),
        ("step", {"step_size": 1, "gamma": 0.5}, lambda e: LR * 0.5**e),
        ("cosine", {"t_max": 4}, lambda e: LR * (1 + math.cos(math.pi * e / 4)) / 2),
    ],
    ids=case_id,
)
def test_warmup_multiplies_the_schedule_then_hands_over(
    name: str, args: dict, closed: Callable[[int], float]
) -> None:
    # warmup spans 5 steps of 2-step epochs: the schedule's own lr must not absorb the
    # warmup factor (a chained scheduler reading group['lr'] would)
    spe, warmup, epochs = 2, 5, 4
    got = run_schedule(name, args, epochs=epochs, spe=spe, warmup=warmup)
    expected = [closed(k // spe) * min(1, (k + 1) / warmup) for k in range(epochs * spe)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_warmup_on_onecycle() -> None:
    base = run_schedule("onecycle", {"max_lr": 1.0}, epochs=2, spe=5)
    got = run_schedule("onecycle", {"max_lr": 1.0}, epochs=2, spe=5, warmup=3)
    np.testing.assert_allclose(got, [b * min(1, (k + 1) / 3) for k, b in enumerate(base)])


RESUME_ARGS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": 2, "gamma": 0.5},
    "multistep": {"milestones": [1, 4]},
    "exponential": {"gamma": 0.7},
    "cosine": {"t_max": 5},
    "linear": {"start_factor": 0.2, "end_factor": 1.0},
    "plateau": {"patience": 1},
    "onecycle": {"max_lr": 0.5},
    "warm_restarts": {"t_0": 2, "t_mult": 2},
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_state_dict_round_trip_continues_identically(name: str) -> None:
    epochs, spe, warmup = 6, 2, 5
    losses = [1.0, 0.9, 0.95, 0.97, 0.8, 0.85]

    def fresh() -> tuple[Any, Any, nn.Parameter]:
        p = nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=LR, momentum=0.9)
        sched = make_schedule(name, RESUME_ARGS[name], opt, epochs=epochs,
                              steps_per_epoch=spe, warmup=warmup)  # fmt: skip
        return opt, sched, p

    opt, sched, _ = fresh()
    first: list[float] = []
    drive(opt, sched, first, range(3), spe, losses)
    # a checkpoint, through torch.save / torch.load(weights_only=True) as the trainer's
    buf = io.BytesIO()
    torch.save({"optimizer": opt.state_dict(), "schedule": sched.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    straight = copy.deepcopy(first)
    drive(opt, sched, straight, range(3, epochs), spe, losses)

    opt2, sched2, _ = fresh()
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["schedule"])
    resumed = copy.deepcopy(first)
    drive(opt2, sched2, resumed, range(3, epochs), spe, losses)
    assert resumed == straight
    assert len(set(straight)) > 1 or name == "constant"  # the schedule did something


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("cosin", {"t_max": 3}, "unknown schedule 'cosin' (did you mean 'cosine'?)"),
        ("step", {}, "schedule step needs the argument 'step_size'"),
        ("linear", {"start_factor": 2.0}, "schedule linear: "),
    ],
)
def test_schedule_errors(name: str, args: dict, message: str) -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    with pytest.raises(TrainError) as e:
        make_schedule(name, args, opt, epochs=3, steps_per_epoch=1)
    assert e.value.message.startswith(message)


def test_resuming_with_another_schedule_is_refused() -> None:
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)
    state = make_schedule("cosine", {"t_max": 3}, opt, epochs=3, steps_per_epoch=1).state_dict()
    other = make_schedule("exponential", {"gamma": 0.9}, opt, epochs=3, steps_per_epoch=1)
    with pytest.raises(TrainError, match="checkpoint's schedule is 'cosine'"):
        other.load_state_dict(state)
