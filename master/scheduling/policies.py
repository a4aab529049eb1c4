"""Scheduling policies: the seed's defaults, its production preset, and the mobile rules."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from master.scheduling.capacity import Capacity, ThermalState

__all__ = [
    "PRODUCTION_POLICIES",
    "Policies",
    "PolicyError",
    "PolicyMapping",
    "long_task_allowed",
    "node_blocker",
]


class PolicyError(ValueError):
    """A policy update named an unknown setting or gave it an impossible value."""


@dataclass(frozen=True, slots=True)
class Policies:
    """Every number here is a default the fog-coordinator seed documents, or ours where named."""

    prefer_charging_nodes: bool = True
    battery_minimum_percent: float = 30.0
    thermal_throttle_threshold: float = 60.0
    max_concurrent_tasks_per_node: int = 2
    task_timeout_multiplier: float = 2.0
    cluster_size_target: int = 5
    long_task_seconds: float = 300.0
    long_task_battery_percent: float = 70.0
    large_input_mb: float = 10.0
    reference_bandwidth_mbps: float = 100.0
    battery_save_seconds: float = 180.0
    default_strategy: str = "score"
    max_defer_seconds: float = 900.0  # ours: how long the deadline planner may hold a task

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def updated(self, changes: Mapping[str, Any]) -> Policies:
        """A copy with ``changes`` applied; a bad name or value raises :class:`PolicyError`."""
        types = {f.name: f.type for f in fields(self)}
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in types:
                raise PolicyError(f"unknown scheduling policy {name!r}")
            clean[name] = _check(name, str(types[name]), value)
        return replace(self, **clean)


PRODUCTION_POLICIES: Mapping[str, Any] = {
    "prefer_charging_nodes": True,
    "battery_minimum_percent": 40.0,
    "thermal_throttle_threshold": 55.0,
    "max_concurrent_tasks_per_node": 1,
    "task_timeout_multiplier": 3.0,
    "cluster_size_target": 3,
}
"""The seed's conservative production preset: ``policies.update(PRODUCTION_POLICIES)``."""


def _check(name: str, kind: str, value: Any) -> Any:
    if kind == "bool":
        if not isinstance(value, bool):
            raise PolicyError(f"policy {name} must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            raise PolicyError(f"policy {name} must be a name, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise PolicyError(f"policy {name} must be a number, got {value!r}")
    if kind == "int":
        if value != int(value) or value < 1:
            raise PolicyError(f"policy {name} must be a whole number >= 1, got {value!r}")
        return int(value)
    if value < 0:
        raise PolicyError(f"policy {name} must not be negative, got {value!r}")
    return float(value)


class PolicyMapping(MutableMapping[str, Any]):
    """The policies as an updatable mapping (the seed's ``coordinator.policies``).

    Each change is validated and handed to ``on_change`` with the new
    :class:`Policies`, so the scheduler re-judges its nodes at once.
    """

    def __init__(self, current: Policies, on_change: Any) -> None:
        self._current = current
        self._on_change = on_change

    @property
    def current(self) -> Policies:
        return self._current

    def __getitem__(self, key: str) -> Any:
        return self._current.as_dict()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise PolicyError(f"policy {key!r} cannot be removed; set it instead")

    def __iter__(self) -> Iterator[str]:
        return iter(self._current.as_dict())

    def __len__(self) -> int:
        return len(fields(self._current))

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        changes = dict(other, **kwargs)
        proposed = self._current.updated(changes)
        self._on_change(proposed)  # may refuse; then nothing changed
        self._current = proposed

    def copy(self) -> dict[str, Any]:
        return self._current.as_dict()


def node_blocker(policies: Policies, capacity: Capacity) -> str | None:
    """Why this node takes no work at all under ``policies`` (None: it may take work)."""
    battery = capacity.battery_percent
    if (capacity.battery_powered and battery is not None
            and battery < policies.battery_minimum_percent and not capacity.is_charging):
        return "battery_below_minimum"
    if capacity.thermal_state in (ThermalState.HOT, ThermalState.CRITICAL):
        return "thermal"
    temperature = capacity.cpu_temperature_c
    if temperature is not None and temperature >= policies.thermal_throttle_threshold:
        return "temperature"
    return None


def long_task_allowed(policies: Policies, capacity: Capacity) -> bool:
    """Long tasks skip discharging battery nodes under 70 % (when charging is preferred)."""
    battery = capacity.battery_percent
    return not (policies.prefer_charging_nodes and capacity.battery_powered
                and not capacity.is_charging and battery is not None
                and battery < policies.long_task_battery_percent)
