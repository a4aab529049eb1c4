"""LOCAL instances outlive their Master, and a new Master takes them back by their record.

The record is ``DeployResult.info`` (pid, process group, start time); a pid that
now names another process, or a process that has gone, is never taken for the
instance.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
import pytest_asyncio
from deploy_helpers import HERE, child_spec, process_gone, read_report

from deploy_scripts import DeployError, DeployResult, DeployScripts, LocalProvider
from fogverse.processes import ProcessIdentity
from tests.polling import wait_until

MakeProvider = Callable[..., LocalProvider]


@pytest_asyncio.fixture(loop_scope="function")
async def orphan(report_dir: Path) -> AsyncIterator[dict[str, Any]]:
    """A LOCAL instance whose Master was SIGKILLed: its instance id and its record."""
    master = subprocess.Popen(
        [sys.executable, str(HERE / "fake_master.py"), str(report_dir)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert master.stdout is not None
    report: dict[str, Any] = json.loads(await asyncio.to_thread(master.stdout.readline))
    master.send_signal(signal.SIGKILL)
    master.wait()
    master.stdout.close()
    report["master_pid"] = master.pid
    yield report
    # Whatever a test left running is stopped, by its group, only if it is still ours.
    ProcessIdentity.from_info(report["info"]).stop(grace=0)


def _registry(provider: LocalProvider) -> DeployScripts:
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", provider)
    return scripts


async def test_a_child_outlives_its_sigkilled_master(orphan: dict[str, Any]) -> None:
    pid = orphan["info"]["pid"]
    # The pool thread that started it had exited before the kill; neither ended it.
    assert orphan["alive"]
    assert not process_gone(pid)
    assert psutil.Process(pid).ppid() != orphan["master_pid"]
    assert os.getpgid(pid) == orphan["info"]["pgid"] == pid


async def test_adopt_takes_back_a_living_child_and_stops_it(
    orphan: dict[str, Any], make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir)})
    scripts = _registry(provider)

    adopted = await scripts.adopt("LOCAL", orphan["instance_id"], orphan["info"])

    assert isinstance(adopted, DeployResult)
    assert adopted.instance_id == orphan["instance_id"]
    assert adopted.info["pid"] == orphan["info"]["pid"]
    assert provider.running() == [orphan["instance_id"]]
    await scripts.stop(adopted)
    await wait_until(lambda: process_gone(orphan["info"]["pid"]), what="the adopted child to stop")
    assert provider.running() == []


async def test_close_stops_adopted_instances_too(
    orphan: dict[str, Any], make_provider: MakeProvider, report_dir: Path
) -> None:
    scripts = _registry(make_provider({"child": child_spec(report_dir)}))
    assert await scripts.adopt("LOCAL", orphan["instance_id"], orphan["info"]) is not None

    await scripts.close()

    await wait_until(lambda: process_gone(orphan["info"]["pid"]), what="close to stop it")


async def test_adopt_refuses_a_record_whose_pid_now_names_another_process(
    orphan: dict[str, Any], make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir)})
    reused = {**orphan["info"], "create_time": orphan["info"]["create_time"] - 3600}

    assert await _registry(provider).adopt("LOCAL", orphan["instance_id"], reused) is None

    assert provider.running() == []
    assert not process_gone(orphan["info"]["pid"]), "a mistaken record must never be signalled"


async def test_adopt_refuses_a_record_whose_process_is_gone(
    orphan: dict[str, Any], make_provider: MakeProvider, report_dir: Path
) -> None:
    os.killpg(orphan["info"]["pgid"], signal.SIGKILL)
    await wait_until(lambda: process_gone(orphan["info"]["pid"]), what="the kill")
    provider = make_provider({"child": child_spec(report_dir)})

    assert await _registry(provider).adopt("LOCAL", orphan["instance_id"], orphan["info"]) is None
    assert provider.running() == []


async def test_an_instance_started_here_carries_the_record_that_finds_it(
    make_provider: MakeProvider, report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir)})
    result = await _registry(provider).deploy({"service_name": "child"})
    assert result is not None
    pid = (await read_report(report_dir, result.instance_id))["pid"]
    process = psutil.Process(pid)
    assert result.info["pid"] == pid
    assert result.info["pgid"] == os.getpgid(pid)
    assert result.info["create_time"] == pytest.approx(process.create_time(), abs=1.0)
    assert result.info["service"] == "child"

    # Adopting what already runs here hands back the same instance, not a second one.
    again = await _registry(provider).adopt("LOCAL", result.instance_id, result.info)
    assert again is not None and again.info["pid"] == pid
    assert provider.running() == [result.instance_id]


@pytest.mark.parametrize(
    ("info", "complaint"),
    [
        ({}, "'pid'"),
        ({"pid": 5, "pgid": 5, "create_time": "yesterday"}, "'create_time'"),
        ({"pid": 5, "pgid": 5, "create_time": 1.0, "service": 3}, "'service'"),
    ],
)
async def test_adopt_says_what_is_wrong_with_a_bad_record(
    make_provider: MakeProvider, report_dir: Path, info: dict[str, Any], complaint: str
) -> None:
    provider = make_provider({"child": child_spec(report_dir)})
    with pytest.raises(DeployError, match=f"cannot adopt child-1: .*{complaint}"):
        await _registry(provider).adopt("LOCAL", "child-1", info)


async def test_a_provider_without_an_adopt_function_adopts_nothing() -> None:
    scripts = DeployScripts()
    scripts.set_deploy_functions("EDGE", lambda logger, config: None)
    assert await scripts.adopt("EDGE", "edge-1", {"pid": 1}) is None
    assert await scripts.adopt("NOWHERE", "x-1", {}) is None


async def test_set_adopt_function_is_used_and_its_result_is_stopped_by_close() -> None:
    stopped: list[str] = []

    async def adopt(instance_id: str, info: Any) -> DeployResult:
        return DeployResult(instance_id, stop=lambda: stopped.append(instance_id), info=dict(info))

    scripts = DeployScripts()
    scripts.set_adopt_function("EDGE", adopt)
    result = await scripts.adopt("EDGE", "edge-7", {"where": "pi-3"})
    assert result is not None and result.info == {"where": "pi-3"}
    await scripts.close()
    assert stopped == ["edge-7"]
