"""STATISTIC_WORKER: window statistics and the spike filter, steady load included."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from worker_helpers import beat

from workers.registry import InstanceRegistry
from workers.statistic import StatisticSettings, StatisticWorker, is_spike, window_stats


@pytest.mark.parametrize(
    ("samples", "mean", "std", "z"),
    [
        ([5.0], 5.0, 0.0, 0.0),
        ([100.0] * 10, 100.0, 0.0, 0.0),          # steady load: std 0, no division
        ([0.0] * 10, 0.0, 0.0, 0.0),              # silence
        ([0.0] * 9 + [100.0], 10.0, 30.0, 3.0),   # a one-sample burst
        ([10.0, 10.0, 10.0, 10.0, 14.0], 10.8, 1.6, 3.2 / math.sqrt(10.8)),  # Poisson floor
        ([50.0] * 9 + [0.0], 45.0, 15.0, -3.0),   # a drop is never a spike
    ],
)
def test_window_stats_table(samples: list[float], mean: float, std: float, z: float) -> None:
    stats = window_stats(samples)
    assert stats is not None
    assert stats.mean == pytest.approx(mean)
    assert stats.std == pytest.approx(std)
    assert stats.z == pytest.approx(z)


def test_empty_window_has_no_stats() -> None:
    assert window_stats([]) is None
    assert not is_spike(None, 1.0)


@pytest.mark.parametrize(
    ("elevated", "spike"),
    # a step from 0 to 100 in a 10-sample window with z_value 2: a spike for one
    # sample, a level from the second on
    [(1, True), (2, False), (3, False), (10, False)],
)
def test_a_step_stops_being_a_spike_once_it_lasts(elevated: int, spike: bool) -> None:
    samples = [0.0] * (10 - elevated) + [100.0] * elevated
    assert is_spike(window_stats(samples), 2.0) is spike


@given(st.floats(0, 1e9), st.integers(1, 600))
def test_constant_rate_is_never_a_spike(rate: float, n: int) -> None:
    stats = window_stats([rate] * n)
    assert stats is not None and stats.z == 0.0 and not is_spike(stats, 0.1)


@given(st.lists(st.floats(0, 1e9), min_size=1, max_size=600))
def test_z_is_always_finite(samples: list[float]) -> None:
    stats = window_stats(samples)
    assert stats is not None and math.isfinite(stats.z) and math.isfinite(stats.std)


def test_settings_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="maximum_seconds"):
        StatisticSettings(refresh_rate=5, maximum_seconds=1)
    assert StatisticSettings(refresh_rate=0.5, maximum_seconds=10).window_samples == 20


async def test_worker_samples_arrival_rate_and_sees_a_burst() -> None:
    registry = InstanceRegistry()
    worker = StatisticWorker(registry, StatisticSettings(z_value=2.0, maximum_seconds=10))
    now = 0.0
    for _ in range(10):  # a source writing 50 msg/s into "in", steadily
        registry.on_heartbeat(beat("src", source=None, target="in", produced=50), now)
        await worker.tick(now)
        now += 1.0
    spike, stats = worker.is_spike("in")
    assert not spike and stats is not None and stats.std == 0.0
    assert worker.get_topic_mean("in") == 50.0
    registry.on_heartbeat(beat("src", source=None, target="in", produced=500), now)
    await worker.tick(now)
    assert worker.is_spike("in")[0]
    assert worker.status().topics["in"].spike is True


async def test_worker_falls_back_to_the_consumed_rate_and_forgets_silent_topics() -> None:
    registry = InstanceRegistry(expiry_beats=1)
    worker = StatisticWorker(registry, StatisticSettings(maximum_seconds=3))
    registry.on_heartbeat(beat("a", source="in", consumed=20), 0.0)
    worker.sample(0.0)
    assert worker.get_topic_mean("in") == 20.0
    registry.expire(10.0)
    for t in range(1, 5):
        worker.sample(float(t))
    assert worker.topic_stats("in") is None
    assert worker.get_topic_standard_deviation("in") == 0.0


async def test_tick_respects_refresh_rate() -> None:
    registry = InstanceRegistry()
    worker = StatisticWorker(registry, StatisticSettings(refresh_rate=1.0))
    registry.on_heartbeat(beat("a", consumed=5), 0.0)
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        await worker.tick(t)
    stats = worker.topic_stats("in")
    assert stats is not None and stats.samples == 2
