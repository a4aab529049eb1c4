"""STATISTIC_WORKER: each topic's message rate over a sliding window, and a spike filter.

Every ``refresh_rate`` seconds the worker samples each topic's arrival rate (what
live instances report writing into it; when nobody does, what they read from
it) into a window of ``maximum_seconds``. The latest sample's z-score against
that window tells a spike from a level: a burst is a spike while it is short
compared with the window, and stops being one once it has lasted long enough to
move the mean.

The deviation used for the z-score never falls below the counting noise of the
mean (``sqrt(mean)``, as for Poisson counts), and a window where every sample is
equal has z = 0: steady load is never a spike and never divides by zero.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from workers.base import BaseWorker
from workers.registry import InstanceRegistry

__all__ = [
    "StatisticSettings",
    "StatisticStatus",
    "StatisticWorker",
    "TopicStatus",
    "WindowStats",
    "is_spike",
    "window_stats",
]


@dataclass(frozen=True)
class StatisticSettings:
    """FogVerse's ``statistic_worker_config``; see master.config for why these defaults."""

    z_value: float = 2.0
    refresh_rate: float = 1.0
    maximum_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.z_value <= 0 or self.refresh_rate <= 0 or self.maximum_seconds < self.refresh_rate:
            raise ValueError(
                "statistic_worker_config needs z_value > 0, refresh_rate > 0 and "
                f"maximum_seconds >= refresh_rate; got {self}"
            )

    @property
    def window_samples(self) -> int:
        return max(2, math.ceil(self.maximum_seconds / self.refresh_rate))


@dataclass(frozen=True, slots=True)
class WindowStats:
    """Mean and deviation of a window of rates, and the latest sample's z-score."""

    samples: int
    mean: float
    std: float
    latest: float
    z: float


@dataclass(frozen=True, slots=True)
class TopicStatus:
    """One topic's rate now, its window's mean and deviation, and whether it spikes."""

    rate: float
    mean: float
    std: float
    z: float
    spike: bool


@dataclass(frozen=True, slots=True)
class StatisticStatus:
    topics: dict[str, TopicStatus]


def window_stats(samples: Sequence[float]) -> WindowStats | None:
    """Statistics of ``samples`` (oldest first); None for an empty window."""
    n = len(samples)
    if n == 0:
        return None
    latest = samples[-1]
    if min(samples) == max(samples):
        # Steady load: exactly no spread (the float mean could show rounding dust).
        return WindowStats(n, latest, 0.0, latest, 0.0)
    mean = math.fsum(samples) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in samples) / n)
    # Never below the counting noise of the mean, never zero: the spread is > 0 here.
    z = (latest - mean) / max(std, math.sqrt(max(mean, 0.0)), 1e-12)
    return WindowStats(n, mean, std, latest, z)


def is_spike(stats: WindowStats | None, z_value: float) -> bool:
    """True when the latest rate stands more than ``z_value`` deviations above the window."""
    return stats is not None and stats.z > z_value


class StatisticWorker(BaseWorker):
    """Samples topic rates from the registry and answers "is this topic spiking?"."""

    name = "statistic"

    def __init__(self, registry: InstanceRegistry, settings: StatisticSettings | None = None):
        self.settings = settings or StatisticSettings()
        self._registry = registry
        self._series: dict[str, deque[float]] = {}
        self._last_sample: float | None = None

    async def tick(self, now: float) -> None:
        if self._last_sample is not None and now - self._last_sample < self.settings.refresh_rate:
            return
        self._last_sample = now
        self.sample(now)

    def sample(self, now: float) -> None:
        """Add one sample per topic (0 for a topic that went quiet)."""
        rates = self._registry.topic_rates()
        for topic in rates.keys() | self._series.keys():
            series = self._series.get(topic)
            if series is None:
                series = self._series[topic] = deque(maxlen=self.settings.window_samples)
            r = rates.get(topic)
            if r is None:
                series.append(0.0)
            else:
                series.append(r.produced_into if r.producers else r.consumed_from)
        # A topic silent for a whole window carries no information any more.
        for topic in [t for t, s in self._series.items() if t not in rates and not any(s)]:
            del self._series[topic]

    def topic_stats(self, topic: str) -> WindowStats | None:
        series = self._series.get(topic)
        return window_stats(series) if series else None

    def is_spike(self, topic: str) -> tuple[bool, WindowStats | None]:
        stats = self.topic_stats(topic)
        return is_spike(stats, self.settings.z_value), stats

    # FogVerse's TopicStatistic interface.
    def get_topic_mean(self, topic: str) -> float:
        stats = self.topic_stats(topic)
        return stats.mean if stats else 0.0

    def get_topic_standard_deviation(self, topic: str) -> float:
        stats = self.topic_stats(topic)
        return stats.std if stats else 0.0

    def status(self) -> StatisticStatus:
        topics = {}
        for topic in sorted(self._series):
            stats = self.topic_stats(topic)
            if stats is not None:
                topics[topic] = TopicStatus(stats.latest, stats.mean, stats.std, stats.z,
                                            is_spike(stats, self.settings.z_value))
        return StatisticStatus(topics)
