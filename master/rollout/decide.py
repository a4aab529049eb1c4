"""The rollout's next move, from its record and what the master sees now. Pure.

One function, :func:`advance`, walks a :class:`~master.rollout.model.Rollout`
through the steps of its strategy (:mod:`master.rollout.plan`): start the
step's new instances, wait for their heartbeats, watch them, stop as many old
ones, and on to the next step. A bad verdict turns it round: every new instance
stops and the old version is brought back to the rollout's target count.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass

from master.rollout.health import Health, NewInstance, Verdict
from master.rollout.model import Phase, Rollout, RolloutSettings
from master.rollout.plan import steps

__all__ = ["Act", "Move", "View", "advance"]


class Act(enum.StrEnum):
    WAIT = "wait"
    START_NEW = "start_new"
    START_OLD = "start_old"
    STOP = "stop"


@dataclass(frozen=True, slots=True)
class Move:
    act: Act
    reason: str
    count: int = 0
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class View:
    """What the master sees of the rollout's stage now."""

    wall: float
    """Wall-clock epoch seconds (phase times are stored in wall time: they survive restarts)."""
    old: tuple[str, ...]
    """Old-version instances this master runs, the one to stop first first."""
    new: tuple[NewInstance, ...]
    verdict: Verdict
    busy: bool = False
    """An action on the stage is still running."""
    ceiling: int | None = None
    """The stage's max_instance: a rollback brings back no more old instances than this."""


def advance(r: Rollout, view: View, settings: RolloutSettings) -> tuple[Rollout, Move]:
    """The rollout's record after this look, and what to do now."""
    if not r.active:
        return r, Move(Act.WAIT, f"rollout {r.phase.value}")
    if view.busy:
        return r, Move(Act.WAIT, "an action on the stage is still running")
    if r.phase is Phase.ROLLING_BACK:
        return _roll_back(r, view)
    if view.verdict.bad:
        if settings.rollback_on_failure:
            return _to(r, Phase.ROLLING_BACK, view, f"rolling back: {view.verdict.reason}"), \
                Move(Act.WAIT, view.verdict.reason)
        return _to(r, Phase.FAILED, view, f"unhealthy, left as is (rollback_on_failure off):"
                                          f" {view.verdict.reason}"), \
            Move(Act.WAIT, view.verdict.reason)
    plan = steps(r.strategy, r.target, settings)
    index = min(r.step, len(plan) - 1)
    step = plan[index]
    if r.phase is Phase.STARTING:
        missing = step.new - len(view.new)
        if missing > 0:
            return r, Move(Act.START_NEW, f"step {index + 1}/{len(plan)}: {step.new} new"
                                          f" instance(s) wanted, {len(view.new)} run",
                           count=missing)
        if all(i.beating for i in view.new):
            return _to(r, Phase.WATCHING, view, f"step {index + 1}/{len(plan)}: "
                                                f"{len(view.new)} new instance(s) beat;"
                                                f" watching them {step.window:g}s"), \
                Move(Act.WAIT, "watching")
        return r, Move(Act.WAIT, view.verdict.reason)
    if r.phase is Phase.WATCHING:
        if view.verdict.health is not Health.HEALTHY:
            return r, Move(Act.WAIT, view.verdict.reason)
        keep = max(0, r.target - step.new)
        if len(view.old) > keep:
            doomed = view.old[:len(view.old) - keep]
            return r, Move(Act.STOP, f"step {index + 1}/{len(plan)} healthy"
                                     f" ({view.verdict.reason}): stopping {len(doomed)} old"
                                     f" instance(s)", ids=doomed)
        if index + 1 >= len(plan):
            return _to(r, Phase.DONE, view, f"{r.new.name} runs on {len(view.new)} instance(s):"
                                            f" {view.verdict.reason}"), \
                Move(Act.WAIT, "done")
        if step.pause > 0:
            return _to(r, Phase.PAUSED, view, f"batch {index + 1}/{len(plan)} through;"
                                              f" pausing {step.pause:g}s"), \
                Move(Act.WAIT, "pause")
        return _next(r, view, index, len(plan))
    # PAUSED
    if view.wall - r.since < step.pause:
        return r, Move(Act.WAIT, f"pausing between batches, {step.pause:g}s")
    return _next(r, view, index, len(plan))


def _next(r: Rollout, view: View, index: int, count: int) -> tuple[Rollout, Move]:
    moved = _to(r, Phase.STARTING, view, f"step {index + 2}/{count}")
    return dataclasses.replace(moved, step=index + 1), Move(Act.WAIT, "next step")


def _roll_back(r: Rollout, view: View) -> tuple[Rollout, Move]:
    if view.new:
        return r, Move(Act.STOP, f"rolling back: stopping {len(view.new)} instance(s) of"
                                 f" {r.new.name}", ids=tuple(i.instance_id for i in view.new))
    want = r.target if view.ceiling is None else min(r.target, view.ceiling)
    if len(view.old) < want:
        return r, Move(Act.START_OLD, f"rolling back: {len(view.old)} of {want} instance(s)"
                                      f" of {r.old.name} run", count=want - len(view.old))
    return _to(r, Phase.ROLLED_BACK, view, f"rolled back to {r.old.name}: {r.reason}"), \
        Move(Act.WAIT, "rolled back")


def _to(r: Rollout, phase: Phase, view: View, why: str) -> Rollout:
    history = (*r.history, f"{phase.value}: {why}")[-20:]
    return dataclasses.replace(r, phase=phase, since=view.wall, reason=why, history=history)
