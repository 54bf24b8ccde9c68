"""Lowering to PyTorch: the typed IR becomes a `torch.fx.GraphModule`.

The module is built by constructing an fx graph node by node (no source strings):
layers with weights are standard `torch.nn` modules (or the small modules of a family's
modules.py) registered at the IR node's dotted name, so `state_dict` keys read
`stem.conv2d.weight`, the same names the ONNX initializers get; parameter-free ops are
calls of torch functions. Weights come from `initial_weights` (the spec's init
schemes, numpy) or from a trained state dict.

`TORCH_RULES` maps every op to its rule (lowered.py: what to call, with which extra
arguments); it is collected from the `torch.py` of every family in `ops.FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from operator import getitem
from typing import Any

import numpy as np
import torch
import torch.fx as fx
from torch import nn

from ..ir import Graph
from ..ops import FAMILIES
from ..passes import prune
from .initial_weights import initial_weights
from .lowered import Attr, Lowered, Rule, Size

TORCH_RULES: dict[str, Rule] = {}
for _family in FAMILIES:
    TORCH_RULES.update(import_module(f"..ops.{_family}.torch", __package__).TORCH_RULES)


def _construct(low: Lowered) -> nn.Module:
    assert low.module is not None
    return low.module(*low.ctor_args, **low.ctor_kwargs)


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
    tuples: dict[str, fx.Node] = {}  # the whole result of the calls that return a tuple
    for node in prune(graph).nodes:  # not the nodes only export.outputs use
        ins = tuple(types[i] for i in node.inputs)
        low = TORCH_RULES[node.op](node, ins)
        args = tuple(env[i] for i in node.inputs)
        if low.passthrough:
            env[node.name] = args[0]
            continue
        if low.take is not None:
            env[node.name] = g.call_function(getitem, (tuples[node.inputs[0]], low.take))
            env[node.name].meta["dlc_node"] = node.name
            continue
        extra = tuple(_arg(g, a, args[0]) for a in low.call_args)
        if low.module is not None:
            modules[node.name] = low
            _add_submodule(root, node.name, _construct(low))
            env[node.name] = g.call_module(node.name, args + extra, dict(low.call_kwargs))
        elif low.method is not None:
            env[node.name] = g.call_method(low.method, args + extra, dict(low.call_kwargs))
        else:
            assert low.fn is not None
            env[node.name] = g.call_function(low.fn, args + extra, dict(low.call_kwargs))
        if low.item is not None:
            tuples[node.name] = env[node.name]
            env[node.name] = g.call_function(getitem, (tuples[node.name], low.item))
        # which IR node an fx node computes (the probe reads each node's output by it)
        env[node.name].meta["dlc_node"] = node.name
    outs = {name: env[value] for name, value in graph.outputs}
    g.output(next(iter(outs.values())) if len(outs) == 1 else outs)
    g.lint()
    return g, root, modules


def _arg(g: fx.Graph, a: Any, x: fx.Node) -> Any:
    if isinstance(a, Size):
        return g.call_method("size", (x, a.axis))
    if isinstance(a, Attr):
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
