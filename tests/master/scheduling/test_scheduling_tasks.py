"""The task lifecycle: queue order, deadlines, retries, timeouts, cancellation, the impossible."""

from __future__ import annotations

import pytest
from sched_helpers import desktop, phone, task

from master.scheduling import Scheduler, TaskPriority, TaskType


def one_slot() -> Scheduler:
    scheduler = Scheduler()
    scheduler.policies["max_concurrent_tasks_per_node"] = 1
    scheduler.register_node("a", desktop())
    return scheduler


def status(scheduler: Scheduler, task_id: str) -> str:
    got = scheduler.get_task_status(task_id)
    assert got is not None
    return str(got["status"])


def test_priority_then_submission_time() -> None:
    scheduler = Scheduler()
    scheduler.register_node("a", desktop(cpu_cores=64, memory_mb=65536))
    scheduler.policies["max_concurrent_tasks_per_node"] = 10
    order = [(TaskPriority.LOW, 0.0), (TaskPriority.NORMAL, 1.0), (TaskPriority.CRITICAL, 3.0),
             (TaskPriority.HIGH, 2.0), (TaskPriority.NORMAL, 0.5), (TaskPriority.CRITICAL, 2.5)]
    ids = [scheduler.submit(task(priority=p), at) for p, at in order]
    placed = [a.task_id for a in scheduler.schedule(4.0).assigned]
    assert placed == [ids[5], ids[2], ids[3], ids[4], ids[1], ids[0]]


def test_a_task_past_its_deadline_expires_and_is_reported() -> None:
    scheduler = one_slot()
    scheduler.submit(task(estimated_duration=1000.0), 0.0)
    late = scheduler.submit(task(deadline=50.0), 0.0)
    assert len(scheduler.schedule(0.0).assigned) == 1
    result = scheduler.schedule(51.0)
    assert result.expired == [late]
    assert status(scheduler, late) == "expired"
    assert scheduler.get_system_status()["tasks"]["expired"] == 1


def test_completion_releases_resources_exactly_once() -> None:
    scheduler = one_slot()
    first = scheduler.submit(task(), 0.0)
    second = scheduler.submit(task(), 0.0)
    scheduler.schedule(0.0)
    node = scheduler.nodes["a"]
    assert (node.reserved_mc, node.reserved_mem) == (1000, 512)
    assert scheduler.complete_task(first, 10.0)
    assert not scheduler.complete_task(first, 11.0)       # a repeat gives nothing back
    assert not scheduler.fail_task(first, 11.0)
    assert not scheduler.cancel_task(first, 11.0)
    assert (node.reserved_mc, node.reserved_mem) == (0, 0)
    assert [a.task_id for a in scheduler.schedule(12.0).assigned] == [second]
    assert (node.reserved_mc, node.reserved_mem) == (1000, 512)


