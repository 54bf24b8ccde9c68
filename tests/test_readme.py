"""The README's two quickstart commands exist, and CI runs the test command as written."""

from __future__ import annotations

import re

from conftest import ROOT


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    return [line for b in blocks for line in b.splitlines() if line and not line.startswith("#")]


def test_two_commands() -> None:
    commands = quickstart_commands()
    assert len(commands) == 2
    for c in commands:
        assert "pip install torch==2.13.0" in c  # the CPU build first, then the project


def test_ci_runs_the_readme_test_command() -> None:
    test_command = quickstart_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text()
    steps = test_command.split(" && ")[2:]  # after creating and activating the venv
    pip_steps = [s.replace("pip install ", "pip install -q ") for s in steps if "pip" in s]
    for step in pip_steps:
        assert step in ci, step
    assert "python -m pytest" in ci
