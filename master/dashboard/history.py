"""The dashboard's memory: one sample a second in a bounded ring, served as columns.

A sample is a handful of small charts, each a mapping of series name (a topic, a
stage, a node, a task state) to its value at that moment. Series come and go (a
stage appears, a node is lost): :meth:`DashboardHistory.columns` aligns them on
one time axis with ``None`` where a series had no value, which is what uPlot draws
as a gap.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CHARTS", "DashboardHistory", "Sample"]

CHARTS: tuple[str, ...] = (
    "throughput", "instances", "lag", "node_score", "node_free_cpu", "tasks",
)
"""The charts every sample carries, in the order the page shows them."""


@dataclass(frozen=True, slots=True)
class Sample:
    at: float
    """Wall-clock epoch seconds (the browser draws local time from it)."""
    charts: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """Chart name -> series name -> value; a series missing here has no value now."""


class DashboardHistory:
    """The last ``capacity`` samples, oldest first."""

    def __init__(self, capacity: int = 600) -> None:
        if capacity < 1:
            raise ValueError(f"dashboard history capacity must be at least 1, got {capacity}")
        self._samples: deque[Sample] = deque(maxlen=capacity)

    def __len__(self) -> int:
        return len(self._samples)

    def add(self, sample: Sample) -> None:
        if self._samples and sample.at < self._samples[-1].at:
            # A wall clock stepped back: the time axis must stay ordered for the charts.
            sample = Sample(self._samples[-1].at, sample.charts)
        self._samples.append(sample)

    def columns(self) -> dict[str, Any]:
        """``{"t": [...], "charts": {chart: {series: [value or None per t]}}}``.

        Every chart in :data:`CHARTS` is present, series sorted by name."""
        samples = list(self._samples)
        charts: dict[str, dict[str, list[float | None]]] = {}
        for chart in CHARTS:
            names = sorted({name for s in samples for name in s.charts.get(chart, {})})
            charts[chart] = {
                name: [s.charts.get(chart, {}).get(name) for s in samples] for name in names
            }
        return {"t": [s.at for s in samples], "charts": charts}
