"""Real agent processes on the real broker, with the test standing in for the master."""

from __future__ import annotations

import signal
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fogverse.wire.nodes import InstanceEvent, InstanceStart, InstanceStop, NodeCapacity
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
)
from tests.agent.agent_procs import NodeWatch, Orders, start_agent, stop_agent
from tests.polling import wait_until_sync

pytestmark = pytest.mark.slow


class Fleet:
    def __init__(self, bootstrap: str, make_topic: Callable[..., str], tmp_path: Path) -> None:
        self.bootstrap = bootstrap
        self.nodes_topic = make_topic("nodes")
        self.orders_topic = make_topic("orders")
        self.logs = tmp_path
        self.watch = NodeWatch(bootstrap, self.nodes_topic)
        self.orders = Orders(bootstrap, self.orders_topic)
        self.procs: list[Any] = []

    def start(self, node_id: str, **kwargs: Any) -> Any:
        proc = start_agent(self.bootstrap, node_id, self.nodes_topic, self.orders_topic,
                           self.logs, **kwargs)
        self.procs.append(proc)
        return proc

    def report(self, node_id: str, where: Callable[[NodeCapacity], bool] = lambda c: True
               ) -> NodeCapacity:
        return self.watch.wait_for(NodeCapacity, lambda c: c.node_id == node_id and where(c),
                                   what=f"a capacity report from {node_id}")

    def log(self, node_id: str) -> str:
        return (self.logs / f"{node_id}.agent.log").read_text(errors="replace")


@pytest.fixture
def fleet(kafka_bootstrap: str, make_topic: Callable[..., str], tmp_path: Path
          ) -> Iterator[Fleet]:
    fleet = Fleet(kafka_bootstrap, make_topic, tmp_path)
    yield fleet
    for proc in fleet.procs:
        stop_agent(proc)
    fleet.watch.close()


def test_three_agents_report_their_profiles(fleet: Fleet) -> None:
    fleet.start("phone-charging", profile={"BATTERY": "80", "CHARGING": "true"}, tags="phone")
    fleet.start("phone-low", profile={"AIV_MOBILE_PROFILE": "battery_save"}, tags="phone")
    fleet.start("desktop", profile={"THERMAL": "normal", "MEMORY_GB": "16"}, tags="desktop")
    charging = fleet.report("phone-charging")
    low = fleet.report("phone-low")
    desktop = fleet.report("desktop")
    assert (charging.battery_powered, charging.battery_percent, charging.charging) == (
        True, 80.0, True)
    assert (low.battery_percent, low.charging, low.profile) == (15.0, False, "battery_save")
    assert desktop.thermal_state == "normal" and desktop.memory_total_mb == 16 * 1024
    for report in (charging, low, desktop):
        assert report.task_types == ("add", "boom", "echo", "slow")
        assert report.cpu_cores is not None and report.max_concurrent_tasks == 2
    assert charging.tags == ("phone",) and desktop.tags == ("desktop",)


