"""The `dlc` command line, run as a real subprocess, over every spec in specs/."""

from __future__ import annotations

import json
import sys

import pytest

from conftest import ROOT, SPECS, run_dlc
from dlc.schema import load_schema


@pytest.mark.parametrize("spec", SPECS, ids=[p.stem for p in SPECS])
def test_check_and_summary_every_spec(spec) -> None:  # noqa: ANN001
    result = run_dlc("check", str(spec))
    assert result.returncode == 0, result.stderr
    assert f"ok: {spec.stem}" in result.stdout
    result = run_dlc("summary", str(spec), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["name"] == spec.stem
    nets = list(data["networks"].values()) if "networks" in data else [data]  # a GAN's two
    for net in nets:
        assert net["total_params"] == sum(r["params"] for r in net["nodes"])
        assert set(net["outputs"])
    assert data["total_params"] == sum(net["total_params"] for net in nets)


def test_mnist_mlp_has_the_courses_parameter_count() -> None:
    result = run_dlc("summary", "specs/mnist_mlp.yaml")
    assert result.returncode == 0, result.stderr
    assert "parameters: 235,146" in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:4] == ["dense", "dense", "[B,", "256]"] for line in lines)


def test_set_overrides_a_param() -> None:
    result = run_dlc("summary", "specs/mnist_mlp.yaml", "--json", "--set", "hidden=512")
    data = json.loads(result.stdout)
    assert data["total_params"] == 784 * 512 + 512 + 512 * 128 + 128 + 128 * 10 + 10


def test_check_ir_prints_the_canonical_text() -> None:
    result = run_dlc("check", "specs/xor.yaml", "--ir")
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "graph xor(%x: [B, 2]) {\n"
        "  %dense: [B, 4] = dense(%x; bias=true, bias_init=none, init=lecun_normal, tie=none, "
        "units=4, weight_norm=false)"
        "  {weight: [4, 2] lecun_normal, bias: [4] zeros}\n"
        "  %sigmoid: [B, 4] = sigmoid(%dense)\n"
        "  %dense_1: [B, 1] = dense(%sigmoid; bias=true, bias_init=none, init=lecun_normal, "
        "tie=none, units=1, weight_norm=false)  {weight: [1, 4] lecun_normal, bias: [1] zeros}\n"
        "  return y=%dense_1\n"
        "}\n"
    )


def test_set_string_param_changes_the_init() -> None:
    result = run_dlc("check", "specs/xor.yaml", "--ir", "--set", "init=uniform(-10, 10)")
    assert result.returncode == 0, result.stderr
    assert "weight: [4, 2] uniform(a=-10.0, b=10.0)" in result.stdout


@pytest.mark.parametrize("command", [[], ["check"], ["summary"], ["schema"]])
def test_help(command: list[str]) -> None:
    result = run_dlc(*command, "--help")
    assert result.returncode == 0
    assert "usage: dlc" in result.stdout
    if command:
        assert result.stdout.count("\n") > 4


def test_no_command_prints_help_and_fails() -> None:
    result = run_dlc()
    assert result.returncode == 1
    assert "check" in result.stdout and "summary" in result.stdout


def test_schema_prints_the_json_schema() -> None:
    result = run_dlc("schema")
    assert result.returncode == 0
    assert json.loads(result.stdout) == load_schema()


def test_front_end_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from dlc.runtime.cli import main\n"
        "for cmd in ('check', 'summary'):\n"
        "    assert main([cmd, 'specs/resnet_mlp.yaml']) == 0\n"
        "heavy = sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    import subprocess

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_warnings_are_printed_but_do_not_fail(tmp_path) -> None:  # noqa: ANN001
    spec = tmp_path / "w.yaml"
    spec.write_text("dlc: 1\nname: w\ninputs: {x: [B, T, 3]}\nmodel:\n  - lstm(4, dropout=0.3)\n")
    result = run_dlc("check", str(spec))
    assert result.returncode == 0
    assert "w.yaml:5:5: warning: dropout=0.3 of a one-layer lstm does nothing" in result.stderr
