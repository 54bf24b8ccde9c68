"""Lowering to PyTorch: the typed IR becomes a `torch.fx.GraphModule`.

The module is built by constructing an fx graph node by node (no source strings):
layers with weights are standard `torch.nn` modules (or the small modules of
torch_modules.py) registered at the IR node's dotted name, so `state_dict` keys read
`stem.conv2d.weight`, the same names the ONNX initializers get; parameter-free ops are
calls of torch functions. Weights come from `init.initial_weights` (the spec's init
schemes, numpy) or from a trained state dict.

`TORCH_RULES` maps every op to its rule: given the IR node and its input types, the rule
says what to call — a module to construct (class and arguments, so `model_py` can write
the same constructor into a standalone file), a function, or a method — and with which
extra arguments. Importing this module fills each OpDef's `torch` slot.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn
from torch.nn import functional as F

from ..dims import dims_equal, is_sym
from ..errors import ShapeError
from ..ir import Graph, Node, TensorType
from ..ops import REGISTRY
from . import embed_modules as em
from . import torch_modules as tm
from .init import initial_weights


@dataclass(frozen=True)
class Lowered:
    """What one IR node becomes in the fx graph."""

    module: type[nn.Module] | None = None  # a module constructed with ctor_args/ctor_kwargs
    ctor_args: tuple[Any, ...] = ()
    ctor_kwargs: Mapping[str, Any] = field(default_factory=dict)
    fn: Callable[..., Any] | None = None  # or a function called on the inputs
    method: str | None = None  # or a method of the first input
    args: tuple[Any, ...] = ()  # extra positional arguments after the inputs
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    passthrough: bool = False  # the op is the identity: its value is its input


Rule = Callable[[Node, tuple[TensorType, ...]], Lowered]


def _fn(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Rule:
    return lambda node, ins: Lowered(fn=fn, args=args, kwargs=kwargs)


def _attrs_fn(fn: Callable[..., Any], **names: str) -> Rule:
    """A function whose keyword arguments are node attributes (`dim="axis"`)."""
    return lambda node, ins: Lowered(fn=fn, kwargs={k: node.attr(a) for k, a in names.items()})


def _features(ins: tuple[TensorType, ...]) -> int:
    f = ins[0].shape[-1]
    assert isinstance(f, int), "shape inference guarantees a concrete feature axis"
    return f


def _dense(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    tie = node.attr("tie")
    if tie is not None:  # the weight is the embedding module's own, read where it lives
        bias = {"bias": node.attr("bias")}
        return Lowered(em.TiedLinear, (node.attr("units"),), bias, args=(_Attr(f"{tie}.weight"),))
    return Lowered(nn.Linear, (_features(ins), node.attr("units")), {"bias": node.attr("bias")})


def _prelu(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    n = node.attr("num_parameters")
    return Lowered(nn.PReLU, (), {"num_parameters": n, "init": node.attr("init")})


_BATCHNORM = {2: nn.BatchNorm1d, 3: nn.BatchNorm1d, 4: nn.BatchNorm2d, 5: nn.BatchNorm3d}


def _batchnorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "momentum": node.attr("momentum"),
              "affine": node.attr("affine")}  # fmt: skip
    return Lowered(_BATCHNORM[ins[0].rank], (ins[0].shape[1],), kwargs)


def _layernorm(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    kwargs = {"eps": node.attr("eps"), "elementwise_affine": node.attr("affine")}
    return Lowered(nn.LayerNorm, (_features(ins),), kwargs)


def _softplus(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=F.softplus, kwargs={"beta": node.attr("beta")})


def _soboleva(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=tm.soboleva_tanh, args=tuple(node.attr(k) for k in "abcd"))


def _reshape(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    """A target shape with ints, -1 and symbolic dims; each symbolic dim is read off the
    input (`x.size(i)`) where an input axis has it, else it becomes the one -1."""
    target, x = list(node.attr("shape")), ins[0]
    free = -1 not in target
    for i, d in enumerate(target):
        if not is_sym(d):
            continue
        axis = next((a for a, xd in enumerate(x.shape) if dims_equal(xd, d)), None)
        if axis is not None:
            target[i] = _Size(axis)
        elif free:
            target[i], free = -1, False
        else:
            raise ShapeError(
                f"reshape to {node.attr('shape')} cannot be lowered: more than one dim "
                "is neither a number nor an input dim",
                node.loc,
                "write -1 for the dim to infer",
            )
    return Lowered(fn=torch.reshape, args=(tuple(target),))


@dataclass(frozen=True)
class _Size:
    """`x.size(axis)` of the op's first input, as an argument."""

    axis: int


@dataclass(frozen=True)
class _Attr:
    """A parameter of another node's module (`emb.weight`), as an argument: an fx
    get_attr, so a weight shared by two nodes is held, and trained, once."""

    path: str


