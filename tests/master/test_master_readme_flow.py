"""FogVerse's README Master flow, as a FogVerse user runs it on a real broker.

Its config dict, a deploy function registered under ``LOCAL`` that logs the
request's ``extra_configs`` and returns None, and a node asking for auto-scaling
through FogVerse's observer. The first master refuses (the service is not
declared) and says which lines to add; pasted into the dict, they make the next
master call the user's function.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from deploy_scripts import DeployConfig, DeployScripts
from master import AutoScaleComponent, Master, Worker
from tests.polling import wait_until

README_CONF = """{
    'consumer_topic' : CONTROL,
    'consumer_server' : SERVERS,
    'consumer_group_id' : GROUP,
    'auto_deployer_config' : {
        'deploy_delay' : 30,
        'after_heartbeat_delay' : 30
    },
    'statistic_worker_config': {
        'z_value' : 1.5,
        'refresh_rate' : 1,
        'maximum_seconds' : 600
    },
    'included_worker' : [Worker.AUTO_DEPLOYER, Worker.DISTRIBUTED_LOCK_WORKER,
                         Worker.STATISTIC_WORKER, Worker.INPUT_OUTPUT_WORKER],
    'distributed_worker_config' : {
        'master_host' : 'localhost',
        'master_port' : 0
    },
    'input_output_worker_config' : {
        'refresh_rate_second': 60,
        'input_output_ratio_threshold': 0.7
    },
    'http_port': 0,
    'state_topic': STATE,
    EXTRA
}"""
"""The README's dict; the lock and status ports are 0 so parallel tests never collide."""


def conf_from(text: str, names: dict[str, str], extra: str = "") -> dict[str, Any]:
    for name, value in names.items():
        text = text.replace(name, repr(value))
    # The README dict names Worker members, which literal_eval cannot read; the text
    # is this test's own plus the lines the master suggested.
    result: dict[str, Any] = eval(text.replace("EXTRA", extra), {"Worker": Worker})
    return result


async def send_request_until(master: Master, servers: str, control: str,
                             done: Callable[[], bool]) -> None:
    """The node part of the README: ask for auto-scaling, as a stage does on start."""
    observer = AutoScaleComponent().observer({"kafka_server": servers, "producer_topic": control})
    try:
        await asyncio.wait_for(master.ready.wait(), 60)
        observer.send_auto_scale_request(
            source_topic="test-in", target_topic="test-out",
            topic_configs={"provider": "LOCAL", "service_name": "test", "max_instance": 3,
                           "extra_configs": {"test": "halo"}},
        )
        await asyncio.to_thread(observer.flush, 10)
        await wait_until(done, timeout=60, what="the master to act on the request")
    finally:
        await asyncio.to_thread(observer.close)


async def test_readme_master_flow_with_a_user_deploy_function_under_local(
    kafka_bootstrap: str, unique: Callable[[str], str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    calls: list[DeployConfig] = []

    def _local_deployment(logger: logging.Logger, configs: DeployConfig) -> None:
        logger.info(configs["extra_configs"]["test"])
        logger.info("No implementation were made")
        calls.append(configs)
        return None

    deploy_scripts = DeployScripts()
    deploy_scripts.set_deploy_functions("LOCAL", _local_deployment)
    names = {"CONTROL": unique("test"), "SERVERS": kafka_bootstrap, "GROUP": unique("test"),
             "STATE": unique("state")}

    # As the README has it: no services, so the request is refused, with the fix.
    first = AutoScaleComponent().master_auto_scaler(conf_from(README_CONF, names),
                                                    deploy_scripts)
    running = asyncio.create_task(first.run())
    await send_request_until(first, kafka_bootstrap, names["CONTROL"],
                             lambda: first.status().master.refused == {"undeclared_service": 1})
    first.stop()
    await running
    refusal = next(r.getMessage() for r in caplog.records if "not declared" in r.getMessage())
    lines = refusal[refusal.index("'services': {"):]
    assert lines == ("'services': {\n    'test': {'provider': 'LOCAL', 'min_instance': 1, "
                     "'max_instance': 3, 'source_topic': 'test-in', 'target_topic': 'test-out', "
                     "'extra_configs': {'test': 'halo'}},"
                     "\n},")
    assert calls == []

    # The user pastes those lines into the dict: no module, no command needed.
    master = AutoScaleComponent().master_auto_scaler(conf_from(README_CONF, names, lines),
                                                     deploy_scripts)
    running = asyncio.create_task(master.run())
    try:
        await send_request_until(master, kafka_bootstrap, names["CONTROL"], lambda: bool(calls))
    finally:
        master.stop()
        await running
    assert calls[0]["service_name"] == "test" and calls[0]["provider"] == "LOCAL"
    assert calls[0]["extra_configs"] == {"test": "halo"}
    assert calls[0]["max_instance"] == 3
    assert master.status().master.refused == {}
    assert any(r.getMessage() == "halo" for r in caplog.records)
    assert not [r for r in caplog.records if re.search("module|command", r.getMessage())]
