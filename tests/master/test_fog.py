"""The embeddable scheduler API (the fog coordinator's shape) with a clock of its own."""

from __future__ import annotations

from datetime import UTC, datetime

import psutil
import pytest

from master.fog import FogScheduler
from master.local_node import local_capacity, thermal_state_for
from master.scheduling import (
    PRODUCTION_POLICIES,
    Capacity,
    CapacityRejected,
    TaskPriority,
    TaskType,
    ThermalState,
)

DESKTOP = Capacity(cpu_cores=8, cpu_utilization=0.3, memory_mb=16384, memory_used_mb=4096,
                   gpu_available=True, gpu_memory_mb=8192, network_bandwidth_mbps=100.0)
MOBILE = {"cpu_cores": 4, "cpu_utilization": 0.5, "memory_mb": 6144, "memory_used_mb": 2048,
          "battery_powered": True, "battery_percent": 85, "is_charging": True,
          "network_bandwidth_mbps": 50.0}


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_seeds_basic_setup_runs_in_process() -> None:
    clock = Clock()
    fog = FogScheduler(coordinator_id="production_coordinator", clock=clock)
    assert fog.register_node("desktop_001", DESKTOP)
    assert fog.register_node("mobile_001", MOBILE)          # a wire report works too
    assert not fog.register_node("desktop_001", DESKTOP)    # already registered
    task_id = fog.submit_task(TaskType.TRAINING, TaskPriority.HIGH, cpu_cores=2.0,
                              memory_mb=2048, estimated_duration=1800,
                              input_data=b"x" * (11 * 1024 * 1024))
    assert fog.get_task_status(task_id)["status"] == "pending"  # type: ignore[index]
    fog.schedule()
    status = fog.get_task_status(task_id)
    assert status is not None and status["status"] == "assigned"
    clock.now += 900
    assert fog.complete_task(task_id)
    system = fog.get_system_status()
    assert system["coordinator_id"] == "production_coordinator"
    assert system["tasks"]["completed"] == 1
    assert system["statistics"]["total_compute_hours"] == pytest.approx(0.25)


def test_deadlines_as_aware_datetimes() -> None:
    clock = Clock()
    fog = FogScheduler(clock=clock)
    deadline = datetime.fromtimestamp(clock.now + 10, UTC)
    task_id = fog.submit_task(deadline=deadline)             # no node can take it yet
    clock.now += 11
    fog.register_node("late", DESKTOP)
    fog.schedule()
    assert fog.get_task_status(task_id)["status"] == "failed"  # type: ignore[index]
    with pytest.raises(ValueError, match="timezone-aware"):
        fog.submit_task(deadline=datetime(2030, 1, 1))


def test_policies_mapping_updates() -> None:
    fog = FogScheduler(clock=Clock())
    fog.policies.update(PRODUCTION_POLICIES)
    assert fog.get_system_status()["policies"]["task_timeout_multiplier"] == 3.0
    fog.policies["battery_minimum_percent"] = 50
    assert fog.policies["battery_minimum_percent"] == 50.0


def test_bad_reports_are_refused() -> None:
    fog = FogScheduler(clock=Clock())
    with pytest.raises(CapacityRejected, match="battery_out_of_range"):
        fog.register_node("bad", {**MOBILE, "battery_percent": 250})


def test_the_masters_machine_is_a_node() -> None:
    clock = Clock()
    fog = FogScheduler(clock=clock, local_node=True)
    assert fog.local_node_id is not None
    node = fog.core.nodes[fog.local_node_id]
    assert node.capacity.cpu_cores == psutil.cpu_count()
    assert node.capacity.memory_mb == psutil.virtual_memory().total // (1024 * 1024)
    assert fog.place() == fog.local_node_id
    metrics = fog.metrics()
    assert set(metrics["node_scores"]) == {fog.local_node_id}
    assert 0.0 <= metrics["node_scores"][fog.local_node_id] <= 1.0


def test_local_capacity_is_a_valid_report() -> None:
    cap = local_capacity(0.25)
    assert cap.cpu_utilization == 0.25
    assert 0 <= cap.memory_used_mb <= cap.memory_mb


@pytest.mark.parametrize(("celsius", "state"), [
    (None, ThermalState.NORMAL), (50.0, ThermalState.NORMAL), (70.0, ThermalState.WARM),
    (85.0, ThermalState.HOT), (99.0, ThermalState.CRITICAL)])
def test_thermal_state_from_temperature(celsius: float | None, state: ThermalState) -> None:
    assert thermal_state_for(celsius) is state
