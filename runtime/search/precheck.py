"""The pre-check of a search space: the front end at the corners and at a sample of it.

Before any trial trains, `precheck` runs `dlc check` (front end only: no torch) on the
spec with the overrides of each corner of the space (every combination of each range's
two ends and of every choice, capped) and of a seeded random sample, and groups the
failures by their located message, so a width that breaks a residual is reported once,
with the values that made it fail, not once per point.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field

from ...compiler.errors import Diagnostic, DlcError
from ...compiler.loader import Document
from ...compiler.pipeline import check_document
from ...compiler.search import Dimension, SearchSpec, Value, describe, point_overrides
from ...compiler.spec import Spec

MAX_CORNERS = 256
SAMPLES = 64
SHOWN = 3  # example points per failing region


@dataclass
class Failure:
    """One failing region: the check's located diagnostic and the points that hit it."""

    diagnostic: Diagnostic
    points: list[dict[str, Value]] = field(default_factory=list)


@dataclass
class Precheck:
    checked: int  # points checked
    failures: list[Failure]

    @property
    def failed(self) -> int:
        return sum(len(f.points) for f in self.failures)

    @property
    def all_fail(self) -> bool:
        return self.checked > 0 and self.failed == self.checked

    def render(self) -> str:
        out = []
        for f in self.failures:
            d = f.diagnostic
            head = Diagnostic(f"with {_common(f.points)}: {d.message}", d.loc, d.hint,
                              notes=d.notes)  # fmt: skip
            out.append(head.render())
            more = [describe(p) for p in f.points[1:SHOWN]]
            also = f"; also {'; '.join(more)}" if more else ""
            out.append(f"  ({len(f.points)} of {self.checked} points checked fail here{also})")
        return "\n".join(out)


def _common(points: list[dict[str, Value]]) -> str:
    """The values all of a region's points share (`params.width=12, any params.heads`),
    or the first point whole when they share none."""
    first = points[0]
    same = {k: v for k, v in first.items() if all(p[k] == v for p in points)}
    if len(points) == 1 or not same:
        return describe(first)
    rest = [k for k in first if k not in same]
    return describe(same) + "".join(f", any {k}" for k in rest)


def sample_points(search: SearchSpec, samples: int = SAMPLES) -> list[dict[str, Value]]:
    """The corners of the space (capped at MAX_CORNERS, a seeded sample beyond), then
    `samples` seeded random points."""
    rng = random.Random(search.seed)
    corners = list(itertools.product(*(d.corners() for d in search.dims)))
    if len(corners) > MAX_CORNERS:
        corners = rng.sample(corners, MAX_CORNERS)
    paths = [d.path for d in search.dims]
    points = [dict(zip(paths, c, strict=True)) for c in corners]
    points += [{d.path: _draw(d, rng) for d in search.dims} for _ in range(samples)]
    return points


def _draw(d: Dimension, rng: random.Random) -> Value:
    if d.kind == "choice":
        return rng.choice(d.choices)
    if d.log:
        v = math.exp(rng.uniform(math.log(d.low), math.log(d.high)))
    else:
        v = rng.uniform(d.low, d.high)
    return min(int(d.high), max(int(d.low), round(v))) if d.kind == "int" else v


def precheck(doc: Document, spec: Spec, search: SearchSpec, samples: int = SAMPLES) -> Precheck:
    """Check the spec at every point of `sample_points`; the failures grouped by message."""
    groups: dict[tuple[str, str], Failure] = {}
    seen: set[tuple[tuple[str, Value], ...]] = set()
    checked = 0
    for point in sample_points(search, samples):
        key = tuple(point.items())
        if key in seen:
            continue
        seen.add(key)
        checked += 1
        try:
            check_document(doc, point_overrides(spec, point))
        except DlcError as e:
            d = e.diagnostics[0]
            # the same place with other numbers in its message is the same region
            key_ = (re.sub(r"\d+(\.\d+)?", "N", d.message), str(d.loc))
            group = groups.setdefault(key_, Failure(d))
            group.points.append(point)
    return Precheck(checked, list(groups.values()))
