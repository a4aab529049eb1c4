"""Thermal states from temperatures, by the edge-operations guide's tiers (seed 001).

=========  ==================  ================================================
state      CPU temperature     why
=========  ==================  ================================================
normal     below 35 C          full performance
warm       35 C up to 45 C     75 % performance
hot        45 C up to 65 C     50 % performance; takes no new work
critical   above 65 C          emergency throttling
=========  ==================  ================================================

The guide leaves 55-65 C without a tier. We count it as **hot**: the guide's own
harvesting rules already throttle at 55 C, and the scheduling core's default
throttle threshold is 60 C, so a device there must take no new work; yet it is not
in emergency, so nothing running there is torn down as it would be at critical.
Exactly 65 C is still hot ("critical > 65").
"""

from __future__ import annotations

from typing import Final

__all__ = ["CRITICAL_ABOVE_C", "HOT_FROM_C", "STATE_WORDS", "WARM_FROM_C", "thermal_state"]

WARM_FROM_C: Final = 35.0
HOT_FROM_C: Final = 45.0
CRITICAL_ABOVE_C: Final = 65.0

STATE_WORDS: Final = ("normal", "warm", "hot", "critical")


def thermal_state(celsius: float | None) -> str:
    """The tier of ``celsius``; ``"unknown"`` when no temperature could be read."""
    if celsius is None:
        return "unknown"
    if celsius > CRITICAL_ABOVE_C:
        return "critical"
    if celsius >= HOT_FROM_C:
        return "hot"
    if celsius >= WARM_FROM_C:
        return "warm"
    return "normal"
