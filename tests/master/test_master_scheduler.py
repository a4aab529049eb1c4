"""The scheduler inside a running Master: placements, the in-process API, /status, /metrics."""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.request
from collections.abc import Callable

import pytest

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from fogverse.constants import EXTRA_NODE_ID
from master import AutoScaleComponent, Worker
from master.scheduling import Capacity, TaskPriority, TaskType
from tests.polling import wait_until

pytestmark = pytest.mark.kafka

# Charging and idle: 1.0 x 1.5, above any mains machine's best (1.2), so the
# master's own (real, variable) machine never wins against these two.
PHONE = Capacity(cpu_cores=8, memory_mb=8192, battery_powered=True, battery_percent=90.0,
                 is_charging=True)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


async def test_the_master_places_instances_and_tasks_with_its_scheduler(
    kafka_bootstrap: str, unique: Callable[[str], str]
) -> None:
    started: list[DeployConfig] = []

    def record(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        started.append(config)
        return DeployResult(f"rec-{len(started)}", lambda: None)

    scripts = DeployScripts()
    scripts.set_deploy_functions("FLEET", record)
    master = AutoScaleComponent().master_auto_scaler({
        "consumer_topic": unique("control"), "consumer_servers": kafka_bootstrap,
        "consumer_group_id": unique("master"), "http_port": 0,
        "included_worker": [Worker.AUTO_DEPLOYER],
        "auto_deployer_config": {"startup_grace": 0},
        "services": {"svc": {"provider": "FLEET", "max_instance": 2, "min_instance": 1,
                             "source_topic": unique("in"), "target_topic": unique("out")}},
    }, scripts)
    assert master.scheduler.local_node_id in master.scheduler.core.nodes
    assert master.scheduler.register_node("phone-a", PHONE)
    assert master.scheduler.register_node("phone-b", PHONE)
    await master.start()
    try:
        await wait_until(lambda: len(started) == 1, what="the first instance")
        assert started[0]["extra_configs"][EXTRA_NODE_ID] == "phone-a"  # first of the best

        task_id = master.scheduler.submit_task(TaskType.INFERENCE, TaskPriority.HIGH,
                                               cpu_cores=1.0, memory_mb=256)
        await wait_until(lambda: (master.scheduler.get_task_status(task_id) or {}).get(
            "status") == "assigned", what="the master's tick to place the task")
        assert master.scheduler.get_task_status(task_id)["assigned_node"] == "phone-a"  # type: ignore[index]

        assert master.http is not None
        base = f"http://127.0.0.1:{master.http.port}"
        status = json.loads(await asyncio.to_thread(fetch, base + "/status"))
        scheduler = status["scheduler"]
        assert scheduler["nodes"]["total"] == 3
        assert scheduler["tasks"]["active"] == 1
        assert scheduler["policies"]["battery_minimum_percent"] == 30.0
        assert scheduler["placements"][0]["node_id"] == "phone-a"
        assert scheduler["placement_reasons"] == {"scheduled": 1}
        metrics = (await asyncio.to_thread(fetch, base + "/metrics")).decode()
        assert 'fogverse_scheduler_node_score{node="phone-b"} 1.0' in metrics
        assert 'fogverse_scheduler_tasks{state="assigned",type="inference"} 1.0' in metrics
    finally:
        await master.close()
