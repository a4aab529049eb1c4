"""Health verdicts on a new version's instances, from what the master already sees.

Pure: counts come in, a verdict with a stable code and a sentence comes out.
The old version's counts over the same window are the baseline, so a stage that
always dead-letters a little is not judged against zero.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from master.rollout.model import RolloutSettings

__all__ = ["Counts", "Health", "NewInstance", "Verdict", "judge"]


class Health(enum.StrEnum):
    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNDECIDED = "undecided"


@dataclass(frozen=True, slots=True)
class Counts:
    """Messages over a window: in, out, dead-lettered."""

    consumed: int = 0
    produced: int = 0
    dead_lettered: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.consumed + other.consumed, self.produced + other.produced,
                      self.dead_lettered + other.dead_lettered)

    def dead_share(self) -> float:
        return self.dead_lettered / self.consumed if self.consumed else 0.0

    def output_ratio(self) -> float:
        return self.produced / self.consumed if self.consumed else 0.0


@dataclass(frozen=True, slots=True)
class NewInstance:
    """One instance of the new version as the rollout sees it."""

    instance_id: str
    started_at: float
    beating: bool = False
    """Its heartbeats arrive (bound and live)."""
    lost: str | None = None
    """Why it is gone, if it is: it crashed, stopped beating or never started."""
    counts: Counts = Counts()
    """Since the window began."""


@dataclass(frozen=True, slots=True)
class Verdict:
    health: Health
    code: str
    reason: str

    @property
    def bad(self) -> bool:
        return self.health is Health.UNHEALTHY


def judge(
    new: list[NewInstance], old: Counts, now: float, window_started: float | None,
    window: float, has_output: bool, settings: RolloutSettings,
) -> Verdict:
    """The verdict on ``new`` at ``now``; ``window_started`` None while some still start."""
    for inst in new:
        if inst.lost is not None:
            return Verdict(Health.UNHEALTHY, "crashed", f"{inst.instance_id}: {inst.lost}")
        if not inst.beating and now - inst.started_at > settings.start_timeout:
            return Verdict(Health.UNHEALTHY, "no_heartbeat",
                           f"{inst.instance_id} sent no heartbeat within "
                           f"{settings.start_timeout:g}s of its start")
    total = sum((i.counts for i in new), Counts())
    rates = _rates(total, old, has_output, settings)
    if rates is not None:
        return rates
    if window_started is None:
        waiting = sum(1 for i in new if not i.beating)
        return Verdict(Health.UNDECIDED, "starting", f"{waiting} new instance(s) not beating yet")
    left = window - (now - window_started)
    if left > 0:
        return Verdict(Health.UNDECIDED, "watching", f"watching {len(new)} new instance(s),"
                                                     f" {left:.0f}s left; {_said(total, old)}")
    if total.consumed == 0 and old.consumed > 0:
        # A replacement must be consuming before what it replaces stops.
        if -left > settings.start_timeout:
            return Verdict(Health.UNHEALTHY, "not_consuming",
                           f"the new instance(s) consumed nothing in {now - window_started:.0f}s"
                           f" while the old consumed {old.consumed}")
        return Verdict(Health.UNDECIDED, "not_consuming_yet",
                       f"the new instance(s) consume nothing yet; {_said(total, old)}")
    return Verdict(Health.HEALTHY, "healthy",
                   f"{len(new)} new instance(s) beat for {window:g}s; {_said(total, old)}")


def _rates(new: Counts, old: Counts, has_output: bool, settings: RolloutSettings) -> \
        Verdict | None:
    if new.consumed < settings.min_sample:
        return None
    if new.dead_share() > old.dead_share() + settings.max_dead_letter_increase:
        return Verdict(Health.UNHEALTHY, "dead_letters",
                       f"new version dead-lettered {new.dead_lettered}/{new.consumed}"
                       f" ({new.dead_share():.0%}) against the old version's "
                       f"{old.dead_lettered}/{old.consumed} ({old.dead_share():.0%})")
    if has_output and old.consumed >= settings.min_sample:
        floor = old.output_ratio() * settings.min_output_ratio
        if new.output_ratio() < floor:
            return Verdict(Health.UNHEALTHY, "low_output",
                           f"new version produced {new.produced} for {new.consumed} in"
                           f" (ratio {new.output_ratio():.2f}) against the old version's"
                           f" {old.output_ratio():.2f}; the floor is {floor:.2f}")
    return None


def _said(new: Counts, old: Counts) -> str:
    return (f"in/out/dead new {new.consumed}/{new.produced}/{new.dead_lettered},"
            f" old {old.consumed}/{old.produced}/{old.dead_lettered}")
