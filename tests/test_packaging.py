"""Every package folder is in pyproject's package list, so `pip install .` (not only the
editable install) ships it."""

from __future__ import annotations

import tomllib

from conftest import ROOT


def test_every_package_is_listed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"dlc": "."}  # one mapping: dlc.a.b is the folder a/b
    folders = {
        "dlc." + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for top in ("schema", "compiler", "runtime")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert set(config["packages"]) == folders | {"dlc"}, "pyproject's packages != the folders"
