"""Small factories for the scheduling tests: a desktop, a phone, a task."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from master.scheduling import Capacity, TaskPriority, TaskSpec, TaskType, ThermalState


def desktop(**changes: Any) -> Capacity:
    base = Capacity(cpu_cores=8, cpu_utilization=0.25, memory_mb=16384, memory_used_mb=4096,
                    network_bandwidth_mbps=100.0, network_latency_ms=5.0)
    return replace(base, **changes)


def phone(**changes: Any) -> Capacity:
    base = Capacity(cpu_cores=4, cpu_utilization=0.5, memory_mb=6144, memory_used_mb=2048,
                    battery_powered=True, battery_percent=85.0, is_charging=False,
                    thermal_state=ThermalState.NORMAL, network_bandwidth_mbps=50.0,
                    network_latency_ms=40.0, power_budget_watts=4.0, cpu_speed=0.5)
    return replace(base, **changes)


def task(**changes: Any) -> TaskSpec:
    base = TaskSpec(task_type=TaskType.INFERENCE, priority=TaskPriority.NORMAL,
                    cpu_millicores=1000, memory_mb=512, estimated_duration=60.0)
    return replace(base, **changes)
