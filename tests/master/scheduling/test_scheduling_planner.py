"""deadline_energy waits for a free charger when the deadline allows, else spends least battery."""

from __future__ import annotations

import pytest
from sched_helpers import desktop, phone, task

from master.scheduling import Policies, Scheduler

SLOW_DESK = desktop(cpu_speed=1.0)


def planner(**fleet: object) -> Scheduler:
    scheduler = Scheduler(Policies(default_strategy="deadline_energy",
                                   max_concurrent_tasks_per_node=1))
    for node_id, capacity in fleet.items():
        scheduler.register_node(node_id, capacity)  # type: ignore[arg-type]
    return scheduler


def occupy_desk(scheduler: Scheduler, seconds: float) -> str:
    """Keep the desktop busy with a task expected to end after ``seconds``."""
    busy = scheduler.submit(task(estimated_duration=seconds, strategy="score"), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["desk"]
    return busy


@pytest.mark.parametrize(
    ("deadline", "expected"),
    [
        (None, None),       # no deadline: waits (desk frees in 100 s < max_defer_seconds)
        (400.0, None),      # desk frees at 100 s, runs 60 s x 1.15 -> in time: wait
        (150.0, "phone"),   # waiting would miss: the battery pays
    ],
)
def test_waits_for_mains_only_when_the_deadline_allows(deadline: float | None,
                                                       expected: str | None) -> None:
    scheduler = planner(desk=desktop(), phone=phone(cpu_speed=1.0))
    occupy_desk(scheduler, 100.0)
    scheduler.submit(task(deadline=deadline), 1.0)
    placed = [a.node_id for a in scheduler.schedule(1.0).assigned]
    assert placed == ([] if expected is None else [expected])


def test_waiting_task_runs_once_the_desk_is_free() -> None:
    scheduler = planner(desk=desktop(), phone=phone(cpu_speed=1.0))
    busy = occupy_desk(scheduler, 100.0)
    waiting = scheduler.submit(task(deadline=400.0), 1.0)
    assert scheduler.schedule(1.0).assigned == []
    scheduler.complete_task(busy, 100.0)
    assert [(a.task_id, a.node_id) for a in scheduler.schedule(100.0).assigned] == [
        (waiting, "desk")]


def test_never_waits_past_max_defer_without_a_deadline() -> None:
    scheduler = planner(desk=desktop(), phone=phone(cpu_speed=1.0))
    occupy_desk(scheduler, 5000.0)
    scheduler.submit(task(), 1.0)
    assert [a.node_id for a in scheduler.schedule(1.0).assigned] == ["phone"]


def test_prefers_the_node_that_finishes_in_time() -> None:
    # The seed's score picks the idle phone; at half speed it would finish too late.
    scheduler = planner(desk=desktop(cpu_utilization=0.7),
                        phone=phone(cpu_utilization=0.0, memory_used_mb=0, is_charging=True,
                                    cpu_speed=0.5))
    scheduler.submit(task(estimated_duration=60.0, deadline=100.0), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["desk"]


def test_the_cheapest_battery_pays() -> None:
    scheduler = planner(
        hungry=phone(power_budget_watts=8.0, battery_percent=90.0, cpu_speed=1.0),
        frugal=phone(power_budget_watts=2.0, battery_percent=90.0, cpu_speed=1.0),
        emptier=phone(power_budget_watts=2.0, battery_percent=35.0, cpu_speed=1.0),
    )
    scheduler.submit(task(deadline=200.0), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["frugal"]
