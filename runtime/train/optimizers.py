"""The optimizers and the weight penalty that `training:` names.

Each name in `compiler/training.py`'s OPTIMIZERS is built here, under the same name and
with the same arguments, as the course defines it:

- `param_groups` splits a model's trainable parameters into weights (decayed) and biases
  and normalization parameters (not decayed); `penalty` is the course's
  (λ/2)‖θ_W‖² + λ₁‖θ_W‖₁ over the weights, added to the loss by the trainer.
- `make_optimizer` returns a `torch.optim.Optimizer`: torch's own class where one exists
  (with weight_decay 0: the course's L2 lives in `penalty`; adamw's decoupled decay is
  the exception), and `NGD` and `Newton` written here. `closure_kind(opt)` tells the
  trainer what `opt.step` needs: nothing, a closure (lbfgs), or a functional closure
  that computes the loss from a dict of parameter tensors (newton).

The learning-rate schedules are in schedules.py. A user's mistake (an unknown name,
arguments torch refuses, a model too large for newton) raises `TrainError`; nothing
here prints.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from ...compiler.errors import TrainError
from .arguments import bind_args

NamedParams = Sequence[tuple[str, nn.Parameter]]
ClosureKind = Literal["none", "closure", "functional"]

NEWTON_MAX_PARAMS = 5000

# ---- regularization --------------------------------------------------------------------


def param_groups(
    model: nn.Module, *, regularize_all: bool = False
) -> tuple[list[tuple[str, nn.Parameter]], list[tuple[str, nn.Parameter]]]:
    """(decayed, not decayed) trainable named parameters. Weights (ndim >= 2) are
    decayed; biases and normalization scales and shifts (ndim <= 1) are not, as the
    course excludes them, and neither is a weight-normalized layer's g ([out, 1, ...],
    a scale although it has two axes), unless `regularize_all`."""
    decayed: list[tuple[str, nn.Parameter]] = []
    kept: list[tuple[str, nn.Parameter]] = []
    for name, p in model.named_parameters():
        if p.requires_grad:
            weight = p.ndim >= 2 and not name.endswith(WEIGHT_NORM_SCALE)
            (decayed if regularize_all or weight else kept).append((name, p))
    return decayed, kept


# the g of torch.nn.utils.parametrizations.weight_norm (dlc's weight_norm=true)
WEIGHT_NORM_SCALE = "parametrizations.weight.original0"


def penalty(
    decayed: Iterable[tuple[str, Tensor]] | Iterable[Tensor], weight_decay: float, l1: float
) -> Tensor | None:
    """(λ/2)·Σ‖W‖² + λ₁·Σ‖W‖₁ over the decayed parameters (named pairs, as
    `param_groups` returns them, or bare tensors), to add to the loss; None when both
    coefficients are 0 or there is nothing to decay."""
    tensors = [p[1] if isinstance(p, tuple) else p for p in decayed]
    if not tensors or (not weight_decay and not l1):
        return None
    total = torch.zeros((), device=tensors[0].device, dtype=tensors[0].dtype)
    if weight_decay:
        total = total + weight_decay / 2 * torch.stack([p.pow(2).sum() for p in tensors]).sum()
    if l1:
        total = total + l1 * torch.stack([p.abs().sum() for p in tensors]).sum()
    return total


# ---- optimizers written here -----------------------------------------------------------


class NGD(torch.optim.Optimizer):
    """Normalized gradient descent: θ ← θ − α·g/‖g‖, with ‖g‖ the L2 norm of the whole
    gradient (all parameters of all groups together, so the step has length α). A zero
    gradient takes no step."""

    closure_kind: ClosureKind = "none"

    def __init__(self, params: Iterable[Tensor], lr: float = 0.01) -> None:
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(  # type: ignore[override]
        self, closure: Callable[[], Tensor] | None = None
    ) -> Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not grads:
            return loss
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
        # 1/‖g‖, or 0 for a zero gradient, without a device sync to ask which
        scale = torch.where(norm > 0, 1 / norm, torch.zeros_like(norm))
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad * scale, alpha=-group["lr"])
        return loss


FunctionalClosure = Callable[[dict[str, Tensor]], Tensor]


class Newton(torch.optim.Optimizer):
    """Newton's method with the exact Hessian: θ ← θ − α·(H + damping·I)⁻¹ g.

    `step(closure)` takes a FUNCTIONAL closure, `closure(params) -> loss`, computing the
    loss with the given parameter tensors (a dict by parameter name, e.g. through
    `torch.func.functional_call`), and returns the loss before the step. g and H come
    from torch.func transforms of the loss as a function of one flat parameter vector,
    in a single evaluation (so a dropout mask is the same for both). The Hessian has N²
    entries and the solve costs O(N³): models above NEWTON_MAX_PARAMS are refused.
    """

    closure_kind: ClosureKind = "functional"

    def __init__(self, params: NamedParams, lr: float = 1.0, damping: float = 0.0) -> None:
        params = list(params)
        n = sum(p.numel() for _, p in params)
        if n > NEWTON_MAX_PARAMS:
            raise TrainError(
                f"newton needs the exact N×N Hessian: this model has {n:,} parameters, "
                f"over the limit of {NEWTON_MAX_PARAMS:,}; use lbfgs or adam"
            )
        self.names = [name for name, _ in params]
        super().__init__([p for _, p in params], {"lr": lr, "damping": damping})

    def step(self, closure: FunctionalClosure | None = None) -> Tensor:  # type: ignore[override]
        if closure is None:
            raise TrainError("newton needs a functional closure: closure(params) -> loss")
        group = self.param_groups[0]
        params: list[Tensor] = group["params"]
        flat = torch.cat([p.detach().reshape(-1) for p in params])
        sizes = [p.numel() for p in params]

        def loss_of(vector: Tensor) -> Tensor:
            parts = vector.split(sizes)
            return closure(
                {n: t.view_as(p) for n, t, p in zip(self.names, parts, params, strict=True)}
            )

        grad, hess, loss = _grad_and_hessian(loss_of, flat)
        direction = _newton_direction(hess, grad, group["damping"])
        with torch.no_grad():
            for p, d in zip(params, direction.to(flat.dtype).split(sizes), strict=True):
                p.sub_(d.view_as(p), alpha=group["lr"])
        return loss.detach()


def _grad_and_hessian(f: Callable[[Tensor], Tensor], x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(∇f, ∇²f, f) at x: forward-over-reverse through torch.func; where a model cannot
    run under a function transform (batchnorm updating its running statistics in
    training mode), the Hessian row by row with double backward instead."""

    def grad_with_aux(v: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        g, value = torch.func.grad_and_value(f)(v)
        return g, (g, value)

    try:
        hess, (grad, loss) = torch.func.jacfwd(grad_with_aux, has_aux=True, randomness="same")(x)
        return grad.detach(), hess.detach(), loss.detach()
    except RuntimeError:
        return _grad_and_hessian_by_rows(f, x)


def _grad_and_hessian_by_rows(
    f: Callable[[Tensor], Tensor], x: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = f(x)
        (grad,) = torch.autograd.grad(loss, x, create_graph=True)
        rows = []
        for i in range(x.numel()):
            (row,) = torch.autograd.grad(grad[i], x, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(x) if row is None else row)
    return grad.detach(), torch.stack(rows).detach(), loss.detach()


def _newton_direction(hess: Tensor, grad: Tensor, damping: float) -> Tensor:
    """(H + damping·I)⁻¹ g, solved in float64. A singular matrix falls back to the
    least-squares (minimum-norm) solution, the pseudo-inverse's Newton step."""
    a = hess.double() + damping * torch.eye(hess.shape[0], dtype=torch.float64, device=hess.device)
    b = grad.double()
    try:
        d = torch.linalg.solve(a, b)
        if bool(torch.isfinite(d).all()):
            return d
    except RuntimeError:  # torch.linalg.LinAlgError: the matrix is singular
        pass
    # gelsd (SVD) copes with rank deficiency; it runs on the CPU only (N <= 5000 here)
    if bool(torch.isfinite(a).all()):
        sol = torch.linalg.lstsq(a.cpu(), b.cpu()[:, None], driver="gelsd").solution[:, 0]
        if bool(torch.isfinite(sol).all()):
            return sol.to(hess.device)
    raise TrainError(
        "newton: the Hessian cannot be solved (it is singular or not finite)",
        hint="add damping, e.g. optimizer: newton(damping=1e-3), or use lbfgs",
    )


def closure_kind(opt: torch.optim.Optimizer) -> ClosureKind:
    """What `opt.step` takes: 'none' (plain `opt.step()` after backward), 'closure'
    (lbfgs: a closure that zeroes the gradients, runs forward and backward and returns
    the loss) or 'functional' (newton: `closure(params: dict[str, Tensor]) -> loss`)."""
    if isinstance(opt, torch.optim.LBFGS):
        return "closure"
    kind: ClosureKind = getattr(type(opt), "closure_kind", "none")
    return kind


# ---- make_optimizer --------------------------------------------------------------------

OptimizerBuilder = Callable[[NamedParams, dict[str, Any], bool], torch.optim.Optimizer]


def _plain(params: NamedParams) -> list[nn.Parameter]:
    return [p for _, p in params]


def _sgd(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    # PyTorch's momentum is b ← μb + g, θ ← θ − αb; the course's is v ← βv − αg,
    # θ ← θ + v. With v = −αb they are the same updates while α stays constant; under a
    # schedule torch rescales the whole velocity by the new α. Nesterov likewise: torch's
    # θ is the course's look-ahead point θ + βv (tests/test_optim.py checks both).
    momentum = args.get("momentum", 0.0)
    nesterov = args.get("nesterov", False)
    if nesterov and momentum <= 0:
        raise TrainError(
            "sgd(nesterov=true) needs momentum > 0", hint="e.g. sgd(momentum=0.9, nesterov=true)"
        )
    return torch.optim.SGD(_plain(params), lr=args["lr"], momentum=momentum, nesterov=nesterov)


def _adagrad(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    # torch: r ← r + g², θ ← θ − α g/(√r + δ): the course's AdaGrad (lr_decay 0)
    return torch.optim.Adagrad(_plain(params), lr=args["lr"], eps=args["eps"])


def _rmsprop(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    # torch's alpha is the course's ρ: r ← ρr + (1−ρ)g², θ ← θ − α g/(√r + δ)
    return torch.optim.RMSprop(
        _plain(params), lr=args["lr"], alpha=args["rho"], eps=args["eps"], momentum=args["momentum"]
    )


def _adadelta(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(_plain(params), lr=args["lr"], rho=args["rho"], eps=args["eps"])


def _adam(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    betas = (args["beta1"], args["beta2"])
    return torch.optim.Adam(_plain(params), lr=args["lr"], betas=betas, eps=args["eps"])


def _adamw(
    params: NamedParams, args: dict[str, Any], regularize_all: bool
) -> torch.optim.Optimizer:
    # decoupled decay θ ← θ − α·λ·θ, on the weights only unless regularize_all, the same
    # split as the L2 penalty's
    decayed = [p for _, p in params if regularize_all or p.ndim >= 2]
    kept = [p for _, p in params if not (regularize_all or p.ndim >= 2)]
    groups = [
        {"params": ps, "weight_decay": wd}
        for ps, wd in ((decayed, args["weight_decay"]), (kept, 0.0))
        if ps
    ]
    betas = (args["beta1"], args["beta2"])
    return torch.optim.AdamW(groups, lr=args["lr"], betas=betas, eps=args["eps"])


def _lbfgs(params: NamedParams, args: dict[str, Any], _: bool) -> torch.optim.Optimizer:
    # a strong-Wolfe line search: without one, lbfgs's unit steps diverge on most nets
    return torch.optim.LBFGS(
        _plain(params),
        lr=args["lr"],
        history_size=args["history"],
        max_iter=args["max_iter"],
        line_search_fn="strong_wolfe",
    )


OPTIMIZER_BUILDERS: dict[str, OptimizerBuilder] = {
    "gd": _sgd,  # the trainer makes the batch the whole training set
    "sgd": _sgd,
    "adagrad": _adagrad,
    "rmsprop": _rmsprop,
    "adadelta": _adadelta,
    "adam": _adam,
    "adamw": _adamw,
    "ngd": lambda params, args, _: NGD(_plain(params), lr=args["lr"]),
    "lbfgs": _lbfgs,
    "newton": lambda params, args, _: Newton(params, lr=args["lr"], damping=args["damping"]),
}


def make_optimizer(
    name: str,
    args: Mapping[str, Any],
    params: NamedParams,
    *,
    regularize_all: bool = False,
) -> torch.optim.Optimizer:
    """The optimizer `name(args)` over the named trainable `params`. `regularize_all`
    matters to adamw only: whether its decoupled decay also reaches biases and
    normalization parameters (as for `param_groups`)."""
    bound = bind_args("optimizer", name, args)
    params = list(params)
    if not params:
        raise TrainError("the model has no trainable parameters to optimize")
    try:
        return OPTIMIZER_BUILDERS[name](params, bound, regularize_all)
    except ValueError as e:  # torch's own argument checks
        raise TrainError(f"optimizer {name}: {e}") from None
