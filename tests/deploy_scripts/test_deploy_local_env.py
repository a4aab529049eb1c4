"""A LOCAL child inherits an allow-list of the Master's environment, not its secrets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from deploy_helpers import child_spec, read_report

from deploy_scripts import DeployScripts, LocalProvider
from deploy_scripts.local_env import INHERITED_ENV

MakeProvider = Callable[..., LocalProvider]


async def _env_of_a_child(provider: LocalProvider, report_dir: Path) -> dict[str, object]:
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", provider)
    result = await scripts.deploy(
        {"service_name": "child", "extra_configs": {"env": {"FV_EXTRA": "declared-extra"}}}
    )
    assert result is not None
    report = await read_report(report_dir, result.instance_id)
    await scripts.stop(result)
    return report


async def test_a_secret_of_the_master_does_not_reach_the_child_but_declared_values_do(
    make_provider: MakeProvider, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-leak")
    monkeypatch.setenv("FV_BASE", "from-the-masters-env")
    monkeypatch.setenv("LC_TIME", "C")
    monkeypatch.setenv("FOGVERSE_BOOTSTRAP", "kafka.example:9092")
    provider = make_provider(
        {"child": child_spec(report_dir)}, base_env={"FV_BASE": "passed-on-purpose"}
    )

    report = await _env_of_a_child(provider, report_dir)

    names = report["env_names"]
    assert isinstance(names, list)
    assert "AWS_SECRET_ACCESS_KEY" not in names
    assert {"PATH", "LC_TIME", "FOGVERSE_BOOTSTRAP"} <= set(names)
    assert report["env"] == {
        "FOGVERSE_INSTANCE_ID": report["env"]["FOGVERSE_INSTANCE_ID"],  # type: ignore[index]
        "FOGVERSE_SERVICE_NAME": "child",
        "FV_BASE": "passed-on-purpose",
        "FV_SPEC": "from-spec",
        "FV_EXTRA": "declared-extra",
    }


async def test_the_allow_list_can_be_widened_by_name(
    make_provider: MakeProvider, report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FV_BASE", "wanted-by-the-operator")
    provider = make_provider(
        {"child": child_spec(report_dir)}, inherit_env=INHERITED_ENV | {"FV_BASE"}
    )

    report = await _env_of_a_child(provider, report_dir)

    assert report["env"]["FV_BASE"] == "wanted-by-the-operator"  # type: ignore[index]
