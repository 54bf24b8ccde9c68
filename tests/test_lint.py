"""`dlc lint`: every rule of the registry reports its bad-practice spec in
tests/lint_cases/ exactly, at the line and column the case's `# expect:` comment names,
and nothing else; silencing by line comment and by `lint: {ignore}`; the command's
exit codes and JSON; and what the specs in specs/ (and the zoo) lint to."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, run_dlc
from dlc.compiler.lint import RULES, LintError, lint
from dlc.compiler.lint.data import zscore_extremes
from dlc.compiler.pipeline import check_file, check_text

CASES = sorted((ROOT / "tests" / "lint_cases").glob("*.yaml"))
EXPECT = re.compile(r"^# expect: (DLC\d+) at (\d+):(\d+)$", re.MULTILINE)


def found(checked_or_path: object) -> list[tuple[str, int, int]]:
    checked = check_file(checked_or_path) if isinstance(checked_or_path, Path) else checked_or_path
    return [(x.rule, x.loc.line, x.loc.col) for x in lint(checked).lints]  # type: ignore


# -- the registry -------------------------------------------------------------------


@pytest.mark.parametrize("rule", RULES.values(), ids=lambda r: r.id)
def test_each_rule_is_documented_and_has_a_case(rule) -> None:  # noqa: ANN001
    assert re.fullmatch(r"DLC1\d\d", rule.id)
    assert re.fullmatch(r"[a-z0-9-]+", rule.name)
    assert rule.title and rule.doc.endswith(".")
    assert [c for c in CASES if c.name.startswith(rule.id.lower() + "_")], (
        f"no tests/lint_cases/{rule.id.lower()}_*.yaml"
    )


def test_rule_names_are_unique() -> None:
    assert len({r.name for r in RULES.values()}) == len(RULES)


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.stem)
def test_each_case_reports_exactly_its_rule_where_it_says(case: Path) -> None:
    (expected,) = EXPECT.findall(case.read_text())
    rule, line, col = expected
    assert case.name.startswith(rule.lower() + "_")
    assert found(case) == [(rule, int(line), int(col))]


# -- the rules' edges -----------------------------------------------------------------

MOONS = 'training: {loss: cross_entropy, data: {train: "builtin:moons"}}\n'


def spec(model: str, training: str = MOONS, inputs: str = "{x: [B, 2]}") -> str:
    return f"dlc: 1\nname: t\ninputs: {inputs}\nmodel:\n{model}{training}"


@pytest.mark.parametrize(
    ("model", "training", "expected"),
    [
        # a residual around the sigmoid stack carries the gradient: no DLC101
        (
            "  - dense(8)\n  - residual(" + " -> ".join(["dense(8) -> sigmoid"] * 6) + ")\n"
            "  - dense(2)\n",
            MOONS,
            [],
        ),
        # tanh stacks count too
        (
            "  - " + " -> ".join(["dense(8) -> tanh"] * 5) + " -> dense(2)\n",
            MOONS,
            [("DLC101", 5, 17)],
        ),
        # four saturating layers are not "deep"
        ("  - " + " -> ".join(["dense(8) -> sigmoid"] * 4) + " -> dense(2)\n", MOONS, []),
        # the default init is no choice the spec made
        ("  - dense(8) -> relu\n  - dense(2)\n", MOONS, []),
        # training.init applies to every layer: reported where it is written
        (
            "  - dense(8) -> tanh\n  - dense(2)\n",
            'training: {loss: cross_entropy, init: he_normal, data: {train: "builtin:moons"}}\n',
            [("DLC102", 7, 39)],
        ),
        ("  - dense(8, init=glorot_normal) -> selu\n  - dense(2)\n", MOONS, [("DLC102", 5, 5)]),
        # a norm between the layer and its activation rescales whatever the init gave
        ("  - dense(8, init=glorot_normal) -> batchnorm -> relu\n  - dense(2)\n", MOONS, []),
        # a single unit may start constant (linreg's θ₀), a bias too
        (
            "  - dense(1, init=constant(5))\n",
            'training: {loss: mse, data: {train: "builtin:linreg"}}\n',
            [],
        ),
        # log_softmax before cross_entropy is harmless (log_softmax is idempotent)
        ("  - dense(2) -> log_softmax\n", MOONS, []),
        (
            "  - dense(1) -> sigmoid\n",
            'training: {loss: bce, data: {train: "builtin:moons"}}\n',
            [("DLC104", 5, 17)],
        ),
        # bce on ten units of a one-label, ten-class set
        (
            "  - standardize(method=minmax) -> dense(10)\n",
            'training: {loss: bce, data: {train: "builtin:digits"}}\n',
            [("DLC105", 6, 18)],
        ),
        # mse on class labels; on an autoencoder's own input it is right
        (
            "  - dense(1)\n",
            'training: {loss: mse, data: {train: "builtin:moons"}}\n',
            [("DLC105", 6, 18)],
        ),
        (
            "  - dense(2)\n",
            'training:\n  loss: [{loss: mse, target: x}]\n  data: {train: "builtin:moons"}\n',
            [],
        ),
        (
            "  - dense(2)\n",
            'training: {loss: cross_entropy, batch_size: 8, data: {train: "builtin:moons"}}\n',
            [],
        ),
        (
            "  - dense(2)\n",
            'training: {loss: cross_entropy, optimizer: "sgd(1e-6)", '
            'data: {train: "builtin:moons"}}\n',
            [("DLC113", 6, 49)],
        ),
        # an adamw's own weight_decay with regularize_all
        (
            "  - dense(2)\n",
            "training: {loss: cross_entropy, optimizer: adamw, "
            'regularize_all: true, data: {train: "builtin:moons"}}\n',
            [("DLC115", 6, 67)],
        ),
        # standardized by batchnorm as the first layer: no DLC111
        (
            "  - batchnorm -> dense(3)\n",
            'training: {loss: cross_entropy, data: {train: "builtin:iris"}}\n',
            [],
        ),
    ],
)
def test_rule_edges(model: str, training: str, expected: list) -> None:  # type: ignore[type-arg]
    assert found(check_text(spec(model, training), "t.yaml")) == expected


def test_symbolic_map_sizes_cannot_pool_to_nothing() -> None:
    model = "  - " + " -> ".join(["maxpool2d(2)"] * 4) + " -> conv2d(4, 1)\n"
    assert found(check_text(spec(model, "", "{x: [B, 1, H, W]}"), "t.yaml")) == []


def test_a_zscore_of_one_rare_value_in_n_is_about_root_n_sigma() -> None:
    # the digits' edge pixel: 0 in 1,599 images, 2 in one; its z-score is √1600 ≈ 40
    x = np.zeros((1600, 3))
    x[0, 1] = 2.0
    x[:, 2] = np.arange(1600)  # a spread-out feature is fine
    count, z = zscore_extremes(x, 1e-8)
    assert count == 1 and z == pytest.approx(np.sqrt(1599), rel=1e-3)
    assert zscore_extremes(x, 1.0)[0] == 0  # a floor on the scale helps


# -- silencing -----------------------------------------------------------------------

SOFTMAX = "  - dense(2) -> softmax{comment}\n"


def test_a_line_comment_silences_its_rule_on_that_line() -> None:
    for comment in ("  # dlc: ignore DLC104", "  # dlc: ignore dlc104, DLC101", "  # dlc: ignore"):
        checked = check_text(spec(SOFTMAX.format(comment=comment)), "t.yaml")
        report = lint(checked)
        assert report.lints == () and report.silenced == 1, comment
    # another rule's id silences nothing
    checked = check_text(spec(SOFTMAX.format(comment="  # dlc: ignore DLC103")), "t.yaml")
    assert found(checked) == [("DLC104", 5, 17)]


def test_the_lint_section_silences_a_rule_everywhere() -> None:
    text = spec(SOFTMAX.format(comment="")) + "lint: {ignore: [DLC104]}\n"
    assert found(check_text(text, "t.yaml")) == []


@pytest.mark.parametrize(
    ("tail", "comment", "line", "col", "suggestion"),
    [
        ("lint: {ignore: [DCL104]}\n", "", 7, 17, "DLC104"),
        ("", "  # dlc: ignore DLC1040", 5, 40, "DLC104"),
    ],
)
def test_an_unknown_rule_id_is_a_located_error(tail, comment, line, col, suggestion) -> None:  # noqa: ANN001
    checked = check_text(spec(SOFTMAX.format(comment=comment)) + tail, "t.yaml")
    with pytest.raises(LintError) as info:
        lint(checked)
    assert f"(did you mean '{suggestion}'?)" in info.value.message
    assert "unknown lint rule" in info.value.message
    assert (info.value.loc.line, info.value.loc.col) == (line, col)


def test_the_schema_checks_the_lint_section() -> None:
    from dlc.compiler.errors import SchemaError

    with pytest.raises(SchemaError):
        check_text(spec("  - dense(2)\n") + "lint: {ignore: DLC104}\n", "t.yaml")
    with pytest.raises(SchemaError):
        check_text(spec("  - dense(2)\n") + "lint: {select: [DLC104]}\n", "t.yaml")


# -- the command ---------------------------------------------------------------------


def test_the_command_prints_warnings_and_exits_0_or_1_with_strict() -> None:
    case = str(ROOT / "tests" / "lint_cases" / "dlc104_softmax_before_cross_entropy.yaml")
    result = run_dlc("lint", case)
    assert result.returncode == 0, result.stderr
    assert (
        "dlc104_softmax_before_cross_entropy.yaml:8:17: warning: the model's output ends in "
        "softmax" in result.stdout
    )
    assert "[DLC104]" in result.stdout and "  hint: drop this softmax" in result.stdout
    assert result.stdout.rstrip().endswith(": 1 warning")
    assert run_dlc("lint", "--strict", case).returncode == 1
    assert run_dlc("lint", "--error-on-warning", case).returncode == 1
    assert run_dlc("lint", "--strict", str(ROOT / "specs" / "digits_mlp.yaml")).returncode == 0


def test_the_command_prints_json() -> None:
    case = str(ROOT / "tests" / "lint_cases" / "dlc113_learning_rate.yaml")
    result = run_dlc("lint", "--json", case)
    assert result.returncode == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry == {
        "rule": "DLC113",
        "severity": "warning",
        "message": "lr=1 is far above adam's usual range 1e-05..0.01: the loss is likely to "
        "diverge",
        "hint": "start from adam's default (lr=0.001) and tune by factors of 3",
        "file": case,
        "line": 11,
        "col": 19,
        "end_col": 21,
    }


def test_a_spec_that_does_not_check_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dlc: 1\nname: t\ninputs: {x: [B, 2]}\nmodel: [dens(2)]\n")
    result = run_dlc("lint", str(bad))
    assert result.returncode == 1
    assert "bad.yaml:4:9: error: unknown op or block 'dens'" in result.stderr


def test_lint_imports_no_torch() -> None:
    code = (
        "import sys\nfrom dlc.compiler.pipeline import check_file\n"
        "from dlc.compiler.lint import lint\n"
        "lint(check_file('tests/lint_cases/dlc112_zscore_near_constant.yaml'))\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr


# -- the specs -----------------------------------------------------------------------

# What every spec in specs/ lints to; each is discussed in the lint notes. A change here
# is a deliberate one: a new rule, or a spec fixed.
SPEC_LINTS: dict[str, list[tuple[str, int, int]]] = {
    "graph_mlp": [("DLC111", 7, 10)],
    "mnist_mlp": [("DLC111", 7, 10)],
    "resnet_mlp": [("DLC111", 6, 10)],
}


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "specs" / "zoo").glob("*.yaml")),
    ids=lambda p: p.stem,
)
def test_the_specs_lint_as_listed(path: Path) -> None:
    assert found(path) == SPEC_LINTS.get(path.stem, [])


def test_train_prints_the_lints_first_and_trains(tmp_path: Path) -> None:
    case = ROOT / "tests" / "lint_cases" / "dlc113_learning_rate.yaml"
    result = run_dlc("train", str(case), "--set", "training.epochs=1", "--out",
                     str(tmp_path / "run"), "-q", env={"OMP_NUM_THREADS": "1"})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "dlc113_learning_rate.yaml:11:19: warning: lr=1 is far above adam's" in result.stderr
    assert (tmp_path / "run" / "model.onnx").exists()
