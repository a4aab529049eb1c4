"""INPUT_OUTPUT_WORKER: does each stage keep up with its input, and by how much?

Per stage (a source->target pair, however many instances announce it) the
worker samples every ``refresh_rate_second``: the arrival rate into the source
topic, the stage's output rate, and the consumer group's lag read from the
broker. Over the samples taken since the stage's instance count last changed
(at most ``window_seconds``) it concludes:

* NEEDS_MORE when the lag keeps growing, or when output/input is under
  ``input_output_ratio_threshold`` while messages wait (lag above ``idle_lag``;
  with the lag unknown, the stage reading under that share of what arrives).
  Zero output is the extreme of this case: it asks for more, it never stops the
  worker (FogVerse's ratio worker returned on zero output and never ran again).
* HAS_TOO_MANY when, for ``scale_in_hold`` seconds, the lag stays at most
  ``idle_lag``, output/input is at least ``scale_in_ratio`` (or there is no
  input), and one instance fewer would be at most ``scale_in_utilization`` busy.
* STEADY otherwise; UNKNOWN until there are enough samples.

Output is what the stage produced (what it consumed, for a sink). A low ratio
with nothing waiting is a stage that filters, not one that lags, hence the lag
condition on the ratio rule.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from workers.base import BaseWorker
from workers.registry import InstanceRegistry, StageKey, stage_name

__all__ = [
    "Assessment",
    "InputOutputSettings",
    "InputOutputStatus",
    "InputOutputWorker",
    "LagReader",
    "StageSample",
    "StageTracker",
    "Verdict",
    "assess",
    "lag_slope",
]

log = logging.getLogger("fogverse.master.input_output")

_NO_INPUT = 1e-3
"""Messages per second below which a stage has no input and its ratio means nothing."""

LagReader: TypeAlias = Callable[[str, str], Awaitable[int | None]]
"""``await read(group_id, topic)`` -> the group's total lag on the topic, or None."""


class Verdict(enum.StrEnum):
    NEEDS_MORE = "needs_more"
    HAS_TOO_MANY = "has_too_many"
    STEADY = "steady"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class InputOutputSettings:
    """FogVerse's ``input_output_worker_config`` plus our scale-in knobs."""

    refresh_rate_second: float = 1.0
    input_output_ratio_threshold: float = 0.7
    window_seconds: float = 10.0
    min_samples: int = 2
    idle_lag: int = 10
    scale_in_ratio: float = 0.95
    scale_in_hold: float = 10.0
    scale_in_utilization: float = 0.6
    lag_growth_min: float = 1.0
    """Lag must grow faster than this (messages/s, and 5% of the input) to count."""

    def __post_init__(self) -> None:
        if self.refresh_rate_second <= 0 or self.window_seconds < self.refresh_rate_second:
            raise ValueError(f"input_output_worker_config: bad refresh/window in {self}")
        if not 0 < self.input_output_ratio_threshold <= 1:
            raise ValueError("input_output_ratio_threshold must be in (0, 1]")
        if self.min_samples < 2:
            raise ValueError("min_samples must be at least 2 (a slope needs two points)")


@dataclass(frozen=True, slots=True)
class StageSample:
    """One look at a stage. Rates are messages per second."""

    at: float
    arrival: float | None
    """Rate into the source topic as its writers report it; None if none reports."""
    output: float
    consumed: float
    lag: int | None
    busy: float | None = None
    live: int = 0


@dataclass(frozen=True, slots=True)
class Assessment:
    verdict: Verdict
    reason: str
    input_rate: float | None = None
    output_rate: float | None = None
    ratio: float | None = None
    lag: int | None = None
    lag_slope: float | None = None
    idle_since: float | None = None


@dataclass(frozen=True, slots=True)
class InputOutputStatus:
    """The latest assessment of every stage the worker samples, by stage name."""

    stages: dict[str, Assessment]


def lag_slope(samples: Sequence[StageSample]) -> float | None:
    """Least-squares growth of the lag in messages per second; None with < 2 lag points."""
    points = [(s.at, s.lag) for s in samples if s.lag is not None]
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = math.fsum(t for t, _ in points) / n
    mean_l = math.fsum(lag for _, lag in points) / n
    var_t = math.fsum((t - mean_t) ** 2 for t, _ in points)
    if var_t == 0:
        return None
    cov = math.fsum((t - mean_t) * (lag - mean_l) for t, lag in points)
    return cov / var_t


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def _rates(window: Sequence[StageSample], slope: float | None) -> tuple[float, float]:
    output = _mean([s.output for s in window])
    if all(s.arrival is not None for s in window):
        return _mean([s.arrival for s in window if s.arrival is not None]), output
    # Nobody reports writing into the source: what arrives is what was read plus
    # what piled up.
    return _mean([s.consumed for s in window]) + max(0.0, slope or 0.0), output


