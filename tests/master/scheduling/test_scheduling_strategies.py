"""Which node each strategy picks, table by table; the default is the seed's best score."""

from __future__ import annotations

import pytest
from sched_helpers import desktop, phone, task

from master.scheduling import Capacity, Policies, Scheduler, TaskSpec, ThermalState

FLEET: dict[str, Capacity] = {
    # free share 0.5 x mains 1.2 = 0.6
    "busy-desktop": desktop(cpu_utilization=0.5, memory_used_mb=8192, network_latency_ms=20.0),
    # free 1.0 -> score 1.0, far away
    "idle-phone": phone(cpu_utilization=0.0, memory_used_mb=0, battery_percent=90.0,
                        network_latency_ms=80.0),
    # free 0.5, battery 60 charging x1.2 x1.5 = 0.9; closest
    "charging-phone": phone(cpu_utilization=0.5, memory_used_mb=3072, battery_percent=60.0,
                            is_charging=True, network_latency_ms=2.0),
    # free 0.25 -> 0.25 x 1.2 = 0.3
    "loaded-desktop": desktop(cpu_utilization=0.75, memory_used_mb=12288,
                              network_latency_ms=10.0),
}


def scheduler_with(strategy: str, fleet: dict[str, Capacity] = FLEET) -> Scheduler:
    scheduler = Scheduler(Policies(default_strategy=strategy))
    for node_id, capacity in fleet.items():
        scheduler.register_node(node_id, capacity)
    return scheduler


def first_choice(strategy: str, spec: TaskSpec | None = None) -> str:
    scheduler = scheduler_with(strategy)
    scheduler.submit(spec or task(), 0.0)
    (assignment,) = scheduler.schedule(0.0).assigned
    return assignment.node_id


@pytest.mark.parametrize(
    ("strategy", "node"),
    [
        ("score", "idle-phone"),
        ("round_robin", "busy-desktop"),        # registration order first
        ("least_loaded", "idle-phone"),         # largest free CPU share, no tasks
        ("latency_optimized", "charging-phone"),
        ("power_aware", "busy-desktop"),        # mains first, the best score among them
        ("deadline_energy", "busy-desktop"),    # mains, finishes first (speed 1.0 vs 0.5)
    ],
)
def test_first_choice(strategy: str, node: str) -> None:
    assert first_choice(strategy) == node


def test_a_task_may_name_its_own_strategy() -> None:
    assert first_choice("score", task(strategy="latency_optimized")) == "charging-phone"


def test_round_robin_goes_round() -> None:
    scheduler = scheduler_with("round_robin")
    for _ in range(5):
        scheduler.submit(task(cpu_millicores=100, memory_mb=64), 0.0)
    placed = [a.node_id for a in scheduler.schedule(0.0).assigned]
    assert placed == ["busy-desktop", "idle-phone", "charging-phone", "loaded-desktop",
                      "busy-desktop"]


def test_score_prefers_the_first_registered_on_ties() -> None:
    twins = {"a": desktop(), "b": desktop(), "c": desktop()}
    scheduler = scheduler_with("score", twins)
    scheduler.submit(task(), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["a"]


def test_score_spreads_as_reservations_lower_scores() -> None:
    scheduler = scheduler_with("score", {"a": desktop(), "b": desktop()})
    for _ in range(4):
        scheduler.submit(task(), 0.0)
    assert [a.node_id for a in scheduler.schedule(0.0).assigned] == ["a", "b", "a", "b"]


@pytest.mark.parametrize("strategy", ["score", "round_robin", "least_loaded",
                                      "latency_optimized", "power_aware", "deadline_energy"])
def test_every_strategy_respects_feasibility(strategy: str) -> None:
    fleet = {
        "tiny": desktop(cpu_cores=1, memory_mb=1024, memory_used_mb=0, cpu_utilization=0.0),
        "gpu": desktop(gpu_available=True, gpu_memory_mb=4096),
        "hot": desktop(thermal_state=ThermalState.HOT),
        "flat": phone(battery_percent=10.0),
    }
    scheduler = scheduler_with(strategy, fleet)
    needs_gpu = scheduler.submit(task(requires_gpu=True, cpu_millicores=2000), 0.0)
    big = scheduler.submit(task(cpu_millicores=4000, memory_mb=4096), 0.0)
    placed = {a.task_id: a.node_id for a in scheduler.schedule(0.0).assigned}
    assert placed[needs_gpu] == "gpu"
    assert placed.get(big) in (None, "gpu")
    assert "hot" not in placed.values() and "flat" not in placed.values()


@pytest.mark.parametrize("strategy", ["score", "round_robin", "least_loaded",
                                      "latency_optimized", "power_aware", "deadline_energy"])
def test_every_strategy_stops_at_the_concurrent_task_limit(strategy: str) -> None:
    scheduler = scheduler_with(strategy, {"only": desktop()})
    for _ in range(3):
        scheduler.submit(task(cpu_millicores=100, memory_mb=64), 0.0)
    assert len(scheduler.schedule(0.0).assigned) == 2  # max_concurrent_tasks_per_node
