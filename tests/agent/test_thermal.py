"""Seed 001's thermal tiers, with our choice for the 55-65 C gap (hot)."""

from __future__ import annotations

import pytest

from fogverse.agent.thermal import thermal_state


@pytest.mark.parametrize(
    ("celsius", "state"),
    [
        (None, "unknown"),
        (-10.0, "normal"),
        (34.9, "normal"),
        (35.0, "warm"),
        (44.9, "warm"),
        (45.0, "hot"),
        (55.0, "hot"),   # the seed's gap 55-65: hot, takes no new work
        (60.0, "hot"),
        (65.0, "hot"),   # "critical > 65": 65 itself is not critical
        (65.1, "critical"),
        (95.0, "critical"),
    ],
)
def test_tiers(celsius: float | None, state: str) -> None:
    assert thermal_state(celsius) == state
