"""What a rollout is: its strategy, its settings, and the record the state topic keeps.

Plain data only; the decisions are :mod:`master.rollout.decide`, the health
verdicts :mod:`master.rollout.health`, the actions :mod:`master.rollout.worker`.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields
from typing import Any

from deploy_scripts.version import ServiceVersion
from fogverse.errors import ConfigError

__all__ = ["TERMINAL", "Phase", "Rollout", "RolloutSettings", "Strategy"]


class Strategy(enum.StrEnum):
    ROLLING = "rolling"
    CANARY = "canary"
    BLUE_GREEN = "blue-green"

    @classmethod
    def parse(cls, value: object) -> Strategy:
        text = str(value).strip().lower().replace("_", "-")
        try:
            return cls(text)
        except ValueError:
            raise ConfigError("strategy", value,
                              f"expected one of {', '.join(s.value for s in cls)}") from None


class Phase(enum.StrEnum):
    STARTING = "starting"
    """Starting the current step's new instances and waiting for their heartbeats."""
    WATCHING = "watching"
    """Every new instance beats; judging their health for the step's window."""
    PAUSED = "paused"
    """Between two rolling batches."""
    ROLLING_BACK = "rolling_back"
    DONE = "done"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    """Unhealthy with ``rollback_on_failure`` off: left as it is, said loudly."""


TERMINAL = frozenset({Phase.DONE, Phase.ROLLED_BACK, Phase.FAILED})


@dataclass(frozen=True)
class RolloutSettings:
    """``rollout_config`` in the master's config. Times are seconds.

    The defaults suit stages that heartbeat every second: a window spans several
    beats, long enough for a crash loop or a dead-letter storm to show, short
    enough that a rollout of a few instances takes a minute, not an hour.
    """

    max_concurrent_deployments: int = 1
    """Instances replaced per rolling batch (seed 001's name)."""
    batch_pause: float = 5.0
    """Rolling: the pause after a batch's old instances stopped, before the next batch."""
    canary_fraction: float = 0.1
    """Canary: the share of instances moved first (at least one)."""
    canary_window: float = 30.0
    """Canary: how long the first instances are watched before the rest follow."""
    health_window: float = 10.0
    """Every other step (a rolling batch, the canary's rest, blue-green's new set)."""
    start_timeout: float = 60.0
    """A new instance with no heartbeat this long after its deploy failed to start."""
    max_dead_letter_increase: float = 0.05
    """Unhealthy when the new version dead-letters a larger share of its input than the
    old one did in the same window by more than this (0.05: five points)."""
    min_output_ratio: float = 0.5
    """Unhealthy when the new version's output/input ratio falls under this fraction
    of the old one's in the same window (a stage that swallows its input)."""
    min_sample: int = 20
    """Messages a new instance must have consumed before rates judge it."""
    rollback_on_failure: bool = True
    """A bad verdict stops the new instances and brings the old version back; off: the
    rollout stops where it is (``failed``) and says why."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type in ("float", "int") and (isinstance(value, bool)
                                               or not isinstance(value, int | float)
                                               or not math.isfinite(value) or value < 0):
                raise ConfigError(f"rollout_config.{f.name}", value, "expected a number >= 0")
        if self.max_concurrent_deployments < 1:
            raise ConfigError("rollout_config.max_concurrent_deployments",
                              self.max_concurrent_deployments, "expected at least 1")
        if not 0 < self.canary_fraction <= 1:
            raise ConfigError("rollout_config.canary_fraction", self.canary_fraction,
                              "expected a share in (0, 1]")
        if self.start_timeout <= 0:
            raise ConfigError("rollout_config.start_timeout", self.start_timeout,
                              "expected a positive number of seconds")

    @classmethod
    def from_config(cls, raw: object) -> RolloutSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise ConfigError("rollout_config", raw, "expected a table")
        known = {f.name for f in fields(cls)}
        for key in raw:
            if key not in known:
                raise ConfigError(f"rollout_config.{key}", raw[key],
                                  f"unknown setting; known: {', '.join(sorted(known))}")
        return cls(**raw)


@dataclass(frozen=True)
class Rollout:
    """One rollout of one service, as the state topic keeps it.

    ``target`` is how many instances run at the end (the number live when it
    began, at least one). ``step`` indexes the strategy's steps
    (:func:`master.rollout.plan.steps`); ``since`` is the wall-clock time the
    phase began, so a restarted master knows how long it has been going.
    """

    rollout_id: str
    service: str
    stage: tuple[str, str | None]
    strategy: Strategy
    old: ServiceVersion
    new: ServiceVersion
    target: int
    phase: Phase = Phase.STARTING
    step: int = 0
    reason: str = ""
    started_at: float = 0.0
    since: float = 0.0
    history: tuple[str, ...] = field(default_factory=tuple)
    """Each verdict and phase change, with its reason (the last 20)."""

    @property
    def active(self) -> bool:
        return self.phase not in TERMINAL

    @property
    def current(self) -> ServiceVersion:
        """The version the service runs once this rollout is settled (or where it is ahead)."""
        return self.old if self.phase in (Phase.ROLLED_BACK, Phase.ROLLING_BACK) else self.new

    def to_body(self) -> dict[str, Any]:
        return {"id": self.rollout_id, "service": self.service, "source": self.stage[0],
                "target_topic": self.stage[1], "strategy": self.strategy.value,
                "old": self.old.to_record(), "new": self.new.to_record(),
                "target": self.target, "phase": self.phase.value, "step": self.step,
                "reason": self.reason, "started_at": self.started_at, "since": self.since,
                "history": list(self.history)}

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Rollout:
        """A rollout from a stored body; ValueError (ConfigError) naming a bad field."""
        target, step = body.get("target"), body.get("step")
        for name, value in (("target", target), ("step", step)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
                raise ConfigError(f"rollout.{name}", value, "expected a count")
        source, target_topic = body.get("source"), body.get("target_topic")
        if not isinstance(source, str) or not (target_topic is None
                                               or isinstance(target_topic, str)):
            raise ConfigError("rollout.source", source, "expected topic names")
        history = body.get("history") or []
        if not isinstance(history, list):
            raise ConfigError("rollout.history", history, "expected a list")
        try:
            phase = Phase(str(body.get("phase")))
        except ValueError:
            raise ConfigError("rollout.phase", body.get("phase"), "unknown phase") from None
        return cls(
            rollout_id=_text(body, "id"), service=_text(body, "service"),
            stage=(source, target_topic), strategy=Strategy.parse(body.get("strategy")),
            old=ServiceVersion.from_record(body.get("old"), where="rollout.old"),
            new=ServiceVersion.from_record(body.get("new"), where="rollout.new"),
            target=int(target),  # type: ignore[arg-type]
            phase=phase, step=int(step),  # type: ignore[arg-type]
            reason=str(body.get("reason") or "")[:1024],
            started_at=_number(body, "started_at"), since=_number(body, "since"),
            history=tuple(str(h)[:1024] for h in history[-20:]),
        )


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= 256:
        raise ConfigError(f"rollout.{name}", value, "expected a name")
    return value


def _number(body: dict[str, Any], name: str) -> float:
    value = body.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"rollout.{name}", value, "expected a number")
    return float(value)
