"""Every installed package says it is typed, so users' type checkers read our hints
(``DeployScripts.set_deploy_functions`` included)."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest

PACKAGES = ("fogverse", "master", "workers", "deploy_scripts")
PYPROJECT = Path(__file__).parents[1] / "pyproject.toml"


@pytest.mark.parametrize("package", PACKAGES)
def test_package_ships_py_typed(package: str) -> None:
    assert resources.files(package).joinpath("py.typed").is_file()
    package_data = tomllib.loads(PYPROJECT.read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in package_data.get(package, [])