def _permute(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(method="permute", args=tuple(node.attr("dims")))


def _concat(node: Node, ins: tuple[TensorType, ...]) -> Lowered:
    return Lowered(fn=tm.cat, kwargs={"dim": node.attr("axis")})


def _chain(pair: Callable[[Any, Any], Any], many: Callable[..., Any]) -> Rule:
    """`a + b` for two inputs, add(a, b, c, ...) for more."""
    return lambda node, ins: Lowered(fn=pair if len(ins) == 2 else many)


TORCH_RULES: dict[str, Rule] = {
    "dense": _dense,
    "identity": lambda node, ins: Lowered(passthrough=True),
    "step": _fn(tm.step),
    "sigmoid": _fn(torch.sigmoid),
    "tanh": _fn(torch.tanh),
    "lecun_tanh": _fn(tm.lecun_tanh),
    "soboleva_tanh": _soboleva,
    "relu": _fn(torch.relu),
    "leaky_relu": _attrs_fn(F.leaky_relu, negative_slope="slope"),
    "prelu": _prelu,
    "gelu": _attrs_fn(F.gelu, approximate="approximate"),
    "elu": _attrs_fn(F.elu, alpha="alpha"),
    "selu": _fn(F.selu),
    "silu": _fn(F.silu),
    "gaussian": _fn(tm.gaussian),
    "softplus": _softplus,
    "softmax": _attrs_fn(torch.softmax, dim="axis"),
    "log_softmax": _attrs_fn(torch.log_softmax, dim="axis"),
    "maxout": _attrs_fn(tm.maxout, pieces="pieces"),
    "rbf": lambda node, ins: Lowered(
        tm.RBF, (_features(ins), node.attr("units")), {"learn_sigma": node.attr("learn_sigma")}
    ),
    "polynomial": _attrs_fn(tm.polynomial, degree="degree"),
    "fourier": _attrs_fn(tm.fourier, n="n"),
    "dropout": lambda node, ins: Lowered(nn.Dropout, (node.attr("p"),)),
    "batchnorm": _batchnorm,
    "layernorm": _layernorm,
    "flatten": _attrs_fn(torch.flatten, start_dim="start", end_dim="end"),
    "reshape": _reshape,
    "permute": _permute,
    "standardize": lambda node, ins: Lowered(
        tm.Standardize, (_features(ins),), {"method": node.attr("method")}
    ),
    "add": _chain(operator.add, tm.add),
    "mul": _chain(operator.mul, tm.mul),
    "concat": _concat,
    "residual_add": _chain(operator.add, tm.add),
    "highway_gate": lambda node, ins: Lowered(tm.HighwayGate, (_features(ins),)),
}


def _construct(low: Lowered) -> nn.Module:
    assert low.module is not None
    kwargs = dict(low.ctor_kwargs)
    if low.module is nn.PReLU:  # its `init` is a number, not a scheme; weights come later
        kwargs.pop("init")
    return low.module(*low.ctor_args, **kwargs)


def _add_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    *parents, leaf = path.split(".")
    owner = root
    for part in parents:
        child = owner._modules.get(part)
        if child is None:
            child = nn.Module()
            owner.add_module(part, child)
        owner = child
    owner.add_module(leaf, module)


def build_fx(graph: Graph) -> tuple[fx.Graph, nn.Module, dict[str, Lowered]]:
    """The fx graph, the root module holding every layer (weights not loaded), and each
    module node's rule result (for writing its constructor into model.py)."""
    g = fx.Graph()
    modules: dict[str, Lowered] = {}
    root = nn.Module()
    types = graph.types()
    env: dict[str, fx.Node] = {i.name: g.placeholder(i.name) for i in graph.inputs}
    live = graph.live()  # not the nodes only export.outputs use
    for node in graph.nodes:
        if node.name not in live:
            continue
        ins = tuple(types[i] for i in node.inputs)
        low = TORCH_RULES[node.op](node, ins)
        args = tuple(env[i] for i in node.inputs)
        if low.passthrough:
            env[node.name] = args[0]
            continue
        extra = tuple(_arg(g, a, args[0]) for a in low.args)
        if low.module is not None:
            modules[node.name] = low
            _add_submodule(root, node.name, _construct(low))
            env[node.name] = g.call_module(node.name, args + extra, dict(low.kwargs))
        elif low.method is not None:
            env[node.name] = g.call_method(low.method, args + extra, dict(low.kwargs))
        else:
            assert low.fn is not None
            env[node.name] = g.call_function(low.fn, args + extra, dict(low.kwargs))
    outs = {name: env[value] for name, value in graph.outputs}
    g.output(next(iter(outs.values())) if len(outs) == 1 else outs)
    g.lint()
    return g, root, modules


def _arg(g: fx.Graph, a: Any, x: fx.Node) -> Any:
    if isinstance(a, _Size):
        return g.call_method("size", (x, a.axis))
    if isinstance(a, _Attr):
        return g.get_attr(a.path)
    if isinstance(a, tuple):
        return tuple(_arg(g, i, x) for i in a)
    return a


def to_torch(
    graph: Graph, weights: Mapping[str, Any] | None = None, *, seed: int = 0
) -> fx.GraphModule:
    """The graph as a GraphModule with weights loaded: `weights` (numpy arrays or tensors
    keyed like its state_dict), else the spec's init schemes drawn with `seed`."""
    g, root, _ = build_fx(graph)
    gm = fx.GraphModule(root, g, class_name=graph.name)
    state = weights if weights is not None else initial_weights(graph, seed)
    wanted = gm.state_dict().keys()
    tensors = {k: torch.as_tensor(np.asarray(v)) if not torch.is_tensor(v) else v
               for k, v in state.items() if k in wanted}  # fmt: skip
    gm.load_state_dict(tensors, strict=True)
    return gm


def state_dict_numpy(module: nn.Module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


# The layer library's families keep their rules in files of their own.
from . import attention_torch, conv_torch, embed_torch, generative_torch, recurrent_torch  # noqa: E402

for _family in (conv_torch, recurrent_torch, embed_torch, attention_torch, generative_torch):
    TORCH_RULES.update(_family.TORCH_RULES)

for _name, _rule in TORCH_RULES.items():
    REGISTRY[_name].torch = _rule
