"""What a node can offer: the capacity report and the seed's compute score.

A report describes the device as the device sees it (its own load included);
the scheduler's reservations are kept apart from it and subtracted on top, so a
fresh report never erases what the scheduler has already promised.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = [
    "POWER_CHARGING",
    "POWER_LOW",
    "POWER_VERY_LOW",
    "THERMAL_FACTOR",
    "Capacity",
    "ThermalState",
    "compute_score",
    "score_from_free",
]


class ThermalState(Enum):
    __hash__ = object.__hash__  # members are singletons; Enum's own hash is slow on hot paths

    NORMAL = "normal"
    WARM = "warm"
    HOT = "hot"
    CRITICAL = "critical"
    UNKNOWN = "unknown"  # the device cannot tell; scored between warm and hot


THERMAL_FACTOR: dict[ThermalState, float] = {
    ThermalState.NORMAL: 1.0,
    ThermalState.WARM: 0.8,
    ThermalState.HOT: 0.4,
    ThermalState.CRITICAL: 0.1,
    ThermalState.UNKNOWN: 0.5,
}

POWER_VERY_LOW = (20.0, 0.2)
"""Battery under 20 %: the score is multiplied by 0.2."""
POWER_LOW = (50.0, 0.6)
"""Battery under 50 %: multiplied by 0.6."""
POWER_CHARGING = 1.2
"""Charging with at least 50 %: a bonus (a low battery keeps its penalty while charging)."""


@dataclass(frozen=True, slots=True)
class Capacity:
    """One capacity report. Field names follow the fog-coordinator seed.

    ``cpu_speed`` (ours) is how fast one core runs a task against the machine a
    task's estimated duration was measured on; the default strategy ignores it,
    the deadline planner and task timeouts use it.
    """

    cpu_cores: int
    cpu_utilization: float = 0.0
    memory_mb: int = 1024
    memory_used_mb: int = 0
    gpu_available: bool = False
    gpu_memory_mb: int = 0
    battery_powered: bool = False
    battery_percent: float | None = None
    is_charging: bool = False
    thermal_state: ThermalState = ThermalState.NORMAL
    cpu_temperature_c: float | None = None
    power_budget_watts: float = 100.0
    network_bandwidth_mbps: float = 10.0
    network_latency_ms: float = 50.0
    network_metered: bool = False
    cpu_speed: float = 1.0

    @property
    def available_cpu_cores(self) -> float:
        return self.cpu_cores * (1.0 - self.cpu_utilization)

    @property
    def available_memory_mb(self) -> int:
        return self.memory_mb - self.memory_used_mb

    @property
    def compute_score(self) -> float:
        return compute_score(self)

    @property
    def on_mains(self) -> bool:
        return not self.battery_powered

    @property
    def draws_battery(self) -> bool:
        """Work here is paid for by a battery that is not being charged."""
        return self.battery_powered and not self.is_charging


def power_factor(capacity: Capacity) -> float:
    battery = capacity.battery_percent
    if not capacity.battery_powered or battery is None:
        return 1.0
    if battery < POWER_VERY_LOW[0]:
        return POWER_VERY_LOW[1]
    if battery < POWER_LOW[0]:
        return POWER_LOW[1]
    return POWER_CHARGING if capacity.is_charging else 1.0


def score_from_free(capacity: Capacity, free_cpu: float, free_memory_mb: float) -> float:
    """The compute score given what is free after reservations (the seed's arithmetic)."""
    cpu_score = max(0.0, free_cpu) / max(1, capacity.cpu_cores)
    memory_score = max(0.0, free_memory_mb) / max(1, capacity.memory_mb)
    base = (cpu_score + memory_score) / 2
    return min(1.0, base * power_factor(capacity) * THERMAL_FACTOR[capacity.thermal_state])


def compute_score(
    capacity: Capacity, reserved_cpu: float = 0.0, reserved_memory_mb: int = 0
) -> float:
    """mean(free CPU share, free memory share) x power factor x thermal factor, capped at 1."""
    return score_from_free(
        capacity,
        capacity.available_cpu_cores - reserved_cpu,
        capacity.available_memory_mb - reserved_memory_mb,
    )