def test_tasks_run_only_on_the_node_they_were_assigned_to(fleet: Fleet, client: str) -> None:
    """The agents run on the client FOGVERSE_CLIENT names (their environment is ours)."""
    fleet.start("node-a")
    fleet.start("node-b")
    fleet.report("node-a")
    fleet.report("node-b")
    fleet.orders.send(TaskAssignment("node-b", "t-echo", "echo", payload={"n": 1}))
    fleet.orders.send(TaskAssignment("node-a", "t-slow", "slow", payload=0.2))
    fleet.orders.send(TaskAssignment("node-a", "t-boom", "boom", payload="x"))
    fleet.orders.send(TaskAssignment("node-a", "t-unknown", "transcode"))
    fleet.orders.send(TaskAssignment("node-z", "t-nobody", "echo"))  # no such node
    fleet.orders.send(TaskAssignment("node-a", "t-forged", "echo"), sender="mallory")

    echo = fleet.watch.wait_for(TaskResult, lambda r: r.task_id == "t-echo")
    assert echo.node_id == "node-b" and echo.result["echo"] == {"n": 1}
    slow = fleet.watch.wait_for(TaskResult, lambda r: r.task_id == "t-slow")
    assert slow.node_id == "node-a"
    progress = fleet.watch.bodies(TaskProgress, lambda p: p.task_id == "t-slow")
    assert [p.fraction for p in progress] == [0.0, 0.25, 0.5, 0.75]
    boom = fleet.watch.wait_for(TaskFailure, lambda r: r.task_id == "t-boom")
    assert boom.error == "boom: x"
    refusal = fleet.watch.wait_for(TaskRefusal, lambda r: r.task_id == "t-unknown")
    assert (refusal.node_id, refusal.reason) == ("node-a", "unknown_task_type")
    # Every later order was read by both agents: a report after them proves the
    # forged and the unaddressed orders had their chance and were not run.
    wait_until_sync(lambda: "dropped order #1 of this kind (not_from_master)"
                    in fleet.log("node-a"))
    for task in ("t-nobody", "t-forged"):
        assert fleet.watch.bodies(TaskResult, lambda r, t=task: r.task_id == t) == []
        assert fleet.watch.bodies(TaskRefusal, lambda r, t=task: r.task_id == t) == []


_INSTANCE = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    Path(sys.argv[1]).write_text(str(os.getpid()))
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_instances_start_stop_and_die_with_a_killed_agent(fleet: Fleet, tmp_path: Path) -> None:
    agent = fleet.start("node-a")
    incarnation = fleet.report("node-a").incarnation
    pid_files = [tmp_path / "i-1.pid", tmp_path / "i-2.pid"]
    for number, pid_file in enumerate(pid_files, 1):
        fleet.orders.send(InstanceStart("node-a", f"i-{number}", "detect",
                                        command=(sys.executable, "-c", _INSTANCE),
                                        args=(str(pid_file),)))
    fleet.watch.wait_for(InstanceEvent, lambda e: e.instance_id == "i-2" and
                         e.state == "started")
    wait_until_sync(lambda: all(p.exists() and p.read_text() for p in pid_files))
    first, second = (int(p.read_text()) for p in pid_files)
    fleet.report("node-a", lambda c: set(c.running_instances) == {"i-1", "i-2"})

    fleet.orders.send(InstanceStop("node-a", "i-1", grace_s=5))
    stopped = fleet.watch.wait_for(InstanceEvent, lambda e: e.state == "stopped")
    assert stopped.instance_id == "i-1"
    assert not _alive(first) and _alive(second)

    stop_agent(agent, signal.SIGKILL)
    wait_until_sync(lambda: not _alive(second), what="the instance to die with its agent")

    fleet.start("node-a")  # a restart is a new incarnation running nothing
    restarted = fleet.report("node-a", lambda c: c.incarnation != incarnation)
    assert restarted.running_instances == ()


def test_a_signed_fleet_ignores_unsigned_orders(fleet: Fleet) -> None:
    key = {"FOGVERSE_CONTROL_KEY": "s3cret"}
    fleet.watch.close()
    fleet.watch = NodeWatch(fleet.bootstrap, fleet.nodes_topic, key=b"s3cret")
    fleet.start("node-a", profile=key)
    fleet.report("node-a")
    fleet.orders.send(TaskAssignment("node-a", "t-unsigned", "echo"))
    Orders(fleet.bootstrap, fleet.orders_topic, key=b"s3cret").send(
        TaskAssignment("node-a", "t-signed", "echo"))
    fleet.watch.wait_for(TaskResult, lambda r: r.task_id == "t-signed")
    wait_until_sync(lambda: "(bad_hmac)" in fleet.log("node-a"))
    assert fleet.watch.bodies(TaskResult, lambda r: r.task_id == "t-unsigned") == []
