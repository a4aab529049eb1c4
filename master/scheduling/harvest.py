"""Harvest mode (edge-operations seed): a device lends only idle resources, and only at night.

A harvesting node takes work only while charging above 20 %, cool, on an
unmetered network, with the screen off and the user idle, inside its window;
a session lasts at most 8 hours, then the device rests 30 minutes. It offers at
most half its CPU and 30 % of its memory. The ledger counts what each node gave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from master.scheduling.capacity import Capacity

__all__ = [
    "ContributionLedger",
    "HarvestProfile",
    "HarvestSession",
    "HarvestSignals",
    "harvest_blocker",
]

_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class HarvestProfile:
    min_battery_percent: float = 20.0
    max_cpu_temperature_c: float = 45.0
    window_start_hour: float = 22.0
    window_end_hour: float = 7.0
    max_session_hours: float = 8.0
    cooldown_minutes: float = 30.0
    cpu_share: float = 0.5
    memory_share: float = 0.3
    utc_offset_minutes: float = 0.0  # the device's local time decides its window

    def in_window(self, now: float) -> bool:
        hour = ((now + self.utc_offset_minutes * 60.0) % _DAY) / 3600.0
        start, end = self.window_start_hour, self.window_end_hour
        if start <= end:
            return start <= hour < end
        return hour >= start or hour < end


@dataclass(frozen=True, slots=True)
class HarvestSignals:
    """What only the device knows about its user, sent with each report."""

    screen_on: bool = False
    user_idle: bool = True


@dataclass(slots=True)
class HarvestSession:
    started_at: float | None = None
    ended_at: float | None = None

    def advance(self, profile: HarvestProfile, eligible: bool, now: float) -> bool:
        """Move the session on to ``now``; True while the node may take work."""
        limit = profile.max_session_hours * 3600.0
        if self.started_at is not None and (not eligible or now - self.started_at >= limit):
            self.ended_at = min(now, self.started_at + limit)
            self.started_at = None
        if not eligible:
            return False
        if self.started_at is None:
            rest = profile.cooldown_minutes * 60.0
            if self.ended_at is not None and now - self.ended_at < rest:
                return False
            self.started_at = now
        return True


def harvest_blocker(
    profile: HarvestProfile, capacity: Capacity, signals: HarvestSignals, now: float
) -> str | None:
    """Why a harvesting node may not take work now, apart from its session limits."""
    battery = capacity.battery_percent
    temperature = capacity.cpu_temperature_c
    rules = (
        (capacity.battery_powered and not capacity.is_charging, "not_charging"),
        (capacity.battery_powered and (battery is None or battery <= profile.min_battery_percent),
         "battery_low"),
        (temperature is not None and temperature >= profile.max_cpu_temperature_c, "too_hot"),
        (capacity.network_metered, "metered_network"),
        (signals.screen_on, "screen_on"),
        (not signals.user_idle, "user_active"),
        (not profile.in_window(now), "outside_window"),
    )
    for blocked, reason in rules:
        if blocked:
            return reason
    return None


@dataclass(slots=True)
class Contribution:
    compute_hours: float = 0.0
    charging_hours: float = 0.0
    tasks: int = 0


@dataclass(slots=True)
class ContributionLedger:
    """Compute-hours each node gave, and how many of them ran on charging power."""

    nodes: dict[str, Contribution] = field(default_factory=dict)

    def record(self, node_id: str, seconds: float, charging: bool) -> None:
        entry = self.nodes.get(node_id)
        if entry is None:
            entry = self.nodes[node_id] = Contribution()
        hours = max(0.0, seconds) / 3600.0
        entry.compute_hours += hours
        entry.tasks += 1
        if charging:
            entry.charging_hours += hours

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {node: {"compute_hours": c.compute_hours, "charging_hours": c.charging_hours,
                       "tasks": c.tasks} for node, c in sorted(self.nodes.items())}
