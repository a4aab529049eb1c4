"""Capacity reports with impossible values are rejected with a stable reason, never scored;
and what a node lacks for a workload's declared needs, checked before deploying it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from master.scheduling.capacity import Capacity, ThermalState

__all__ = ["CapacityRejected", "capacity_from_report", "unmet_needs", "validate_capacity"]

_FLOATS = (
    "cpu_utilization", "battery_percent", "cpu_temperature_c", "power_budget_watts",
    "network_bandwidth_mbps", "network_latency_ms", "cpu_speed",
)
_INTS = ("cpu_cores", "memory_mb", "memory_used_mb", "gpu_memory_mb")
_BOOLS = ("gpu_available", "battery_powered", "is_charging", "network_metered")
_FIELDS = frozenset(f.name for f in fields(Capacity))


class CapacityRejected(ValueError):
    """A report the scheduler refused; ``reason`` is a stable code, ``field`` the culprit."""

    def __init__(self, reason: str, field: str, value: object) -> None:
        super().__init__(f"capacity report rejected ({reason}): {field}={value!r}")
        self.reason = reason
        self.field = field


def capacity_from_report(report: Mapping[str, Any]) -> Capacity:
    """A :class:`Capacity` from a wire report (plain types), validated."""
    for name in report:
        if name not in _FIELDS:
            raise CapacityRejected("unknown_field", str(name), report[name])
    if "cpu_cores" not in report:
        raise CapacityRejected("missing_field", "cpu_cores", None)
    values: dict[str, Any] = {}
    for name, value in report.items():
        values[name] = _typed(name, value)
    return validate_capacity(Capacity(**values))


def _typed(name: str, value: Any) -> Any:
    if name == "thermal_state":
        if isinstance(value, ThermalState):
            return value
        try:
            return ThermalState(str(value).lower())
        except ValueError:
            raise CapacityRejected("unknown_thermal_state", name, value) from None
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise CapacityRejected("not_a_boolean", name, value)
        return value
    if value is None and name in ("battery_percent", "cpu_temperature_c"):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CapacityRejected("not_a_number", name, value)
    if name in _INTS:
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            raise CapacityRejected("not_an_integer", name, value)
        return int(value)
    return float(value)


def validate_capacity(capacity: Capacity) -> Capacity:
    """Return ``capacity`` if every value is possible, else raise :class:`CapacityRejected`."""
    for name in _FLOATS + _INTS:
        value = getattr(capacity, name)
        if value is not None and not math.isfinite(value):
            raise CapacityRejected("not_finite", name, value)
    if not isinstance(capacity.thermal_state, ThermalState):
        raise CapacityRejected("unknown_thermal_state", "thermal_state", capacity.thermal_state)
    checks: tuple[tuple[bool, str, str], ...] = (
        (capacity.cpu_cores >= 1, "cpu_cores_below_one", "cpu_cores"),
        (0.0 <= capacity.cpu_utilization <= 1.0, "utilization_out_of_range", "cpu_utilization"),
        (capacity.memory_mb >= 0, "negative_memory", "memory_mb"),
        (capacity.memory_used_mb >= 0, "negative_memory", "memory_used_mb"),
        (capacity.memory_used_mb <= capacity.memory_mb, "memory_used_over_total",
         "memory_used_mb"),
        (capacity.gpu_memory_mb >= 0, "negative_memory", "gpu_memory_mb"),
        (capacity.battery_percent is None or 0.0 <= capacity.battery_percent <= 100.0,
         "battery_out_of_range", "battery_percent"),
        (capacity.power_budget_watts >= 0.0, "negative_power", "power_budget_watts"),
        (capacity.network_bandwidth_mbps >= 0.0, "negative_bandwidth", "network_bandwidth_mbps"),
        (capacity.network_latency_ms >= 0.0, "negative_latency", "network_latency_ms"),
        (capacity.cpu_speed > 0.0, "speed_not_positive", "cpu_speed"),
    )
    for ok, reason, name in checks:
        if not ok:
            raise CapacityRejected(reason, name, getattr(capacity, name))
    return capacity


_THERMAL_ORDER = (ThermalState.NORMAL, ThermalState.WARM, ThermalState.HOT, ThermalState.CRITICAL)


def unmet_needs(
    capacity: Capacity, *, cpu: float = 0.0, memory_mb: int = 0, gpu: bool = False,
    min_battery: float | None = None, max_thermal: str | None = None,
) -> list[str]:
    """What ``capacity`` lacks for one more workload with these needs (empty: it fits).

    CPU and memory are what is free now; a node on mains power meets any battery
    floor; a node that cannot tell its temperature meets no thermal ceiling."""
    lacks = []
    if capacity.available_cpu_cores < cpu:
        lacks.append(f"{capacity.available_cpu_cores:.2f} free core(s) < {cpu:g} needed")
    if capacity.available_memory_mb < memory_mb:
        lacks.append(f"{capacity.available_memory_mb} MiB free < {memory_mb} MiB needed")
    if gpu and not capacity.gpu_available:
        lacks.append("no GPU")
    if min_battery is not None and capacity.draws_battery:
        level = capacity.battery_percent
        if level is None or level < min_battery:
            lacks.append(f"battery {level if level is not None else 'unknown'}% <"
                         f" {min_battery:g}% needed")
    if max_thermal is not None:
        ceiling = ThermalState(max_thermal)
        state = capacity.thermal_state
        if state not in _THERMAL_ORDER or _THERMAL_ORDER.index(state) > _THERMAL_ORDER.index(
                ceiling):
            lacks.append(f"thermal state {state.value} above {ceiling.value}")
    return lacks
