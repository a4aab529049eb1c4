"""The mobile policies, the node score's factors and the policy mapping, as tables."""

from __future__ import annotations

import pytest
from sched_helpers import desktop, phone, task

from master.scheduling import (
    PRODUCTION_POLICIES,
    Policies,
    PolicyError,
    Scheduler,
    ThermalState,
    long_task_allowed,
    node_blocker,
    node_score,
)


def test_seed_defaults() -> None:
    p = Policies()
    assert (p.prefer_charging_nodes, p.battery_minimum_percent, p.thermal_throttle_threshold,
            p.max_concurrent_tasks_per_node, p.task_timeout_multiplier,
            p.cluster_size_target) == (True, 30.0, 60.0, 2, 2.0, 5)


@pytest.mark.parametrize(
    ("capacity", "blocker"),
    [
        (phone(battery_percent=29.0), "battery_below_minimum"),
        (phone(battery_percent=29.0, is_charging=True), None),   # charging lifts the minimum
        (phone(battery_percent=30.0), None),
        (phone(thermal_state=ThermalState.HOT), "thermal"),
        (desktop(thermal_state=ThermalState.CRITICAL), "thermal"),
        (desktop(thermal_state=ThermalState.WARM), None),
        (desktop(cpu_temperature_c=60.0), "temperature"),       # thermal_throttle_threshold
        (desktop(cpu_temperature_c=59.9), None),
        (desktop(), None),
    ],
)
def test_node_blockers(capacity: object, blocker: str | None) -> None:
    assert node_blocker(Policies(), capacity) == blocker  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("capacity", "prefer", "allowed"),
    [
        (phone(battery_percent=69.0), True, False),
        (phone(battery_percent=70.0), True, True),
        (phone(battery_percent=40.0, is_charging=True), True, True),
        (phone(battery_percent=40.0), False, True),              # rule off
        (desktop(), True, True),
    ],
)
def test_long_tasks_skip_draining_batteries(capacity: object, prefer: bool,
                                           allowed: bool) -> None:
    policies = Policies(prefer_charging_nodes=prefer)
    assert long_task_allowed(policies, capacity) is allowed  # type: ignore[arg-type]


def test_long_task_rule_in_placement() -> None:
    scheduler = Scheduler()
    scheduler.register_node("phone", phone(battery_percent=60.0))
    short = scheduler.submit(task(estimated_duration=300.0), 0.0)
    long = scheduler.submit(task(estimated_duration=301.0), 0.0)
    placed = {a.task_id for a in scheduler.schedule(0.0).assigned}
    assert placed == {short}
    assert scheduler.get_task_status(long)["status"] == "pending"  # type: ignore[index]


IDLE8 = desktop(cpu_utilization=0.0, memory_used_mb=0)  # compute score 1.0 before bonuses


@pytest.mark.parametrize(
    ("capacity", "spec", "expected"),
    [
        (IDLE8, task(), 1.2),                                        # mains x1.2
        (phone(cpu_utilization=0.0, memory_used_mb=0, is_charging=True), task(), 1.5),
        (phone(cpu_utilization=0.0, memory_used_mb=0), task(), 1.0),
        (desktop(cpu_utilization=0.0, memory_used_mb=0, thermal_state=ThermalState.WARM),
         task(), 0.8 * 1.2 * 0.9),                                   # thermal factor x penalty
        (desktop(cpu_utilization=0.0, memory_used_mb=0, gpu_available=True),
         task(requires_gpu=True), 1.2 * 1.3),                        # GPU bonus
        (desktop(cpu_utilization=0.0, memory_used_mb=0, gpu_available=True), task(), 1.2),
        (IDLE8, task(input_size_mb=10.0), 1.2),                      # 10 MB is not large
        (desktop(cpu_utilization=0.0, memory_used_mb=0, network_bandwidth_mbps=20.0),
         task(input_size_mb=11.0), 1.2 * 0.6),                       # 0.5 + 0.5 x 20/100
        (desktop(cpu_utilization=0.0, memory_used_mb=0, network_bandwidth_mbps=500.0),
         task(input_size_mb=11.0), 1.2),                             # capped at 1
    ],
)
def test_node_score_factors(capacity: object, spec: object, expected: float) -> None:
    score = node_score(capacity, spec, Policies())  # type: ignore[arg-type]
    assert score == pytest.approx(expected)


def test_production_preset_and_updates() -> None:
    scheduler = Scheduler()
    scheduler.policies.update(PRODUCTION_POLICIES)
    assert scheduler.policies["max_concurrent_tasks_per_node"] == 1
    assert scheduler.policies["battery_minimum_percent"] == 40.0
    assert scheduler.get_system_status()["policies"]["cluster_size_target"] == 3
    scheduler.register_node("d", desktop())
    ids = [scheduler.submit(task(), 0.0) for _ in range(2)]
    assert [a.task_id for a in scheduler.schedule(0.0).assigned] == ids[:1]  # one at a time


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("battery_minimum", 10, "unknown scheduling policy 'battery_minimum'"),
        ("max_concurrent_tasks_per_node", 0, "max_concurrent_tasks_per_node"),
        ("task_timeout_multiplier", -1.0, "task_timeout_multiplier"),
        ("prefer_charging_nodes", "yes", "prefer_charging_nodes"),
        ("default_strategy", "fastest", "default_strategy"),
    ],
)
def test_bad_policy_updates_name_the_setting(name: str, value: object, message: str) -> None:
    scheduler = Scheduler()
    before = scheduler.policies.copy()
    with pytest.raises(PolicyError, match=message):
        scheduler.policies[name] = value
    assert scheduler.policies.copy() == before


def test_a_policy_change_rejudges_nodes_at_once() -> None:
    scheduler = Scheduler()
    scheduler.register_node("phone", phone(battery_percent=35.0))
    scheduler.policies["battery_minimum_percent"] = 40
    scheduler.submit(task(), 0.0)
    assert scheduler.schedule(0.0).assigned == []
    scheduler.policies["battery_minimum_percent"] = 30
    assert len(scheduler.schedule(1.0).assigned) == 1
