"""Several networks in one spec (`networks:`) and the wiring `training.gan` declares.

    networks:
      generator:     {inputs: {z: [B, 16]}, model: [...]}
      discriminator: {inputs: {x: [B, 64]}, model: [...]}
    training:
      gan: {generator: generator, discriminator: discriminator, noise: z}
      optimizer: {generator: adam(lr=2e-4, beta1=0.5), discriminator: adam(lr=2e-4)}

Each network is a spec of its own (spec.py's `read_spec(doc, network)`: its inputs, model
and outputs; the spec's params, blocks, training options and export) checked by the
single-network pipeline, so every error points into the original YAML. `check_networks`
then checks what ties them together: the names `training.gan` gives, the noise input,
the generator's output against the discriminator's data input (symbolic dims unify,
fixed dims and dtypes are equal), the discriminator's one logit per example, the
condition input of a conditional GAN (the same type in both networks), and one optimizer
per network. No torch here: this is `dlc check`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .dims import Dim, format_shape, is_sym
from .errors import Collector, ElaborationError, Loc, did_you_mean
from .ir import Graph, TensorType
from .loader import Document
from .overrides import apply_overrides
from .spec import read_spec
from .training import DataOptions

if TYPE_CHECKING:
    from .pipeline import Checked

GAN_LOSSES = ("non_saturating", "minimax", "hinge", "wgan_gp")
_TOP_KEYS = ("inputs", "model", "outputs")


@dataclass(frozen=True, slots=True)
class GanPlan:
    """`training.gan`, checked: the two networks, the generator's noise input and fake
    output, the discriminator's data input and logit output, and the options."""

    generator: str
    discriminator: str
    noise: str
    fake: str  # the generator's output (its first)
    data: str  # the discriminator's input that takes real and fake examples
    logit: str  # the discriminator's output (its first)
    condition: str | None = None
    loss: str = "non_saturating"
    discriminator_steps: int = 1
    label_smoothing: float = 0.0
    ema: float | None = None
    gp_weight: float = 10.0
    samples: int = 64
    loc: Loc | None = None


def check_single(doc: Document) -> None:
    """A single-network spec uses no per-network mapping and no training.gan."""
    errors = Collector(ElaborationError)
    t = doc.data.get("training") or {}
    for key in ("optimizer", "schedule"):
        if isinstance(t.get(key), dict):
            errors.add(
                f"training.{key} is a mapping network -> call, but the spec has one network",
                doc.loc(("training", key)),
                f"write one call, e.g. `{key}: adam(lr=1e-3)`, or declare `networks:`",
            )
    if "gan" in t:
        errors.add(
            "training.gan trains two networks against each other, but the spec has one model",
            doc.key_loc(("training", "gan")),
            "declare them under `networks:` (each {inputs, model, outputs})",
        )
    errors.raise_if_any()


def check_networks(doc: Document, overrides: Sequence[str]) -> Checked:
    """Every network checked, and the wiring between them: the first network's Checked,
    with all of them in `networks` and the GAN plan in `gan`."""
    from .pipeline import check_spec

    data = doc.data
    errors = Collector(ElaborationError)
    for key in _TOP_KEYS:
        if key in data:
            errors.add(
                f"a spec with networks: has no top-level {key}: each network has its own",
                doc.key_loc((key,)),
                f"move `{key}:` into the network it belongs to",
            )
    errors.raise_if_any()
    nets = {n: check_spec(apply_overrides(read_spec(doc, n), overrides)) for n in data["networks"]}
    t = data.get("training") or {}
    if "gan" in t and "loss" in t:
        errors.add(
            "training.gan is the objective of a spec with networks: it takes no loss",
            doc.key_loc(("training", "loss")),
            "remove `loss:`; choose the adversarial loss with training.gan.loss",
        )
    _check_per_network(doc, t, nets, errors)
    gan = _check_gan(doc, t["gan"], nets, errors) if "gan" in t else None
    errors.raise_if_any()
    if gan is not None:  # the generator takes noise, not the data: no data lints, no dlc.data
        nets[gan.generator] = _without_data(nets[gan.generator])
    first = next(iter(nets.values()))
    return replace(first, networks=tuple(nets.items()), gan=gan)


def _without_data(checked: Checked) -> Checked:
    plan = checked.training
    if plan is None:
        return checked
    return replace(
        checked, training=replace(plan, options=replace(plan.options, data=DataOptions()))
    )


def _check_per_network(doc: Document, t: dict[str, Any], nets: dict[str, Any],
                       errors: Collector) -> None:  # fmt: skip
    """A mapping optimizer/schedule names only networks; the optimizer names each."""
    for key in ("optimizer", "schedule"):
        given = t.get(key)
        if not isinstance(given, dict):
            continue
        for name in given:
            if name not in nets:
                errors.add(
                    f"training.{key} names unknown network '{name}'{did_you_mean(name, nets)}",
                    doc.key_loc(("training", key, name)),
                    f"the spec's networks: {', '.join(nets)}",
                )
        if key == "optimizer" and "gan" in t:
            for name in nets:
                if name not in given:
                    errors.add(
                        f"training.optimizer gives no optimizer for network '{name}'",
                        doc.loc(("training", key)),
                        f"add `{name}: adam(lr=2e-4, beta1=0.5)` (one optimizer per network)",
                    )


