"""The steps of each strategy: how many new instances run after each, and how long
each is watched before the old ones it replaces stop.

Every strategy is the same loop over its steps: start new instances up to the
step's count, wait until each heartbeats, watch them for the step's window, and
only then stop as many old ones (a replacement is consuming before what it
replaces drains and stops). So a failed check never finds fewer old instances
than the steps before it left running.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from master.rollout.model import RolloutSettings, Strategy

__all__ = ["Step", "steps"]


@dataclass(frozen=True, slots=True)
class Step:
    new: int
    """New-version instances running once the step is through."""
    window: float
    """Seconds every one of them is watched before old ones stop."""
    pause: float = 0.0
    """Seconds to wait after the step's old instances stopped (rolling batches)."""


def steps(strategy: Strategy, target: int, settings: RolloutSettings) -> list[Step]:
    """The steps that take ``target`` instances from the old version to the new."""
    target = max(1, target)
    if strategy is Strategy.BLUE_GREEN:
        return [Step(target, settings.health_window)]
    if strategy is Strategy.CANARY:
        first = min(target, max(1, math.ceil(target * settings.canary_fraction)))
        out = [Step(first, settings.canary_window)]
        if first < target:
            out.append(Step(target, settings.health_window))
        return out
    batch = settings.max_concurrent_deployments
    counts = [*range(batch, target, batch), target]
    return [Step(n, settings.health_window, settings.batch_pause if n < target else 0.0)
            for n in counts]
