"""Tasks through the master's fleet service to real agent processes on the real broker."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from confluent_kafka import Producer

from fogverse.wire.nodes import decode_fleet, encode_fleet
from fogverse.wire.tasks import TaskAssignment, TaskResult, TaskStatus
from tests.kafka_io import read
from tests.master.fleet_helpers import running_fleet
from tests.polling import wait_until

pytestmark = pytest.mark.slow

# CPU_PERCENT pins the shared host's noisy load, so the scores follow the profiles.
PHONE_CHARGING = {"BATTERY": "80", "CHARGING": "true", "THERMAL": "normal", "CPU_PERCENT": "10"}
PHONE_LOW = {"BATTERY": "15", "CHARGING": "false", "THERMAL": "normal", "CPU_PERCENT": "10"}
DESKTOP = {"THERMAL": "normal", "CPU_PERCENT": "10"}  # this host has no battery: on mains


def completed_counts(bootstrap: str, topic: str, expected: int) -> Counter[str]:
    """How often each task was published completed (read from the status topic)."""
    counts: Counter[str] = Counter()
    for record in read(bootstrap, topic, expected, settle=2.0):
        body = decode_fleet(record.value).body
        if isinstance(body, TaskStatus) and body.state == "completed":
            counts[body.task_id] += 1
    return counts


async def test_tasks_go_where_the_policies_say(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        fleet.start_agent("phone-charging", PHONE_CHARGING)
        fleet.start_agent("phone-low", PHONE_LOW)
        fleet.start_agent("desktop", DESKTOP)
        await fleet.wait_nodes("phone-charging", "phone-low", "desktop")
        ids = [fleet.client.submit_task("echo", n, cpu=0.0, memory_mb=0) for n in range(12)]
        done = await asyncio.gather(*(fleet.client.result(i, timeout=90) for i in ids))
        assert [s.state for s in done] == ["completed"] * 12
        nodes = Counter(s.node_id for s in done)
        assert nodes["phone-low"] == 0, nodes  # 15 %, not charging: under the minimum
        assert set(nodes) <= {"phone-charging", "desktop"}
        assert [s.result["echo"] for s in done] == list(range(12))
        assert all(s.result["node"] == s.node_id for s in done)  # it ran where it says
        status = fleet.service.status()
        low = next(n for n in status["nodes"] if n["node_id"] == "phone-low")
        assert low["blocker"] == "battery_below_minimum"


async def test_a_killed_agents_tasks_finish_elsewhere_once(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        fleet.start_agent("node-a", PHONE_CHARGING)  # the better node: it gets the tasks
        fleet.start_agent("node-b", DESKTOP)
        await fleet.wait_nodes("node-a", "node-b")
        ids = [fleet.client.submit_task("slow", 3.0, cpu=0.0, estimated_duration_s=30)
               for _ in range(2)]
        await wait_until(lambda: all(
            (s := fleet.client.get_task_status(i)) is not None and s.state == "running"
            and s.node_id == "node-a" for i in ids), timeout=60,
            what="both tasks running on node-a")
        fleet.kill("node-a")
        done = await asyncio.gather(*(fleet.client.result(i, timeout=120) for i in ids))
        assert [(s.state, s.node_id, s.attempts) for s in done] == [
            ("completed", "node-b", 2)] * 2
        assert fleet.service.nodes.lost_total == 1
    counts = completed_counts(kafka_bootstrap, fleet.settings.status_topic, 1)
    assert counts == {ids[0]: 1, ids[1]: 1}


async def test_clear_outcomes_for_what_cannot_run(
    kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    async with running_fleet(kafka_bootstrap, unique, tmp_path) as fleet:
        fleet.start_agent("node-a", DESKTOP)
        await fleet.wait_nodes("node-a")
        unknown = fleet.client.submit_task("transcode", cpu=0.0)
        huge = fleet.client.submit_task("echo", cpu=0.0, memory_mb=10**9)
        status = await fleet.client.result(unknown, timeout=60)
        assert (status.state, status.error) == (
            "failed", "no node has a handler for task type 'transcode'")
        status = await fleet.client.result(huge, timeout=60)
        assert status.state == "failed"
        assert status.error == "no registered node could ever satisfy it"

        # Forgeries: an assignment for a node nobody runs, in the master's own name,
        # and a result from a node the task was never given to.
        forger = Producer({"bootstrap.servers": kafka_bootstrap})
        forger.produce(fleet.settings.orders_topic, encode_fleet(
            TaskAssignment("node-ghost", "t-ghost", "echo"), fleet.settings.master_id))
        real = fleet.client.submit_task("slow", 1.0, cpu=0.0)
        await wait_until(lambda: (s := fleet.client.get_task_status(real)) is not None
                         and s.state in ("assigned", "running"), timeout=60)
        forger.produce(fleet.settings.nodes_topic, encode_fleet(
            TaskResult("node-b", real, 1, "forged"), "node-b"))
        forger.produce(fleet.settings.nodes_topic, encode_fleet(
            TaskResult("node-a", real, 1, "forged"), "mallory"))
        assert forger.flush(30) == 0
        status = await fleet.client.result(real, timeout=60)
        assert (status.state, status.node_id) == ("completed", "node-a")
        assert status.result["node"] == "node-a"  # the real agent's, not the forgeries'
        await wait_until(lambda: fleet.service.desk.ignored["not_assigned_to_sender"] == 1
                         and fleet.service.malformed["sender_mismatch"] == 1, timeout=30)
        assert fleet.client.get_task_status("t-ghost") is None

        # A forged assignment for a real node: it may start, but the master sees it
        # in the node's report and revokes it; it never gets a status.
        forger.produce(fleet.settings.orders_topic, encode_fleet(
            TaskAssignment("node-a", "t-forged", "slow", payload=5.0),
            fleet.settings.master_id))
        assert forger.flush(30) == 0
        await wait_until(lambda: fleet.service.desk.recovery.revoked["unknown_task"] == 1,
                         timeout=60, what="the forged task revoked")
        await wait_until(lambda: "t-forged" not in fleet.service.nodes.entries[
            "node-a"].report.running_tasks, timeout=30, what="node-a to drop the forged task")
        # (read off the loop: the master shares it, and catching up may wait)
        assert await asyncio.to_thread(fleet.client.get_task_status, "t-forged") is None
