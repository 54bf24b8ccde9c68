"""Gradient checks for the torch pieces dlc's lowerings define beyond torch.nn.

micrograd checks every op's backward pass against torch; these tests check every custom
nn.Module and helper function of the lowerings the same way: torch autograd against
central finite differences (torch.autograd.gradcheck, float64), with respect to the inputs
and to the module's parameters, and the second derivatives (gradgradcheck) where that is
cheap. The classes and functions are discovered from HELPER_MODULES, so a new one without
a row in CASES, NOT_DIFFERENTIABLE or BASES fails `test_every_helper_has_a_row`.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import nn

from dlc.compiler.lower import model_py

# The files that define the lowerings' torch modules and functions: every family's
# modules.py, the same files model.py copies.
HELPER_MODULES = model_py.HELPER_MODULES


def _discovered() -> dict[str, Any]:
    """Every class and function defined (not imported) in HELPER_MODULES, by name."""
    found: dict[str, Any] = {}
    for module in HELPER_MODULES:
        for name, obj in vars(module).items():
            defined = inspect.isclass(obj) or inspect.isfunction(obj)
            if defined and obj.__module__ == module.__name__:
                assert name not in found, f"{name} is defined twice"
                found[name] = obj
    return found


HELPERS = _discovered()


@dataclass(frozen=True)
class Case:
    """One gradient check of a class or function of HELPER_MODULES.

    A class is built as cls(*args, **kwargs) and called on the inputs; a function is
    called as fn(*inputs, *args, **kwargs). The inputs are float64 tensors of `shapes`.
    """

    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    shapes: tuple[tuple[int, ...], ...] = ((2, 3),)
    # modules are checked in eval mode unless `train`
    train: bool = False
    # torch's generator is reseeded with this before every call, so that the random draws
    # (dropout masks, drop_path's noise, gaussian_sample's ε) repeat from one finite
    # difference to the next and the function under test is deterministic
    seed: int | None = None
    # the method under test, for a class whose forward is not the whole story
    method: str = "forward"
    gradgrad: bool = True
    label: str = ""


B, T, D = 2, 3, 4  # batch, sequence length, features of the sequence models
SEQ = ((B, T, D),)
SEQ_MEMORY = ((B, T, D), (B, T + 1, D))
ATTENTION = {"dim": D, "heads": 2}
LAYER = {"dim": D, "heads": 2, "ff": 6}
RECURRENT = {"input_size": 3, "hidden_size": 2}

# Every class and function of HELPER_MODULES that has a gradient, with its checks. The
# random inputs lie away from the kinks of relu, max and clamp_min with probability one,
# and being seeded they are the same points on every run.
CASES: dict[str, tuple[Case, ...]] = {
    "cat": (Case(kwargs={"dim": -1}, shapes=((2, 3), (2, 1), (2, 2))),),
    "add": (Case(shapes=((2, 3), (2, 3), (1, 3))),),
    "mul": (Case(shapes=((2, 3), (2, 3), (2, 1))),),
    "rdiv": (Case(args=(2.0,)),),  # its seeded inputs lie at least 0.29 from the pole at 0
    "lecun_tanh": (Case(),),
    "soboleva_tanh": (Case(args=(0.6, 0.8, 1.1, 0.9)),),
    "gaussian": (Case(),),
    "maxout": (Case(kwargs={"pieces": 3}, shapes=((2, 6),)),),
    "polynomial": (Case(kwargs={"degree": 3}),),
    "fourier": (Case(kwargs={"n": 2}),),
    "RBF": (
        Case(args=(3, 4), label="learned sigma"),
        Case(args=(3, 4), kwargs={"learn_sigma": False}, label="fixed sigma"),
    ),
    "Standardize": (
        Case(args=(3,), label="zscore"),
        Case(args=(3,), kwargs={"method": "zca"}, label="zca"),
    ),
    "HighwayGate": (Case(args=(3,), shapes=((2, 3), (2, 3))),),
    "global_avgpool": (Case(shapes=((2, 3, 4, 2),)),),
    "global_maxpool": (Case(shapes=((2, 3, 4, 2),)),),
    "CausalConv1d": (
        Case(args=(2, 3, (2,)), shapes=((2, 2, 5),), label="kernel 2"),
        Case(args=(2, 4, (3,), (1,), (2,), 2), shapes=((2, 2, 6),), label="dilated, grouped"),
    ),
    # weight_norm: torch's own parametrization; gradgradcheck of torch._weight_norm itself
    # fails on CPU (its fused kernel's double backward, torch 2.13) while v·g/‖v‖ written
    # out passes, so these check the first derivatives only
    "WeightNormCausalConv1d": (
        Case(args=(2, 3, (2,)), kwargs={"dilation": (2,)}, shapes=((2, 2, 5),), gradgrad=False),
    ),
    "WeightNormConv1d": (
        Case(args=(2, 4, 3), kwargs={"groups": 2}, shapes=((2, 2, 5),), gradgrad=False),
    ),
    "WeightNormConv2d": (
        Case(args=(2, 3, 3), kwargs={"padding": "same"}, shapes=((1, 2, 3, 3),), gradgrad=False),
    ),
    "WeightNormConvTranspose2d": (
        Case(args=(2, 3, 2), kwargs={"stride": 2}, shapes=((1, 2, 2, 2),), gradgrad=False),
    ),
    "slice_axis": (
        Case(args=(1, None, 1, 1), shapes=((2, 5, 3),), label="from 1"),
        Case(args=(0, 4, 2, 2), shapes=((2, 3, 5),), label="step 2"),
    ),
    "SinusoidalPositions": (
        Case(args=(5, D), shapes=SEQ, label="eval"),
        Case(args=(5, D), kwargs={"dropout": 0.5}, shapes=SEQ, train=True, seed=0),
    ),
    "LearnedPositions": (
        Case(args=(5, D), shapes=SEQ, label="eval"),
        Case(args=(5, D), kwargs={"dropout": 0.5}, shapes=SEQ, train=True, seed=0),
    ),
    "PatchEmbed": (Case(args=(2, 3, 2), shapes=((1, 2, 4, 4),)),),
    "ClsToken": (Case(args=(D,), shapes=SEQ),),
    "TimestepEmbedding": (
        Case(args=(D,), shapes=((B,),), label="[B]"),
        Case(args=(6, 100.0), shapes=((B, 1),), label="[B, 1]"),
    ),
    "TiedLinear": (
        Case(args=(5,), shapes=((2, 3), (5, 3)), label="bias"),
        Case(args=(5,), kwargs={"bias": False}, shapes=((2, 3), (5, 3)), label="no bias"),
    ),
    "WeightNormLinear": (Case(args=(3, 2), gradgrad=False),),  # as the WeightNormConv* above
    "DropPath": (
        Case(args=(0.5,), label="eval"),
        Case(args=(0.0,), train=True, label="p=0"),
        Case(args=(0.5,), shapes=((4, 3),), train=True, seed=0, label="row"),
        Case(args=(0.5,), kwargs={"mode": "batch"}, train=True, seed=1, label="batch"),
        Case(args=(1.0,), train=True, seed=0, label="p=1"),
    ),
    "GaussianSample": (
        Case(shapes=((2, 3), (2, 3)), label="eval mean"),
        Case(kwargs={"sample": True}, shapes=((2, 3), (2, 3)), seed=0, label="eval sample"),
        Case(shapes=((2, 3), (2, 3)), train=True, seed=0, label="train"),
    ),
    "recurrent_output": (
        Case(args=(False, False), shapes=((B, T, 2), (1, B, 2)), label="sequence"),
        Case(args=(False, True), shapes=((B, T, 2), (2, B, 2)), label="last"),
        Case(args=(True, True), shapes=((B, T, 4), (4, B, 2)), label="last bidirectional"),
    ),
    "initial_state": (
        Case(shapes=((B, 2),), label="[B, H]"),
        Case(shapes=((2, B, 2),), label="[layers·D, B, H]"),
    ),
    "SeqRNN": (
        Case(kwargs=RECURRENT, shapes=((B, T, 3),), label="tanh"),
        Case(kwargs=RECURRENT, shapes=((B, T, 3), (B, 2)), label="from h0"),
        Case(
            kwargs={**RECURRENT, "nonlinearity": "relu", "bidirectional": True, "last": True},
            shapes=((B, T, 3),),
            label="relu bidirectional last",
        ),
    ),
    "SeqGRU": (
        Case(kwargs=RECURRENT, shapes=((B, T, 3),), label="sequence"),
        Case(
            kwargs={**RECURRENT, "num_layers": 2, "bidirectional": True},
            shapes=((B, T, 3), (4, B, 2)),
            label="2 layers bidirectional from h0",
        ),
        Case(
            kwargs={**RECURRENT, "num_layers": 2, "bidirectional": True, "last": True},
            shapes=((B, T, 3),),
            label="2 layers bidirectional last",
        ),
    ),
    "SeqLSTM": (
        Case(kwargs=RECURRENT, shapes=((B, T, 3),), label="sequence"),
        Case(kwargs={**RECURRENT, "last": True}, shapes=((B, T, 3),), label="last"),
        Case(kwargs=RECURRENT, shapes=((B, T, 3), (1, B, 2), (B, 2)), label="from (h0, c0)"),
        Case(
            kwargs={**RECURRENT, "num_layers": 2, "dropout": 0.5, "bidirectional": True},
            shapes=((B, T, 3),),
            train=True,
            seed=0,
            label="2 layers dropout bidirectional",
        ),
    ),
    # no second derivatives: torch has none for the CPU kernel of scaled_dot_product_attention
    # ("derivative for aten::_scaled_dot_product_flash_attention_for_cpu_backward is not
    # implemented"), which Attention and so every transformer layer calls
    "Attention": (
        Case(kwargs=ATTENTION, shapes=SEQ, gradgrad=False, label="self"),
        Case(
            kwargs={**ATTENTION, "causal": True, "bias": False},
            shapes=SEQ,
            gradgrad=False,
            label="causal",
        ),
        Case(kwargs=ATTENTION, shapes=SEQ_MEMORY, gradgrad=False, label="memory"),
        Case(
            kwargs={**ATTENTION, "bias": False},
            shapes=SEQ_MEMORY,
            gradgrad=False,
            label="memory no bias",
        ),
        Case(
            kwargs={**ATTENTION, "dropout": 0.5},
            shapes=SEQ,
            train=True,
            seed=0,
            gradgrad=False,
            label="dropout",
        ),
    ),
    "_Sublayers": (
        Case(args=(D, 6, 0.0, "relu", False), shapes=SEQ, method="feed_forward", label="relu"),
        Case(args=(D, 6, 0.0, "gelu", True), shapes=SEQ, method="feed_forward", label="gelu"),
        Case(
            args=(D, 6, 0.0, "gelu_tanh", False),
            shapes=SEQ,
            method="feed_forward",
            label="gelu_tanh",
        ),
    ),
    "EncoderLayer": (
        Case(kwargs=LAYER, shapes=SEQ, gradgrad=False, label="post-LN"),
        Case(
            kwargs={**LAYER, "activation": "gelu", "norm_first": True, "causal": True},
            shapes=SEQ,
            gradgrad=False,
            label="pre-LN gelu causal",
        ),
        Case(kwargs=LAYER, shapes=SEQ, train=True, seed=0, gradgrad=False, label="dropout"),
        Case(
            kwargs={**LAYER, "activation": "gelu_tanh", "eps": 1e-12},
            shapes=SEQ,
            gradgrad=False,
            label="gelu_tanh eps",
        ),
    ),
    "DecoderLayer": (
        Case(kwargs=LAYER, shapes=SEQ_MEMORY, gradgrad=False, label="post-LN"),
        Case(
            kwargs={**LAYER, "activation": "gelu", "norm_first": True, "causal": False},
            shapes=SEQ_MEMORY,
            gradgrad=False,
            label="pre-LN gelu",
        ),
        Case(kwargs=LAYER, shapes=SEQ_MEMORY, train=True, seed=0, gradgrad=False, label="dropout"),
    ),
    "TransformerEncoder": (Case(kwargs={**LAYER, "layers": 2}, shapes=SEQ, gradgrad=False),),
    "TransformerDecoder": (Case(kwargs={**LAYER, "layers": 2}, shapes=SEQ_MEMORY, gradgrad=False),),
}

# The classes and functions of HELPER_MODULES with no gradient to check, and why.
NOT_DIFFERENTIABLE: dict[str, str] = {
    "step": "the indicator x >= 0: piecewise constant, its output carries no gradient",
    "sinusoids": "a constant table built from two ints: it has no tensor input",
    "timestep_rates": "a constant vector built from two numbers: it has no tensor input",
}

# Bases that are never built on their own: their code runs in the subclasses' checks.
BASES: dict[str, tuple[str, ...]] = {
    "_Seq": ("SeqRNN", "SeqGRU"),
    "_Stack": ("TransformerEncoder", "TransformerDecoder"),
    "_WeightNormed": (
        "WeightNormConv1d",
        "WeightNormConv2d",
        "WeightNormConvTranspose2d",
        "WeightNormCausalConv1d",
    ),
}


def test_every_helper_has_a_row() -> None:
    """A new module or function in the helper files needs a gradient check (or a reason
    for having none); a row whose name no longer exists is stale."""
    rows = CASES.keys() | NOT_DIFFERENTIABLE.keys() | BASES.keys()
    assert not CASES.keys() & NOT_DIFFERENTIABLE.keys()
    for base, subclasses in BASES.items():
        assert all(issubclass(HELPERS[s], HELPERS[base]) and s in CASES for s in subclasses)
    assert sorted(HELPERS.keys() - rows) == [], "no gradient check for these"
    assert sorted(rows - HELPERS.keys()) == [], "rows for names HELPER_MODULES lacks"


def test_step_has_no_gradient() -> None:
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    assert not HELPERS["step"](x).requires_grad


class _Method(nn.Module):
    """One method of a module as the forward of another, for torch.func.functional_call."""

    def __init__(self, inner: nn.Module, method: str) -> None:
        super().__init__()
        self.inner, self.method = inner, method

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return getattr(self.inner, self.method)(*xs)


def _module(cls: type[nn.Module], case: Case) -> nn.Module:
    """The module in float64 and in the case's mode, its parameters and its fitted
    (persistent) buffers drawn away from zero: the constructors' zeros and ones would hide
    terms of the gradient (a zero weight cancels its input's contribution)."""
    module = cls(*case.args, **case.kwargs).double().train(case.train)
    persistent = module.state_dict(keep_vars=True)
    with torch.no_grad():
        for tensor in persistent.values():
            if tensor.is_floating_point():
                sign = torch.randint(0, 2, tensor.shape, dtype=tensor.dtype) * 2 - 1
                tensor.copy_(sign * torch.empty_like(tensor).uniform_(0.5, 1.5))
    return module if case.method == "forward" else _Method(module, case.method)


@contextlib.contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """torch's generator reseeded for one call (or left alone), restored afterwards."""
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _function_of_tensors(name: str, case: Case) -> tuple[Callable[..., Any], tuple]:
    """The thing under test as a function of float64 tensors only (its inputs, then its
    parameters), with those tensors' starting values."""
    torch.manual_seed(0)
    inputs = tuple(torch.randn(s, dtype=torch.float64, requires_grad=True) for s in case.shapes)
    helper = HELPERS[name]
    if not inspect.isclass(helper):

        def call_function(*xs: torch.Tensor) -> torch.Tensor:
            with _seeded(case.seed):
                return helper(*xs, *case.args, **case.kwargs)

        return call_function, inputs
    module = _module(helper, case)
    names = [n for n, _ in module.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_() for _, p in module.named_parameters())
    n = len(inputs)

    def call_module(*tensors: torch.Tensor) -> torch.Tensor:
        with _seeded(case.seed):
            weights = dict(zip(names, tensors[n:], strict=True))
            return torch.func.functional_call(module, weights, tensors[:n])

    return call_module, inputs + params


def _params(keep: Callable[[str, Case], bool] = lambda name, case: True) -> list[Any]:
    """The (name, case) pairs of CASES that `keep` accepts, as pytest parameters."""
    return [
        pytest.param(name, case, id=f"{name}-{case.label}" if case.label else name)
        for name, cases in CASES.items()
        for case in cases
        if keep(name, case)
    ]


def _has_parameters(name: str, case: Case) -> bool:
    """Whether the case builds a module with parameters."""
    helper = HELPERS[name]
    return inspect.isclass(helper) and len(list(helper(*case.args, **case.kwargs).parameters())) > 0


# Beyond this many numbers in (inputs and parameters), the full Jacobian costs seconds (two
# calls per number): gradcheck's fast mode then compares the derivative along random
# directions instead, which finds the same wrong terms with high probability.
FULL_JACOBIAN_LIMIT = 150


def _fast(tensors: tuple[torch.Tensor, ...]) -> bool:
    return sum(t.numel() for t in tensors) > FULL_JACOBIAN_LIMIT


@pytest.mark.parametrize(("name", "case"), _params())
def test_gradient(name: str, case: Case) -> None:
    fn, tensors = _function_of_tensors(name, case)
    assert torch.autograd.gradcheck(fn, tensors, fast_mode=_fast(tensors))


@pytest.mark.parametrize(("name", "case"), _params(_has_parameters))
def test_every_parameter_reaches_the_output(name: str, case: Case) -> None:
    """Each parameter has some nonzero derivative, so the check of its gradient above is
    not vacuous (functional_call really substitutes it, and the module uses it)."""
    fn, tensors = _function_of_tensors(name, case)
    params = tensors[len(case.shapes) :]
    out = fn(*tensors)
    outs = out if isinstance(out, tuple) else (out,)  # (value, h_n, c_n) of SeqLSTM
    grads = torch.autograd.grad(outs, params, [torch.randn_like(o) for o in outs],
                                allow_unused=True)  # fmt: skip
    assert [g is not None and bool(g.any()) for g in grads] == [True] * len(params)


@pytest.mark.parametrize(("name", "case"), _params(lambda name, case: case.gradgrad))
def test_second_derivative(name: str, case: Case) -> None:
    fn, tensors = _function_of_tensors(name, case)
    assert torch.autograd.gradgradcheck(fn, tensors, fast_mode=_fast(tensors))
