"""The deployer's bookkeeping: which instances this master started, per stage.

An instance is *starting* from its deploy until a heartbeat names it, then
*bound* to that heartbeat's instance id. A bound instance whose heartbeats stop,
or a starting one that never heartbeats within ``start_timeout``, is forgotten
and its remains are stopped; a stop that fails keeps it in ``unstopped`` so it
is stopped again later. Plain data and plain methods: time comes in as ``now``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from deploy_scripts import DeployResult, ServiceVersion
from deploy_scripts.version import DECLARED_VERSION
from master.plans import StagePlan
from master.scheduling.autoscale import Decision
from workers.registry import InstanceRecord, stage_name

__all__ = ["MAX_BACKOFF", "Deployed", "StageState"]

log = logging.getLogger("fogverse.master.auto_deployer")

MAX_BACKOFF = 300.0
"""The longest wait between two attempts at something that keeps failing."""

_FORGOTTEN_KEPT = 50


@dataclass(eq=False)
class Deployed:
    """An instance this master started (or adopted after a restart)."""

    deploy_id: str
    result: DeployResult | None
    started_at: float
    live_id: str | None = None
    """The instance id its heartbeats carry, once one arrived."""
    stop_failures: int = 0
    retry_stop_at: float = float("-inf")
    version: str = DECLARED_VERSION
    """The name of the version it runs."""


@dataclass(eq=False)
class StageState:
    """One planned stage: its plan, its instances and what the deployer last did."""

    plan: StagePlan
    deployed: list[Deployed] = field(default_factory=list)
    unstopped: list[Deployed] = field(default_factory=list)
    """Dead or never-started instances whose stop failed: kept, and stopped again later."""
    last_action_at: float | None = None
    provisioned: bool = False
    provision_after: float = float("-inf")
    task: asyncio.Task[None] | None = None
    last: Decision | None = None
    start_failures: int = 0
    """Instances in a row that sent no heartbeat within start_timeout."""
    backoff_until: float = float("-inf")
    backoff_reason: str = ""
    scale_outs: int = 0
    """Scale-outs since a rollout last counted them (it grows its target by them)."""
    version: ServiceVersion | None = None
    """The version a scale-out starts; None: the service as declared."""
    hold_scale_in: str | None = None
    """Why no instance may be stopped for scale-in now (a rollout runs), if so."""
    rollout_target: int | None = None
    """While a rollout runs: how many instances the stage runs once it is through."""
    rollout_version: str = ""
    """While a rollout runs: the name of the version it rolls out."""
    forgotten: dict[str, str] = field(default_factory=dict)
    """Why instances were forgotten, by deploy id (the latest few)."""

    @property
    def name(self) -> str:
        return stage_name(self.plan.stage)

    @property
    def busy(self) -> bool:
        return self.task is not None and not self.task.done()

    def surplus(self, live: Mapping[str, InstanceRecord]) -> int:
        """Live old-version instances a rollout's new ones already stand in for: they
        still work, but they are on their way out, so scaling does not count them."""
        if self.rollout_target is None:
            return 0
        old = [d for d in self.deployed if d.version != self.rollout_version]
        live_old = sum(1 for d in old if d.live_id in live)
        return min(live_old, max(0, len(self.deployed) - self.rollout_target))

    def starting(self) -> int:
        return sum(1 for d in self.deployed if d.live_id is None)

    def stoppable(self) -> int:
        return sum(1 for d in self.deployed if d.live_id is not None and d.result)

    def bind(self, live: Mapping[str, InstanceRecord]) -> None:
        """Match starting instances with the heartbeats that name them.

        A heartbeat carrying the deploy id binds it; for a provider that cannot
        pass our id, a newcomer nobody claimed that appeared after the deploy.
        A binding ends the start backoff: the service does start.
        """
        bound = {d.live_id for d in self.deployed if d.live_id}
        was_bound = len(bound)
        for d in self.deployed:
            if d.live_id is None and d.deploy_id in live:
                d.live_id = d.deploy_id
                bound.add(d.deploy_id)
        for d in self.deployed:
            if d.live_id is None:
                newcomer = next((r for i, r in live.items()
                                 if i not in bound and r.first_seen >= d.started_at), None)
                if newcomer is not None:
                    d.live_id = newcomer.instance_id
                    bound.add(newcomer.instance_id)
        if self.start_failures and len(bound) > was_bound:
            log.info("%s: a started instance heartbeats; start backoff over", self.name)
            self.start_failures, self.backoff_until = 0, float("-inf")

    def lost(
        self, live: Mapping[str, InstanceRecord], now: float, start_timeout: float
    ) -> list[tuple[Deployed, str, bool]]:
        """Instances gone silent or never started: (instance, why, whether it never started)."""
        out = []
        for d in self.deployed:
            if d.live_id is not None and d.live_id not in live:
                out.append((d, f"instance {d.live_id} stopped heartbeating", False))
            elif d.live_id is None and now - d.started_at > start_timeout:
                out.append((d, f"instance {d.deploy_id} sent no heartbeat within "
                               f"start_timeout {start_timeout:g}s", True))
        return out

    def back_off(self, now: float, why: str, first: float) -> None:
        """One more start in a row failed: wait twice as long before the next.

        ``first`` is the first wait: ``start_timeout`` for an instance that never
        heartbeat, ``deploy_delay`` for a deploy that failed outright."""
        self.start_failures += 1
        delay = min(first * 2 ** (self.start_failures - 1), MAX_BACKOFF)
        self.backoff_until = now + delay
        self.backoff_reason = f"{self.start_failures} start(s) in a row failed; last: {why}"
        log.warning("%s: next start in %.0fs at the earliest (%s)", self.name, delay,
                    self.backoff_reason)

    def forget(self, d: Deployed, why: str) -> bool:
        """Stop counting ``d``; True when its remains must still be stopped."""
        log.warning("%s: %s; stopping what is left of it", self.name, why)
        self.deployed.remove(d)
        self.forgotten[d.deploy_id] = why
        while len(self.forgotten) > _FORGOTTEN_KEPT:
            del self.forgotten[next(iter(self.forgotten))]
        if d.result is None:
            return False
        self.unstopped.append(d)
        return True

    def newest_stoppable(self) -> Deployed | None:
        """The instance to stop on scale-in: the newest, unless its provider ranks them.

        A provider that places instances on scored nodes (AGENT) gives each result a
        ``scale_in_rank`` callable; the lowest rank (the worst node) stops first.
        """
        stoppable = [d for d in self.deployed if d.live_id and d.result]
        ranked = [d for d in stoppable if d.result and callable(d.result.info.get("scale_in_rank"))]
        if ranked:
            return min(ranked, key=lambda d: float(d.result.info["scale_in_rank"]()))  # type: ignore[union-attr]
        return stoppable[-1] if stoppable else None