def test_a_failed_task_is_retried_on_another_node_within_its_limit() -> None:
    scheduler = Scheduler()
    scheduler.register_node("a", desktop())
    scheduler.register_node("b", desktop(cpu_utilization=0.5))
    task_id = scheduler.submit(task(max_retries=1), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["a"]
    assert scheduler.fail_task(task_id, 5.0, "segfault")
    assert [(a.node_id, a.attempt) for a in scheduler.schedule(5.0).assigned] == [("b", 2)]
    assert scheduler.fail_task(task_id, 9.0, "segfault again")
    assert status(scheduler, task_id) == "failed"
    assert scheduler.get_task_status(task_id)["reason"] == "segfault again"  # type: ignore[index]


def test_retries_stay_on_the_only_node_that_can_run_them() -> None:
    scheduler = Scheduler()
    scheduler.register_node("only", desktop())
    task_id = scheduler.submit(task(max_retries=2), 0.0)
    scheduler.schedule(0.0)
    scheduler.fail_task(task_id, 1.0)
    assert [a.node_id for a in scheduler.schedule(1.0).assigned] == ["only"]


def test_a_task_running_past_estimate_times_multiplier_times_out_and_retries() -> None:
    scheduler = Scheduler()
    scheduler.register_node("a", desktop())
    scheduler.register_node("slow", phone(cpu_speed=0.5, battery_percent=90.0))
    task_id = scheduler.submit(task(estimated_duration=60.0, max_retries=1), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["a"]
    assert scheduler.schedule(119.0).timed_out == []        # 60 s x 2.0 not reached
    result = scheduler.schedule(120.0)
    assert result.timed_out == [task_id]
    assert [a.node_id for a in result.assigned] == ["slow"]
    assert scheduler.nodes["a"].reserved_mc == 0
    # On a half-speed node the limit is 60 / 0.5 x 2.0 = 240 s.
    assert scheduler.schedule(359.0).timed_out == []
    assert scheduler.schedule(360.0).timed_out == [task_id]
    assert status(scheduler, task_id) == "failed"
    assert scheduler.stats.tasks_timed_out == 2


def test_a_late_completion_after_a_timeout_is_ignored() -> None:
    scheduler = one_slot()
    task_id = scheduler.submit(task(estimated_duration=10.0, max_retries=0), 0.0)
    scheduler.schedule(0.0)
    scheduler.schedule(20.0)
    assert not scheduler.complete_task(task_id, 21.0)
    assert status(scheduler, task_id) == "failed"


@pytest.mark.parametrize(
    ("spec", "why"),
    [
        (task(cpu_millicores=9000), "more CPU than any node"),
        (task(memory_mb=20000), "more memory than any node"),
        (task(requires_gpu=True), "no GPU anywhere"),
    ],
)
def test_a_task_no_node_could_ever_run_fails_at_once(spec: object, why: str) -> None:
    scheduler = Scheduler()
    scheduler.register_node("a", desktop())
    scheduler.register_node("b", phone())
    task_id = scheduler.submit(spec, 0.0)  # type: ignore[arg-type]
    got = scheduler.get_task_status(task_id)
    assert got is not None and got["status"] == "failed", why
    assert got["reason"] == "no registered node could ever satisfy it"
    assert scheduler.get_system_status()["tasks"]["pending"] == 0


def test_queued_tasks_fail_when_the_only_node_able_to_run_them_leaves() -> None:
    scheduler = Scheduler()
    scheduler.register_node("big", desktop(cpu_cores=32, cpu_utilization=0.9))
    scheduler.register_node("small", phone())
    task_id = scheduler.submit(task(cpu_millicores=8000), 0.0)
    assert scheduler.schedule(0.0).assigned == []           # fits the device, not its load
    scheduler.unregister_node("big", 1.0)
    assert scheduler.schedule(1.0).failed == [task_id]


def test_busy_is_not_impossible() -> None:
    scheduler = one_slot()
    scheduler.submit(task(), 0.0)
    waiting = scheduler.submit(task(), 0.0)
    scheduler.schedule(0.0)
    assert status(scheduler, waiting) == "pending"


@pytest.mark.parametrize("when", ["pending", "assigned"])
def test_cancellation(when: str) -> None:
    scheduler = one_slot()
    task_id = scheduler.submit(task(), 0.0)
    if when == "assigned":
        scheduler.schedule(0.0)
    assert scheduler.cancel_task(task_id, 1.0)
    assert status(scheduler, task_id) == "cancelled"
    assert scheduler.nodes["a"].reserved_mc == 0
    assert scheduler.schedule(2.0).assigned == []
    assert not scheduler.cancel_task(task_id, 3.0)


def test_a_departed_node_gives_its_tasks_to_others() -> None:
    scheduler = Scheduler()
    scheduler.register_node("a", desktop())
    scheduler.register_node("b", desktop(cpu_utilization=0.5))
    task_id = scheduler.submit(task(), 0.0)
    scheduler.schedule(0.0)
    assert scheduler.unregister_node("a", 3.0) == [task_id]
    assert [a.node_id for a in scheduler.schedule(3.0).assigned] == ["b"]


def test_statistics_count_compute_hours_on_charging_power() -> None:
    scheduler = Scheduler()
    scheduler.register_node("phone", phone(is_charging=True))
    long_id = scheduler.submit(task(task_type=TaskType.TRAINING, estimated_duration=200.0), 0.0)
    short_id = scheduler.submit(task(estimated_duration=100.0), 0.0)
    scheduler.schedule(0.0)
    scheduler.complete_task(long_id, 1800.0)
    scheduler.complete_task(short_id, 3600.0)
    stats = scheduler.get_system_status()["statistics"]
    assert stats["total_compute_hours"] == pytest.approx(1.5)
    assert stats["charging_compute_hours"] == pytest.approx(1.5)
    assert stats["battery_saves"] == 1                      # only the one over 180 s
    ledger = scheduler.ledger.as_dict()["phone"]
    assert ledger["compute_hours"] == pytest.approx(1.5)
    assert ledger["tasks"] == 2


def test_bad_task_specs_are_refused_with_the_field_named() -> None:
    scheduler = Scheduler()
    with pytest.raises(ValueError, match="estimated_duration"):
        scheduler.submit_task(estimated_duration=0.0)
    with pytest.raises(ValueError, match="unknown strategy"):
        scheduler.submit_task(strategy="fastest")
    with pytest.raises(ValueError, match="memory_mb"):
        scheduler.submit_task(memory_mb=-1)
