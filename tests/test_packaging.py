"""Every package folder is in pyproject's package list, so `pip install .` (not only the
editable install) ships it."""

from __future__ import annotations

import tomllib

from helpers import ROOT


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    dirs = config["package-dir"]
    assert listed == set(dirs)
    for top in ("schema", "compiler", "runtime"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT).as_posix()
            name = "dlc." + rel.replace("/", ".")
            assert name in listed, f"{rel} is missing from pyproject's packages"
            assert dirs[name] == rel
