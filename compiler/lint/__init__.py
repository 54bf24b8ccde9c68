"""`dlc lint`: the course's lessons as located warnings, read from the checked spec.

    Checked (typed IR + training plan) --rules (registry.py)--> Lints --silenced--> report

Each rule has a stable id (DLC101...) and lives with its group: gradients.py (saturating
stacks, inits), losses.py (the loss and the output), layers.py (dropout, batchnorm,
dense, pooling), data.py (standardization), optim.py (learning rate, momentum, decay).
A spec silences a rule on one line with a trailing comment `# dlc: ignore DLC103`
(`# dlc: ignore` silences every rule there), or everywhere with `lint: {ignore:
[DLC103]}`. Nothing here runs the model or imports torch: a runtime probe
(`dlc lint --probe`) adds its own findings to the same report.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import Collector, DlcError, Loc, Source, did_you_mean
from . import data, gradients, layers, losses, optim  # noqa: F401 - they register the rules
from .registry import RULES, Finding, Lint, LintContext, Rule

if TYPE_CHECKING:
    from ..pipeline import Checked

__all__ = ["PROBE_RULES", "RULES", "Finding", "Lint", "LintError", "Rule", "lint", "silencer",
           "silenced_lines"]  # fmt: skip

# The rules of the runtime probe (runtime/probe.py, `dlc lint --probe`): not static, so not
# in RULES, but a spec silences them the same ways.
PROBE_RULES = {
    "DLC201": "vanishing-gradient-at-init",
    "DLC202": "saturated-activations",
    "DLC203": "dead-relus",
}


class LintError(DlcError):
    """The spec's lint options name rules that don't exist."""

    phase = "lint"


_IGNORE = re.compile(r"#\s*dlc:\s*ignore\b(?P<ids>[^#]*)")
_ID = re.compile(r"[A-Za-z]+\d+")


def silenced_lines(source: Source) -> dict[int, tuple[tuple[str, Loc], ...] | None]:
    """Line -> the rule ids its `# dlc: ignore ...` comment names (with where each is
    written), or None for a bare `# dlc: ignore` (every rule)."""
    out: dict[int, tuple[tuple[str, Loc], ...] | None] = {}
    for number, text in enumerate(source.text.splitlines(), 1):
        match = _IGNORE.search(text)
        if match is None:
            continue
        start = match.start("ids")
        ids = tuple(
            (m[0].upper(), Loc(source, number, start + m.start() + 1, start + m.end() + 1))
            for m in _ID.finditer(match["ids"])
        )
        out[number] = ids or None
    return out


@dataclass(frozen=True, slots=True)
class LintReport:
    lints: tuple[Lint, ...]
    silenced: int  # how many findings the spec's ignores removed


def silencer(checked: Checked) -> Callable[[str, Loc | None], bool]:
    """Whether the spec silences rule `id` at `loc` (by its line's comment or its `lint:
    {ignore}`); raises a LintError when an ignore names a rule that doesn't exist."""
    source = checked.source
    lines = silenced_lines(source)
    everywhere = _check_ids(checked, lines)

    def silenced(rule_id: str, loc: Loc | None) -> bool:
        on_line = lines.get(loc.line, ()) if loc and loc.source is source else ()
        return rule_id in everywhere or on_line is None or rule_id in dict(on_line or ())

    return silenced


def lint(checked: Checked) -> LintReport:
    """Every registered rule on `checked`, less what the spec silences; raises a
    LintError when an ignore names a rule that doesn't exist."""
    is_silenced = silencer(checked)
    ctx = LintContext(checked)
    found: list[Lint] = []
    silenced = 0
    for rule in RULES.values():
        for f in rule.check(ctx):
            if is_silenced(rule.id, f.loc):
                silenced += 1
            else:
                found.append(Lint(rule.id, f.message, f.loc, f.hint))
    found.sort(key=lambda x: (x.loc.line if x.loc else 0, x.loc.col if x.loc else 0, x.rule))
    return LintReport(tuple(found), silenced)


def _check_ids(
    checked: Checked, lines: dict[int, tuple[tuple[str, Loc], ...] | None]
) -> frozenset[str]:
    """The ids of `lint: {ignore}`; every id there and in comments is a known rule."""
    ignore = checked.spec.lint.ignore
    written = list(ignore) + [w for ids in lines.values() for w in ids or ()]
    errors = Collector(LintError)
    known = {**RULES, **PROBE_RULES}
    for rule_id, loc in written:
        if rule_id.upper() not in known:
            errors.add(
                f"unknown lint rule '{rule_id}'{did_you_mean(rule_id.upper(), known)}",
                loc,
                "the rules: " + ", ".join(sorted(known)),
            )
    errors.raise_if_any()
    return frozenset(r.upper() for r, _ in ignore)
