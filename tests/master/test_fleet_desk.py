"""The master's node book and task desk over the real scheduler, without a broker."""

from __future__ import annotations

from typing import Any

from fogverse.wire.nodes import NodeCapacity
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskFailure,
    TaskRefusal,
    TaskResult,
    TaskRevoke,
    TaskStatus,
    TaskSubmit,
)
from master.nodes import NodeBook, capacity_of
from master.scheduling import Scheduler, ThermalState
from master.tasks import TaskDesk
from tests.metric_names import check_metric_names


def report(node_id: str, incarnation: str = "one", **fields: Any) -> NodeCapacity:
    base: dict[str, Any] = dict(cpu_cores=4, cpu_percent=10.0, memory_total_mb=8192.0,
                                memory_used_mb=1024.0, thermal_state="normal",
                                battery_powered=False, task_types=("echo",), interval=1.0)
    base.update(fields)
    return NodeCapacity(node_id=node_id, incarnation=incarnation, **base)


class Desk:
    def __init__(self) -> None:
        self.scheduler = Scheduler()
        self.book = NodeBook(self.scheduler)
        self.orders: list[TaskAssignment | TaskRevoke] = []
        self.statuses: list[TaskStatus] = []
        self.desk = TaskDesk(self.scheduler, self.book, self.orders.append,
                             self.statuses.append)

    def states(self, task_id: str) -> list[str]:
        return [s.state for s in self.statuses if s.task_id == task_id]


def test_unknown_sensors_become_the_stated_defaults() -> None:
    cap = capacity_of(NodeCapacity(node_id="n", incarnation="x"))
    assert (cap.cpu_cores, cap.cpu_utilization, cap.memory_mb) == (1, 0.0, 0)
    assert (cap.battery_powered, cap.is_charging) == (False, False)
    assert cap.thermal_state is ThermalState.UNKNOWN
    phone = capacity_of(report("p", battery_powered=True, battery_percent=15.0, charging=False,
                               network_type="cellular", thermal_state="hot"))
    assert (phone.battery_percent, phone.network_metered) == (15.0, True)
    assert phone.thermal_state is ThermalState.HOT


def test_a_task_runs_once_and_only_the_assigned_node_can_finish_it() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0)
    d.desk.on_submit(TaskSubmit("t1", "echo", payload=1, cpu=0.5), 0.0, 100.0)
    d.desk.tick(0.1, 100.1)
    [order] = d.orders
    assert (order.node_id, order.task_id, order.attempt, order.payload) == ("a", "t1", 1, 1)
    d.desk.on_report(TaskResult("b", "t1", 1, "forged"), 0.2, 100.2)
    d.desk.on_report(TaskResult("a", "t1", 2, "wrong attempt"), 0.2, 100.2)
    d.desk.on_report(TaskResult("a", "t1", 1, "real"), 0.3, 100.3)
    d.desk.on_report(TaskResult("a", "t1", 1, "again"), 0.4, 100.4)
    assert d.states("t1") == ["queued", "assigned", "completed"]
    assert d.statuses[-1].result == "real"
    assert d.desk.ignored == {"not_assigned_to_sender": 1, "stale_attempt": 1,
                              "not_running": 1}


def test_a_refusal_places_the_task_on_another_node() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0)
    d.book.on_report(report("b", cpu_percent=90.0), 0.0)  # the worse node
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 0.0, 100.0)
    d.desk.tick(0.1, 100.1)
    assert d.orders[-1].node_id == "a"
    d.desk.on_report(TaskRefusal("a", "t1", 1, "busy"), 0.2, 100.2)
    d.desk.tick(0.3, 100.3)
    assert (d.orders[-1].node_id, d.orders[-1].attempt) == ("b", 2)
    assert d.desk.refused == {"busy": 1}


def test_failures_retry_within_the_limit_then_fail_with_the_error() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0)
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1, retry_limit=1), 0.0, 100.0)
    for attempt in (1, 2):
        d.desk.tick(attempt, 100.0 + attempt)
        d.desk.on_report(TaskFailure("a", "t1", attempt, "boom", "RuntimeError"), attempt,
                         100.0 + attempt)
    assert d.states("t1")[-1] == "failed"
    assert d.statuses[-1].error == "RuntimeError: boom"
    assert len(d.orders) == 2


def test_what_cannot_run_fails_at_once_with_its_reason() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0)
    d.desk.on_submit(TaskSubmit("t1", "transcode"), 0.0, 100.0)
    d.desk.on_submit(TaskSubmit("t2", "echo", memory_mb=10**7), 0.0, 100.0)
    d.desk.on_submit(TaskSubmit("t3", "echo", strategy="telepathy"), 0.0, 100.0)
    failed = {s.task_id: s.error for s in d.statuses if s.state == "failed"}
    assert failed["t1"] == "no node has a handler for task type 'transcode'"
    assert failed["t2"] == "no registered node could ever satisfy it"
    assert "telepathy" in (failed["t3"] or "")


def test_a_silent_node_is_lost_and_its_tasks_queue_again() -> None:
    d = Desk()
    d.book.on_report(report("a"), 0.0)
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 0.0, 100.0)
    d.desk.tick(0.1, 100.1)
    assert d.book.expire(3.0) == []  # within 3 intervals + grace
    [(node, moved)] = d.book.expire(4.5)
    assert (node, moved) == ("a", ["t1"])
    d.desk.on_nodes_lost(moved, 104.5)
    assert d.states("t1")[-1] == "queued" and "a" not in d.scheduler.nodes


def test_a_restarted_agent_is_registered_again_and_its_tasks_requeued() -> None:
    d = Desk()
    assert d.book.on_report(report("a", "one"), 0.0)[0] == "new"
    assert d.book.on_report(report("a", "one"), 1.0)[0] == "updated"
    d.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 1.0, 101.0)
    d.desk.tick(1.1, 101.1)
    outcome, moved = d.book.on_report(report("a", "two"), 2.0)
    assert (outcome, moved) == ("restarted", ["t1"])
    assert d.book.restarts == 1 and "a" in d.scheduler.nodes


def test_fleet_metrics_show_nodes_and_the_queue() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from master.fleet import FleetService, FleetSettings
    from master.fleet_metrics import FleetCollector

    fleet = FleetService(FleetSettings("unused:9092"))
    fleet.desk.publish = [].append  # not running: keep the statuses here
    fleet.nodes.on_report(report("phone", battery_powered=True, battery_percent=15.0,
                                 charging=False, running_instances=("i-1",)), 0.0)
    fleet.nodes.on_report(report("desktop"), 0.0)
    fleet.desk.on_submit(TaskSubmit("t1", "echo", cpu=0.1), 0.0, 100.0)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet))
    text = generate_latest(registry).decode()
    assert 'fogverse_node_battery_ratio{node="phone"} 0.15' in text
    assert 'fogverse_node_charging{node="phone"} 0.0' in text
    assert 'fogverse_node_running_instances{node="phone"} 1.0' in text
    assert 'fogverse_node_thermal_state{node="desktop",state="normal"} 1.0' in text
    assert 'fogverse_tasks{state="queued"} 1.0' in text
    assert 'fogverse_node_score{node="desktop"}' in text
    assert check_metric_names(text) == []
    status = fleet.status()
    phone = next(n for n in status["nodes"] if n["node_id"] == "phone")
    assert phone["blocker"] == "battery_below_minimum" and phone["charging"] is False
