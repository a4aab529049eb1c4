"""The LOCAL provider starts real child processes and stops them for real."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from deploy_helpers import HERE, child_spec, process_gone, read_report

from deploy_scripts import (
    DeployError,
    DeployScripts,
    LocalProvider,
    ServiceSpec,
    UnknownServiceError,
)
from fogverse.errors import ConfigError
from tests.polling import wait_until

MakeProvider = Callable[..., LocalProvider]


def _registry(provider: LocalProvider) -> DeployScripts:
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", provider)
    return scripts


async def test_deploy_starts_a_child_with_the_layered_environment(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider(
        {"child": child_spec(report_dir)}, base_env={"FV_BASE": "base", "FV_SPEC": "base"}
    )
    scripts = _registry(provider)
    result = await scripts.deploy(
        {"provider": "LOCAL", "service_name": "child", "extra_configs": {"env": {"FV_EXTRA": 7}}}
    )
    assert result is not None
    report = await read_report(report_dir, result.instance_id)

    assert report["pid"] == result.info["pid"]
    assert psutil.Process(report["pid"]).is_running()
    assert report["env"] == {
        "FOGVERSE_INSTANCE_ID": result.instance_id,
        "FOGVERSE_SERVICE_NAME": "child",
        "FV_BASE": "base",
        "FV_SPEC": "from-spec",  # the spec's env wins over the provider's base env
        "FV_EXTRA": "7",
    }
    assert provider.running() == [result.instance_id]
    await wait_until(lambda: "child ready" in Path(result.info["log"]).read_text())

    await scripts.stop(result)
    assert process_gone(report["pid"])
    assert provider.running() == []


async def test_command_service_gets_extra_args(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    spec = child_spec(report_dir, module=None, command=(sys.executable, str(HERE / "child_app.py")))
    provider = make_provider({"child": spec})
    result = await _registry(provider).deploy(
        {"service_name": "child", "extra_configs": {"args": ["alpha", "beta"]}}
    )
    assert result is not None
    report = await read_report(report_dir, result.instance_id)
    assert report["args"] == ["alpha", "beta"]


async def test_a_child_that_ignores_sigterm_is_killed(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider(
        {"child": child_spec(report_dir, command=None, module="child_app")}, stop_timeout=0.5
    )
    result = await _registry(provider).deploy(
        {"service_name": "child", "extra_configs": {"args": ["--ignore-term"]}}
    )
    assert result is not None
    pid = (await read_report(report_dir, result.instance_id))["pid"]
    await _registry(provider).stop(result)
    assert process_gone(pid)


async def test_stop_all_leaves_no_orphans(make_provider: MakeProvider, report_dir: Path) -> None:
    provider = make_provider({"child": child_spec(report_dir)})
    scripts = _registry(provider)
    pids: list[int] = []
    for _ in range(2):
        result = await scripts.deploy(
            {"service_name": "child", "extra_configs": {"args": ["--grandchild"]}}
        )
        assert result is not None
        report = await read_report(report_dir, result.instance_id)
        pids += [report["pid"], report["grandchild"]]
    assert len(provider.running()) == 2
    assert not any(process_gone(pid) for pid in pids)

    await provider.stop_all()
    assert provider.running() == []
    # Grandchildren are reparented when their parent dies; they must die too.
    await wait_until(lambda: all(process_gone(pid) for pid in pids))


async def test_an_instance_killed_from_outside_drops_out_of_running(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir, max_instance=1)})
    scripts = _registry(provider)
    first = await scripts.deploy({"service_name": "child"})
    assert first is not None
    pid = (await read_report(report_dir, first.instance_id))["pid"]
    os.kill(pid, signal.SIGKILL)
    await wait_until(lambda: provider.running() == [])
    # Its slot is free again, and stopping the dead instance is harmless.
    second = await scripts.deploy({"service_name": "child"})
    assert second is not None
    assert provider.running() == [second.instance_id]
    await scripts.stop(first)
    assert provider.running() == [second.instance_id]


async def test_max_instance_is_a_hard_cap(make_provider: MakeProvider, report_dir: Path) -> None:
    provider = make_provider({"child": child_spec(report_dir, max_instance=1)})
    scripts = _registry(provider)
    assert await scripts.deploy({"service_name": "child"}) is not None
    with pytest.raises(DeployError, match=r"'child' already runs 1 instance\(s\)"):
        await scripts.deploy({"service_name": "child"})
    assert len(provider.running()) == 1


async def test_undeclared_service_error_names_it_and_the_declared_ones(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir), "yolo": child_spec(report_dir)})
    with pytest.raises(UnknownServiceError) as caught:
        await _registry(provider).deploy({"service_name": "detector"})
    text = str(caught.value)
    assert "'detector'" in text
    assert "child, yolo" in text
    assert isinstance(caught.value, KeyError)


async def test_missing_program_is_reported_before_anything_starts(
    make_provider: MakeProvider,
) -> None:
    spec = ServiceSpec("ghost", command=("fogverse-no-such-program", "--run"))
    provider = make_provider({"ghost": spec})
    with pytest.raises(DeployError, match="'fogverse-no-such-program'"):
        await _registry(provider).deploy({"service_name": "ghost"})
    assert provider.running() == []


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"module": "a", "command": ("b",)}, "exactly one of module or command"),
        ({"command": ()}, "empty argv"),
        ({"module": "a", "min_instance": 3, "max_instance": 2}, "min_instance <= max_instance"),
    ],
)
def test_service_spec_rejects_bad_shapes(fields: dict[str, object], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ServiceSpec("svc", **fields)  # type: ignore[arg-type]


def test_a_spec_without_module_or_command_serves_only_user_deploy_functions() -> None:
    spec = ServiceSpec("svc", provider="MINE", max_instance=3)
    assert not spec.launchable
    with pytest.raises(ConfigError, match="exactly one of module or command"):
        spec.argv("py")


def test_service_spec_is_frozen_and_copies_its_inputs() -> None:
    env = {"A": "1"}
    spec = ServiceSpec("svc", command=["run", "it"], env=env)  # type: ignore[arg-type]
    env["A"] = "2"
    assert spec.command == ("run", "it")
    assert spec.env["A"] == "1"
    assert spec.argv("/usr/bin/python3") == ["run", "it"]
    assert ServiceSpec("svc", module="pkg.main").argv("py") == ["py", "-m", "pkg.main"]
