"""The front end as one call: load, validate, read, elaborate, infer shapes.

    spec.yaml --load--> Document --validate--> Spec --set--> Spec --elaborate--> Graph
              --shapes--> typed Graph --verify

`check_file` and `check_text` return a `Checked` model (the spec, the typed IR graph and
the warnings) or raise the `DlcError` of the first phase that failed, carrying every
independent diagnostic of that phase. No torch, no onnx: this is what `dlc check` runs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .elaborate import elaborate
from .errors import Diagnostic, Source
from .ir import Graph, InitSpec
from .loader import Document, gc_paused, load_file, load_text
from .overrides import apply_overrides
from .shapes import infer_shapes
from .spec import Spec, read_spec
from .training import TrainingPlan, check_loss_outputs
from .validate import validate
from .verify import verify

if TYPE_CHECKING:
    from .networks import GanPlan


@dataclass(frozen=True)
class Checked:
    spec: Spec
    graph: Graph
    warnings: tuple[Diagnostic, ...]
    default_init: InitSpec | None = None
    export_outputs: tuple[tuple[str, str], ...] = ()  # more outputs for the ONNX model
    training: TrainingPlan | None = None  # the checked `training:` section
    # A spec with `networks:` (compiler/networks.py): each network checked on its own, by
    # name; spec, graph, ... above are then the first network's. `gan`: training.gan.
    networks: tuple[tuple[str, Checked], ...] = ()
    gan: GanPlan | None = None

    @property
    def source(self) -> Source:
        return self.spec.document.source


def check_file(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Checked:
    return check_document(load_file(path), overrides)


def check_text(text: str, name: str = "<string>", overrides: Sequence[str] = ()) -> Checked:
    return check_document(load_text(text, name), overrides)


def check_document(doc: Document, overrides: Sequence[str] = ()) -> Checked:
    with gc_paused():  # the front end's objects live until it returns; see loader.py
        return _check(doc, overrides)


def _check(doc: Document, overrides: Sequence[str]) -> Checked:
    validate(doc)
    from .networks import check_networks, check_single

    if "networks" in doc.data:
        return check_networks(doc, overrides)
    check_single(doc)
    return check_spec(apply_overrides(read_spec(doc), overrides))


def check_spec(spec: Spec) -> Checked:
    """A read spec (overrides applied) elaborated, typed and verified."""
    elaborated = elaborate(spec)
    graph, init = elaborated.graph, elaborated.default_init
    typed, warnings = infer_shapes(graph, init)
    verify(typed, typed=True)
    if elaborated.training is not None:  # loss terms that read outputs: kl_normal(mu, logvar)
        check_loss_outputs(elaborated.training, typed)
    return Checked(spec, typed, warnings, init, elaborated.export_outputs, elaborated.training)
