"""When to scale a stage out or in: :func:`decide`, its inputs and its decisions.

Pure: the same :class:`ScaleInputs` always give the same :class:`Decision`, so
the rules are checked by a table of cases. The master gathers the inputs and
carries the decisions out (``master.deployer``).

Rules, in order (the first that applies wins):

1. an action is still running -> hold;
2. the master has just started and is still learning who is alive -> hold;
3. less than ``deploy_delay`` since the last action finished -> hold;
4. fewer instances (live + starting) than ``min_instance`` -> scale out;
5. more than ``max_instance`` -> scale in;
6. an instance deployed but not heartbeating yet -> hold;
7. less than ``after_heartbeat_delay`` since an instance appeared -> hold;
8. the source topic's rate is a spike -> hold;
9. NEEDS_MORE -> scale out unless at ``max_instance``;
   HAS_TOO_MANY -> scale in unless at ``min_instance``;
10. otherwise hold.

A scale-out is also held while the stage backs off after instances that never
started or deploys that failed (``backoff_until``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Action", "Decision", "Demand", "DeployerSettings", "ScaleInputs", "decide"]


class Action(enum.StrEnum):
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"
    HOLD = "hold"


class Demand(enum.StrEnum):
    """What the stage's load says, as the input/output assessment words it."""

    NEEDS_MORE = "needs_more"
    HAS_TOO_MANY = "has_too_many"
    STEADY = "steady"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class DeployerSettings:
    """FogVerse's ``auto_deployer_config`` plus our start-up knobs (seconds)."""

    deploy_delay: float = 5.0
    after_heartbeat_delay: float = 3.0
    start_timeout: float = 30.0
    """An instance that has not heartbeated this long after its deploy is stopped."""
    startup_grace: float = 3.0
    """After the master starts, time to hear from instances already running."""
    partitions_ahead: bool = True
    """Give a planned stage's source topic ``max_instance`` partitions while it is
    still idle, instead of one more at each scale-out. A scale-out under load is
    then only a member joining: the new member's partitions already hold data,
    whereas a partition added at that moment stays empty until producers refresh
    their metadata (5 s by default), and growing a topic under a backlogged
    KIP-848 member pauses it for up to a second. Off: the fewest partitions."""

    def __post_init__(self) -> None:
        if min(self.deploy_delay, self.after_heartbeat_delay, self.startup_grace) < 0:
            raise ValueError(f"auto_deployer_config delays must be >= 0, got {self}")
        if self.start_timeout <= 0:
            raise ValueError("start_timeout must be positive")


@dataclass(frozen=True, slots=True)
class ScaleInputs:
    """Everything :func:`decide` looks at for one stage at time ``now``."""

    now: float
    live: int
    min_instance: int
    max_instance: int
    verdict: Demand = Demand.UNKNOWN
    verdict_reason: str = ""
    starting: int = 0
    stoppable: int = 0
    """Live instances this master started and can stop."""
    spike: bool = False
    spike_z: float | None = None
    last_action_at: float | None = None
    last_appeared_at: float | None = None
    busy: bool = False
    learning_until: float = float("-inf")
    backoff_until: float = float("-inf")
    """No scale-out before this: recent instances never started."""
    backoff_reason: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    code: str
    """A stable label for the rule that decided (for logs, metrics and tests)."""
    reason: str
    target: int
    """Instances (live + starting) once the action is done."""


def decide(x: ScaleInputs, s: DeployerSettings) -> Decision:
    """What to do for one stage now. Pure: the same inputs give the same decision."""
    d = _decide(x, s)
    if d.action is Action.SCALE_OUT and x.now < x.backoff_until:
        left = x.backoff_until - x.now
        return Decision(Action.HOLD, "start_backoff",
                        f"{d.reason}, but backing off {left:.0f}s more: {x.backoff_reason}",
                        x.live + x.starting)
    return d


def _decide(x: ScaleInputs, s: DeployerSettings) -> Decision:
    count = x.live + x.starting

    def hold(code: str, reason: str) -> Decision:
        return Decision(Action.HOLD, code, reason, count)

    if x.busy:
        return hold("busy", "an action is still running")
    if x.now < x.learning_until:
        return hold("learning", "master just started: learning which instances are alive")
    if x.last_action_at is not None and x.now - x.last_action_at < s.deploy_delay:
        left = s.deploy_delay - (x.now - x.last_action_at)
        return hold("deploy_delay", f"{left:.1f}s of deploy_delay left")
    if count < x.min_instance:
        return Decision(Action.SCALE_OUT, "below_min",
                        f"{count} instance(s) < min_instance {x.min_instance}", count + 1)
    if count > x.max_instance and x.stoppable:
        return Decision(Action.SCALE_IN, "above_max",
                        f"{count} instance(s) > max_instance {x.max_instance}", count - 1)
    if x.starting:
        return hold("starting", f"waiting for {x.starting} starting instance(s) to heartbeat")
    if x.last_appeared_at is not None and x.now - x.last_appeared_at < s.after_heartbeat_delay:
        left = s.after_heartbeat_delay - (x.now - x.last_appeared_at)
        return hold("after_heartbeat_delay", f"{left:.1f}s of after_heartbeat_delay left")
    if x.spike:
        z = "" if x.spike_z is None else f" (z={x.spike_z:.2f})"
        return hold("spike", f"input rate is a spike{z}; waiting to see if it lasts")
    return _by_demand(x, count, hold)


def _by_demand(x: ScaleInputs, count: int, hold: Callable[[str, str], Decision]) -> Decision:
    if x.verdict is Demand.NEEDS_MORE:
        if count >= x.max_instance:
            return hold("at_max", f"{x.verdict_reason}, but at max_instance {x.max_instance}")
        return Decision(Action.SCALE_OUT, "needs_more", x.verdict_reason, count + 1)
    if x.verdict is Demand.HAS_TOO_MANY:
        if count <= x.min_instance:
            return hold("at_min", f"{x.verdict_reason}, but at min_instance {x.min_instance}")
        if not x.stoppable:
            return hold("no_handle", "idle, but no live instance was started by this master")
        return Decision(Action.SCALE_IN, "too_many", x.verdict_reason, count - 1)
    return hold(x.verdict.value, x.verdict_reason or x.verdict.value)
