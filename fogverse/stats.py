"""Per-stage counters and timings, readable in-process and optionally as CSV."""

from __future__ import annotations

import csv
import io
import time
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["STEPS", "LatencyWindow", "ProfilingCsv", "StageStats", "StepHistograms"]

STEPS: tuple[str, ...] = ("decode", "process", "encode", "send")


class LatencyWindow:
    """The most recent end-to-end latencies, for percentiles."""

    def __init__(self, size: int = 100_000) -> None:
        self._samples: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._samples.append(seconds)

    def __len__(self) -> int:
        return len(self._samples)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100) in seconds, or None with no samples."""
        if not self._samples:
            return None
        ordered = sorted(self._samples)
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]


STEP_BUCKETS: tuple[float, ...] = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
"""Upper bounds (seconds) of the step-latency buckets: a pass-through step takes
microseconds, a model's process() seconds."""


class StepHistograms:
    """Per-message time of each step, counted into fixed buckets.

    Only counts, on the stage's own thread: an observation is a C bisect and an
    increment, and the scrape (another thread) reads the lists as they are. The
    sums are the stage's ``step_seconds``, which the path keeps anyway.
    """

    def __init__(self, bounds: tuple[float, ...] = STEP_BUCKETS) -> None:
        self.bounds = bounds
        self.counts: list[list[int]] = [[0] * (len(bounds) + 1) for _ in STEPS]
        """Per step (STEPS order), per bucket; the last bucket is above every bound."""

    def observe(self, step: int, seconds: float) -> None:
        self.counts[step][bisect_left(self.bounds, seconds)] += 1

    def observe_steps(self, decode: float, process: float, encode: float, send: float) -> None:
        """One message's four step times at once (the plain path's one call per message)."""
        bounds, (d, p, e, s) = self.bounds, self.counts
        d[bisect_left(bounds, decode)] += 1
        p[bisect_left(bounds, process)] += 1
        e[bisect_left(bounds, encode)] += 1
        s[bisect_left(bounds, send)] += 1


@dataclass
class StageStats:
    """What a stage did since it started. Timings are cumulative seconds."""

    consumed: int = 0
    produced: int = 0
    acked: int = 0
    dead_lettered: int = 0
    skipped: int = 0
    errors: int = 0
    commits: int = 0
    step_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STEPS, 0.0))
    latency: LatencyWindow = field(default_factory=LatencyWindow)
    started_at: float = field(default_factory=time.monotonic)
    first_input_at: float | None = None
    """Monotonic time the first input arrived: throughput excludes start-up."""
    last_output_at: float | None = None
    lag: int | None = None
    """Messages in the assigned partitions not read yet, as last measured (with metrics on)."""
    step_histograms: StepHistograms | None = None
    """Per-message step times, kept only while the stage serves metrics."""

    def snapshot(self) -> dict[str, object]:
        """A plain dict for logs, heartbeats and status pages."""
        p50 = self.latency.percentile(50)
        p99 = self.latency.percentile(99)
        return {
            "consumed": self.consumed,
            "produced": self.produced,
            "acked": self.acked,
            "dead_lettered": self.dead_lettered,
            "skipped": self.skipped,
            "errors": self.errors,
            "commits": self.commits,
            "step_seconds": dict(self.step_seconds),
            "latency_p50_ms": None if p50 is None else p50 * 1000,
            "latency_p99_ms": None if p99 is None else p99 * 1000,
            "uptime_s": time.monotonic() - self.started_at,
        }


PROFILE_COLUMNS = (
    "wall_time", "topic", "partition", "offset",
    "decode_ms", "process_ms", "encode_ms", "send_ms", "e2e_ms",
)


class ProfilingCsv:
    """FogVerse-style profiling rows, one per message, buffered in memory.

    Written in blocks so a busy stage does not pay a file write per message.
    """

    def __init__(self, path: str, flush_every: int = 1000) -> None:
        self._file: TextIO = open(path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)
        self._rows = 0
        self._flush_every = flush_every
        if self._file.tell() == 0:
            self._writer.writerow(PROFILE_COLUMNS)

    def row(self, values: tuple[object, ...]) -> None:
        self._writer.writerow(values)
        self._rows += 1
        if self._rows >= self._flush_every:
            self.flush()

    def flush(self) -> None:
        self._file.write(self._buffer.getvalue())
        self._file.flush()
        self._buffer.seek(0)
        self._buffer.truncate()
        self._rows = 0

    def close(self) -> None:
        self.flush()
        self._file.close()
