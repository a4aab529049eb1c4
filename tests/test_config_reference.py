"""docs/configuration.md is generated from the code; it must match what the code says now."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_reference",
                                                  ROOT / "scripts" / "config_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["config_reference"] = module
    spec.loader.exec_module(module)
    return module


def test_checked_in_reference_is_up_to_date() -> None:
    generator = load_generator()
    text = generator.render()
    assert (ROOT / "docs" / "configuration.md").read_text() == text, (
        "docs/configuration.md is out of date: run python scripts/config_reference.py")


def test_reference_names_every_setting_the_code_validates() -> None:
    from deploy_scripts import ServiceSpec
    from fogverse.config import SETTING_NAMES
    from master.config import MasterAutoScalerConfig

    text = load_generator().render()
    names = [*SETTING_NAMES, *MasterAutoScalerConfig.__annotations__,
             *(f for f in ServiceSpec.__dataclass_fields__ if f != "name"),
             "--profile-file", "--master", "battery_minimum_percent", "battery_save"]
    assert [n for n in names if f"`{n}`" not in text] == []