def assess(
    window: Sequence[StageSample], now: float, settings: InputOutputSettings,
    idle_since: float | None,
) -> Assessment:
    """The verdict for a stage from its recent samples (oldest first), pure.

    ``idle_since`` is when the scale-in conditions last became true (None if they
    were false at the previous assessment); the result carries the updated value.
    """
    if len(window) < settings.min_samples:
        return Assessment(Verdict.UNKNOWN, f"settling: {len(window)} sample(s) since last change")
    slope = lag_slope(window)
    input_rate, output_rate = _rates(window, slope)
    ratio = output_rate / input_rate if input_rate > _NO_INPUT else None
    lag = window[-1].lag
    base = Assessment(Verdict.STEADY, "", input_rate, output_rate, ratio, lag, slope)
    consumed_rate = _mean([s.consumed for s in window])
    more = _needs_more(ratio, lag, slope, input_rate, consumed_rate, settings)
    if more is not None:
        return replace(base, verdict=Verdict.NEEDS_MORE, reason=more)
    blocker = _scale_in_blocker(window[-1], ratio, output_rate, lag, settings)
    if blocker is not None:
        return replace(base, reason=blocker)
    since = now if idle_since is None else idle_since
    held = now - since
    if held < settings.scale_in_hold:
        reason = f"idle for {held:.1f}s of {settings.scale_in_hold:g}s hold"
        return replace(base, reason=reason, idle_since=since)
    reason = (
        f"idle for {held:.1f}s: lag {_fmt_lag(lag)} <= {settings.idle_lag}, "
        f"output/input {_fmt_ratio(ratio)}"
    )
    return replace(base, verdict=Verdict.HAS_TOO_MANY, reason=reason, idle_since=since)


def _needs_more(
    ratio: float | None, lag: int | None, slope: float | None, input_rate: float,
    consumed_rate: float, settings: InputOutputSettings,
) -> str | None:
    """Why the stage needs more instances, or None.

    The output/input ratio alone cannot tell a slow stage from one that filters
    (a stage that passes on 10% of its input has a ratio of 0.1 at any speed),
    so a low ratio counts only while messages wait: a lag above ``idle_lag``, or,
    when the lag is unknown, a stage that reads under
    ``input_output_ratio_threshold`` of what arrives. Unknown lag is never taken
    as "messages waiting" by itself: that scaled a filtering stage whose group
    lag could not be read to ``max_instance`` and kept it there.
    """
    growth_floor = max(settings.lag_growth_min, 0.05 * input_rate)
    if slope is not None and lag is not None and lag > settings.idle_lag and slope > growth_floor:
        return f"lag growing {slope:.1f}/s (now {lag})"
    threshold = settings.input_output_ratio_threshold
    if lag is None:
        waiting = input_rate > _NO_INPUT and consumed_rate < threshold * input_rate
    else:
        waiting = lag > settings.idle_lag
    if ratio is not None and ratio < settings.input_output_ratio_threshold and waiting:
        return (
            f"output/input {ratio:.2f} < {settings.input_output_ratio_threshold:g} "
            f"with lag {_fmt_lag(lag)}"
        )
    return None


def _scale_in_blocker(
    latest: StageSample, ratio: float | None, output_rate: float, lag: int | None,
    settings: InputOutputSettings,
) -> str | None:
    if lag is not None and lag > settings.idle_lag:
        return f"lag {lag} > idle_lag {settings.idle_lag}"
    if ratio is not None and ratio < settings.scale_in_ratio:
        return f"output/input {ratio:.2f} < scale_in_ratio {settings.scale_in_ratio:g}"
    if ratio is None and lag is None and output_rate > 0:
        return "draining a backlog of unknown size"
    if latest.busy is not None and latest.live > 1:
        projected = latest.busy / (latest.live - 1)
        if projected > settings.scale_in_utilization:
            return (
                f"{latest.live - 1} instance(s) would be {projected:.0%} busy "
                f"> {settings.scale_in_utilization:.0%}"
            )
    return None


def _fmt_lag(lag: int | None) -> str:
    return "unknown" if lag is None else str(lag)


def _fmt_ratio(ratio: float | None) -> str:
    return "n/a (no input)" if ratio is None else f"{ratio:.2f}"


@dataclass
class StageTracker:
    """The samples of one stage and the state ``assess`` carries between calls."""

    settings: InputOutputSettings
    samples: deque[StageSample] = field(default_factory=deque)
    changed_at: float = float("-inf")
    live: int = -1
    idle_since: float | None = None
    last: Assessment = field(
        default_factory=lambda: Assessment(Verdict.UNKNOWN, "no samples yet")
    )

    def add(self, sample: StageSample) -> Assessment:
        if sample.live != self.live:
            # Samples from another instance count describe another system.
            self.live = sample.live
            self.changed_at = sample.at
        self.samples.append(sample)
        start = max(sample.at - self.settings.window_seconds, self.changed_at)
        while self.samples and self.samples[0].at < start:
            self.samples.popleft()
        self.last = assess(self.samples, sample.at, self.settings, self.idle_since)
        self.idle_since = self.last.idle_since
        return self.last