def _check_gan(doc: Document, g: dict[str, Any], nets: dict[str, Checked],
               errors: Collector) -> GanPlan | None:  # fmt: skip
    path = ("training", "gan")

    def at(key: str) -> Loc:
        return doc.loc(path + (key,))

    for role in ("generator", "discriminator"):
        if g[role] not in nets:
            errors.add(
                f"training.gan.{role} names unknown network '{g[role]}'"
                f"{did_you_mean(g[role], nets)}",
                at(role),
                f"the spec's networks: {', '.join(nets)}",
            )
    if errors:
        return None
    gen, dis = nets[g["generator"]].graph, nets[g["discriminator"]].graph
    if g["generator"] == g["discriminator"]:
        errors.add("training.gan's generator and discriminator are one network",
                   at("discriminator"), "name two networks of `networks:`")  # fmt: skip
        return None
    g_in, d_in = _inputs(gen), _inputs(dis)
    noise, cond = g["noise"], g.get("condition")
    if noise not in g_in:
        errors.add(
            f"noise '{noise}' is not an input of the generator '{g['generator']}'"
            f"{did_you_mean(noise, g_in)}",
            at("noise"),
            f"its inputs: {', '.join(g_in)}",
        )
    elif g_in[noise].dtype not in ("float32", "float64", "float16"):
        errors.add(f"noise '{noise}' must be a float input, not {g_in[noise]}", at("noise"))
    if cond is not None:
        for role, ins in (("generator", g_in), ("discriminator", d_in)):
            if cond not in ins:
                errors.add(
                    f"condition '{cond}' is not an input of the {role} '{g[role]}'"
                    f"{did_you_mean(cond, ins)}",
                    at("condition"),
                    f"a conditional GAN feeds the label to both networks: add `{cond}` to "
                    f"the {role}'s inputs (its inputs: {', '.join(ins)})",
                )
        if cond in g_in and cond in d_in and not _fits(g_in[cond], d_in[cond]):
            errors.add(
                f"condition '{cond}' is {g_in[cond]} in the generator but {d_in[cond]} in "
                "the discriminator",
                _input_loc(doc, g["discriminator"], cond),
                "give the label input one type in both networks",
            )
    extra = [n for n in g_in if n not in (noise, cond)]
    if extra:
        errors.add(
            f"the generator takes input '{extra[0]}', which training.gan does not feed",
            _input_loc(doc, g["generator"], extra[0]),
            "a generator takes the noise and, in a conditional GAN, the condition",
        )
    data_ins = [n for n in d_in if n != cond]
    if len(data_ins) != 1:
        errors.add(
            f"the discriminator '{g['discriminator']}' must take one example input besides "
            f"the condition, not {len(data_ins)} ({', '.join(data_ins) or 'none'})",
            doc.loc(("networks", g["discriminator"], "inputs")),
        )
        return None
    fake_name, fake_value = gen.outputs[0]
    fake, real = gen.types()[fake_value], d_in[data_ins[0]]
    if not _fits(fake, real):
        errors.add(
            f"the generator's output '{fake_name}' {fake} does not fit the discriminator's "
            f"input '{data_ins[0]}' {real}",
            _input_loc(doc, g["discriminator"], data_ins[0]),
            "the generator must output examples of the discriminator's input shape and "
            "dtype (a reshape or flatten at the generator's end)",
        )
    logit_name, logit_value = dis.outputs[0]
    logit = dis.types()[logit_value]
    if logit.rank not in (1, 2) or (logit.rank == 2 and logit.shape[1] != 1):
        errors.add(
            f"the discriminator's output '{logit_name}' is {logit}: it must be one logit per "
            "example, [B] or [B, 1]",
            doc.loc(("networks", g["discriminator"], "model")),
            "end the discriminator with dense(1)",
        )
    return GanPlan(
        g["generator"], g["discriminator"], noise, fake_name, data_ins[0], logit_name, cond,
        g.get("loss", "non_saturating"), int(g.get("discriminator_steps", 1)),
        float(g.get("label_smoothing", 0.0)),
        None if g.get("ema") is None else float(g["ema"]),
        float(g.get("gp_weight", 10.0)), int(g.get("samples", 64)), doc.key_loc(path),
    )  # fmt: skip


def _inputs(graph: Graph) -> dict[str, TensorType]:
    return {i.name: i.type for i in graph.inputs}


def _input_loc(doc: Document, network: str, name: str) -> Loc:
    return doc.key_loc(("networks", network, "inputs", name))


def _fits(a: TensorType, b: TensorType) -> bool:
    """Same dtype and rank; fixed dims equal; a symbolic dim unifies with any dim, one
    symbol with one value throughout."""
    if a.dtype != b.dtype or a.rank != b.rank:
        return False
    bound: dict[str, Dim] = {}
    for x, y in zip(a.shape, b.shape, strict=True):
        if is_sym(x) or is_sym(y):
            for s, v in ((x, y), (y, x)):
                if is_sym(s) and bound.setdefault(format_shape([s]), v) != v:
                    return False
        elif x != y:
            return False
    return True
