"""What the demo saw, second by second, and the summary it ends with.

Pure bookkeeping (no Kafka, no clock of its own): the runner feeds it samples,
it says what changed (an instance started on a node, one stopped) and, at the
end, adds it up. The summary's numbers come from what happened, never from
what was planned: instances from the placements the provider reported,
throughput from the sink's arrivals, losses from the sink's ids.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "Sample", "Timeline"]

SETTLE_S = 3.0
"""After the instance count or the step changes, rates of these seconds don't count (the
group rebalances; the rate over the last second still shows the step before)."""


@dataclass(frozen=True)
class Sample:
    t: float
    """Seconds since the demo began."""
    phase: str
    camera_rate: float
    """Frames/s the camera is set to."""
    produced: int
    received: int
    """Distinct frame ids the sink has seen."""
    analysed_rate: float
    """Results/s arriving at the sink over the last second."""
    live: int
    """Instances heartbeating to the master."""
    placement: Mapping[str, str]
    """Instance id -> node, as the AGENT provider placed them."""
    lag: int | None = None


@dataclass(frozen=True)
class Event:
    t: float
    text: str


@dataclass
class Timeline:
    min_instance: int
    samples: list[Sample] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    started_on: dict[str, list[str]] = field(default_factory=dict)
    """Node -> every instance id that ever started there, in order."""

    def add(self, sample: Sample) -> list[Event]:
        """Record ``sample``; the instance starts, stops and moves since the last one."""
        before = self.samples[-1].placement if self.samples else {}
        after = sample.placement
        new: list[Event] = []
        for instance, node in sorted(after.items()):
            if before.get(instance) == node:
                continue
            self.started_on.setdefault(node, []).append(instance)
            verb = f"moved from {before[instance]} to" if instance in before else "started on"
            new.append(Event(sample.t, f"{instance} {verb} {node} ({len(after)} running)"))
        for instance in sorted(set(before) - set(after)):
            new.append(Event(sample.t, f"{instance} stopped on {before[instance]} "
                                       f"({len(after)} running)"))
        self.samples.append(sample)
        self.events.extend(new)
        return new

    def note(self, t: float, text: str) -> Event:
        event = Event(t, text)
        self.events.append(event)
        return event

    # -- the summary -------------------------------------------------------------------

    def instance_steps(self) -> list[tuple[float, int]]:
        """(t, instances) at every change of the instance count."""
        steps: list[tuple[float, int]] = []
        for s in self.samples:
            if not steps or steps[-1][1] != len(s.placement):
                steps.append((round(s.t, 1), len(s.placement)))
        return steps

    def scale_counts(self) -> tuple[int, int]:
        """(scale-outs, scale-ins): steps of the instance count once ``min_instance`` ran."""
        outs = ins = 0
        reached_min = False
        for (_, before), (_, after) in zip(self.instance_steps(), self.instance_steps()[1:],
                                           strict=False):
            reached_min = reached_min or before >= self.min_instance
            if reached_min and after > before:
                outs += after - before
            elif reached_min and after < before:
                ins += before - after
        return outs, ins

    def throughput(self, phase: str) -> tuple[float | None, float | None]:
        """Mean results/s in ``phase`` with one instance, and with the most it had.

        Seconds right after a change of the instance count (the group rebalancing)
        or of the step are left out.
        """
        settled = self._settled(phase)
        if not settled:
            return None, None
        peak = max(s.live for s in settled)
        return (_mean([s.analysed_rate for s in settled if s.live == 1]),
                _mean([s.analysed_rate for s in settled if s.live == peak and peak > 1]))

    def _settled(self, phase: str) -> list[Sample]:
        out = []
        changed_at = float("-inf")
        previous: tuple[int, str] | None = None
        for s in self.samples:
            # A new step's first second still shows the old rate: it settles too.
            if (s.live, s.phase) != previous:
                changed_at, previous = s.t, (s.live, s.phase)
            if s.phase == phase and s.t - changed_at >= SETTLE_S:
                out.append(s)
        return out

    def summary(self, produced: int, missing: list[int], duplicates: int,
                load_phase: str) -> dict[str, Any]:
        outs, ins = self.scale_counts()
        before, after = self.throughput(load_phase)
        return {
            "seconds": round(self.samples[-1].t, 1) if self.samples else 0.0,
            "scaled_out": outs,
            "scaled_in": ins,
            "peak_instances": max((len(s.placement) for s in self.samples), default=0),
            "throughput_before": before,
            "throughput_after": after,
            "instances_over_time": [list(step) for step in self.instance_steps()],
            "ran_on": {node: len(ids) for node, ids in sorted(self.started_on.items())},
            "produced": produced,
            "delivered": produced - len(missing),
            "lost": len(missing),
            "duplicates": duplicates,
        }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 1) if values else None