class InputOutputWorker(BaseWorker):
    """Samples every consuming stage and keeps its latest :class:`Assessment`."""

    name = "input_output"

    def __init__(
        self,
        registry: InstanceRegistry,
        settings: InputOutputSettings | None = None,
        lag_reader: LagReader | None = None,
        lag_timeout: float = 5.0,
    ) -> None:
        self.settings = settings or InputOutputSettings()
        self._registry = registry
        self._lag_reader = lag_reader
        self._lag_timeout = lag_timeout
        self._trackers: dict[StageKey, StageTracker] = {}
        self._groups: dict[StageKey, str] = {}
        self._lags: dict[StageKey, tuple[float, int | None]] = {}
        self._last_sample: float | None = None
        self._lag_task: asyncio.Task[None] | None = None
        self._watched: set[StageKey] = set()

    def watch(self, stage: StageKey, group_id: str | None) -> None:
        """Assess ``stage`` even before any instance of it is live."""
        self._watched.add(stage)
        self._trackers.setdefault(stage, StageTracker(self.settings))
        if group_id:
            self._groups[stage] = group_id

    def unwatch(self, stage: StageKey) -> None:
        """Stop assessing ``stage`` unless instances of it are live."""
        self._watched.discard(stage)
        self._groups.pop(stage, None)
        self._lags.pop(stage, None)

    async def start(self) -> None:
        if self._lag_reader is not None:
            self._lag_task = asyncio.create_task(self._poll_lags(), name="lag-poller")

    async def stop(self) -> None:
        if self._lag_task is not None:
            self._lag_task.cancel()
            await asyncio.gather(self._lag_task, return_exceptions=True)

    async def _poll_lags(self) -> None:
        # Beside tick(), not inside it: an admin round trip must not delay decisions.
        while True:
            await self.refresh_lags(time.monotonic())
            await asyncio.sleep(self.settings.refresh_rate_second)

    async def refresh_lags(self, now: float) -> None:
        """Read every watched stage's group lag from the broker, concurrently."""
        reader = self._lag_reader
        if reader is None:
            return
        stages = [(s, g) for s, g in self._stage_groups().items() if s[0] is not None]

        async def one(stage: StageKey, group: str) -> None:
            try:
                lag = await asyncio.wait_for(reader(group, stage[0] or ""), self._lag_timeout)
            except Exception as exc:
                log.debug("lag of %s unavailable: %r", stage_name(stage), exc)
                lag = None
            self._lags[stage] = (now, lag)

        await asyncio.gather(*(one(s, g) for s, g in stages))

    def _stage_groups(self) -> dict[StageKey, str]:
        groups = dict(self._groups)
        for stage in self._registry.stages():
            if stage[0] is None or stage in groups:
                continue
            for record in self._registry.instances(stage):
                if record.group_id:
                    groups[stage] = record.group_id
                    break
        return groups

    async def tick(self, now: float) -> None:
        if self._last_sample is not None and now - self._last_sample < (
            self.settings.refresh_rate_second
        ):
            return
        self._last_sample = now
        self.sample(now)

    def sample(self, now: float) -> None:
        """Take one sample of every consuming stage and re-assess it."""
        topics = self._registry.topic_rates()
        live_stages = set(self._registry.stages())
        for stage in live_stages:
            if stage[0] is not None:
                self._trackers.setdefault(stage, StageTracker(self.settings))
        for stage in [s for s in self._trackers if s not in live_stages | self._watched]:
            del self._trackers[stage]
        for stage, tracker in self._trackers.items():
            rates = self._registry.stage_rates(stage)
            arrival = topics[stage[0]].arrival if stage[0] in topics else None
            tracker.add(StageSample(
                at=now, arrival=arrival,
                output=rates.produced if stage[1] is not None else rates.consumed,
                consumed=rates.consumed, lag=self._fresh_lag(stage, now), busy=rates.busy,
                live=rates.live,
            ))

    def _fresh_lag(self, stage: StageKey, now: float) -> int | None:
        entry = self._lags.get(stage)
        if entry is None or now - entry[0] > 3 * self.settings.refresh_rate_second + 1:
            return None
        return entry[1]

    def assessment(self, stage: StageKey) -> Assessment | None:
        tracker = self._trackers.get(stage)
        return tracker.last if tracker else None

    def status(self) -> InputOutputStatus:
        return InputOutputStatus({stage_name(s): t.last for s, t in sorted(
            self._trackers.items(), key=lambda item: stage_name(item[0]))})
