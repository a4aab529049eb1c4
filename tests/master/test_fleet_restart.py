"""A master SIGKILLed while tasks wait and run; the next one carries on from Kafka.

Nothing is run again that was running, nothing is reported completed twice, and a
task submitted while no master ran is picked up when one starts.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from fogverse.tasks.client import TaskClient
from tests.agent.agent_procs import start_agent, stop_agent
from tests.master.fleet_proc import start_fleet
from tests.master.test_fleet_tasks import DESKTOP, completed_counts
from tests.polling import wait_until

pytestmark = pytest.mark.slow


async def test_tasks_survive_a_killed_master(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = {"bootstrap": kafka_bootstrap, "master_id": unique("master"),
                "nodes_topic": unique("nodes"), "orders_topic": unique("orders"),
                "tasks_topic": unique("tasks"), "status_topic": unique("status"),
                "tick_s": 0.05, "settle_s": 1.0}
    client = TaskClient(kafka_bootstrap, tasks_topic=settings["tasks_topic"],
                        status_topic=settings["status_topic"])
    await asyncio.to_thread(client.start)
    procs = []
    try:
        early = client.submit_task("echo", "early", cpu=0.0)  # no master runs yet
        procs.append(start_agent(kafka_bootstrap, "node-a", settings["nodes_topic"],
                                 settings["orders_topic"], tmp_path, profile=DESKTOP,
                                 master=settings["master_id"], max_tasks=2))
        first = start_fleet(settings, tmp_path, "master-1")
        procs.append(first)
        status = await client.result(early, timeout=90)
        assert (status.state, status.node_id, status.result["echo"]) == (
            "completed", "node-a", "early")

        running = [client.submit_task("slow", 3.0, cpu=0.0, estimated_duration_s=30)
                   for _ in range(2)]
        await wait_until(lambda: all(
            (s := client.get_task_status(i)) is not None and s.state == "running"
            for i in running), timeout=60, what="two tasks running on node-a")
        queued = client.submit_task("echo", "queued", cpu=0.0)  # node-a is full: it waits
        await wait_until(lambda: (s := client.get_task_status(queued)) is not None
                         and s.state == "queued", timeout=30, what="the third task queued")
        first.send_signal(signal.SIGKILL)
        first.wait(30)

        procs.append(start_fleet(settings, tmp_path, "master-2"))
        done = await asyncio.gather(*(client.result(i, timeout=90) for i in running))
        # Adopted where they ran, or their results applied: not run a second time.
        assert [(s.state, s.node_id, s.attempts) for s in done] == [
            ("completed", "node-a", 1)] * 2
        status = await client.result(queued, timeout=60)
        assert (status.state, status.result["echo"]) == ("completed", "queued")
    finally:
        for proc in reversed(procs):
            stop_agent(proc)
        await asyncio.to_thread(client.close)
    counts = completed_counts(kafka_bootstrap, settings["status_topic"], 4)
    assert counts == {early: 1, running[0]: 1, running[1]: 1, queued: 1}
