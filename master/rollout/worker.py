"""The ROLLOUT worker: carries rollouts out, one service at a time each.

Every tick it looks at each active rollout's stage through the auto-deployer's
own bookkeeping (which instance runs which version, which are bound to a
heartbeat, which were lost and why) and the instance registry (counts per
instance), judges the new version (:func:`master.rollout.health.judge`), asks
the pure :func:`master.rollout.decide.advance` what to do, and does it through
the deployer's actions in a task of the stage (so the auto-deployer holds while
it runs). Each change of phase is logged with its reason and stored in the
state topic, so a restarted master resumes the rollout or finishes rolling back.

While a rollout runs, scale-outs start the new version (it is ahead) and
scale-in holds; the instances it runs beyond its target do not count as
capacity.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from deploy_scripts import ServiceSpec, ServiceVersion
from master.deployer import AutoDeployer, Deployed, StageState
from master.rollout.decide import Act, Move, View, advance
from master.rollout.health import Counts, NewInstance, Verdict, judge
from master.rollout.model import Phase, Rollout, RolloutSettings, Strategy
from master.rollout.plan import steps
from workers.base import BaseWorker
from workers.registry import InstanceRecord, InstanceRegistry, stage_name

__all__ = ["RolloutRefusedError", "RolloutStatus", "RolloutWorker", "Validator"]

log = logging.getLogger("fogverse.master.rollout")

Validator = Callable[[ServiceSpec, ServiceVersion], str | None]
"""``validate(service, version)``: why no node can take the version, or None."""


class RolloutRefusedError(ValueError):
    """A rollout that will not start; the message says why and what to change."""


@dataclass
class _Watch:
    """What the current window started from: counter snapshots, by instance id."""

    started: float | None = None
    base: dict[str, Counts] = field(default_factory=dict)
    new_ids: set[str] = field(default_factory=set)
    failed: str | None = None
    """Why the last start of a new instance failed outright, if it did."""
    retry_at: float = float("-inf")
    """No action before this (monotonic): the last one failed."""
    said: str = ""


@dataclass(frozen=True, slots=True)
class RolloutStatus:
    """One rollout as /status shows it."""

    service: str
    stage: str
    strategy: str
    old: str
    new: str
    phase: str
    step: int
    steps: int
    target: int
    old_running: int
    new_running: int
    reason: str
    verdict: str
    history: list[str]


class RolloutWorker(BaseWorker):
    """Runs the rollouts the master is asked for (:meth:`begin`)."""

    name = "rollout"

    def __init__(
        self,
        deployer: AutoDeployer,
        registry: InstanceRegistry,
        services: Mapping[str, ServiceSpec],
        settings: RolloutSettings | None = None,
        *,
        save: Callable[[Rollout], None] | None = None,
        validate: Validator | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or RolloutSettings()
        self._deployer = deployer
        self._registry = registry
        self._services = services
        self._save = save or (lambda r: None)
        self._validate = validate
        self._wall = wall
        self.rollouts: dict[str, Rollout] = {}
        """The latest rollout of each service, by service name."""
        self._watch: dict[str, _Watch] = {}
        self._verdicts: dict[str, Verdict] = {}

    # -- starting ----------------------------------------------------------------------

    def begin(self, service: str, version: str | ServiceVersion,
              strategy: Strategy | str = Strategy.ROLLING) -> Rollout:
        """Start rolling ``service`` out to ``version``; RolloutRefusedError if it cannot."""
        svc = self._services.get(service)
        if svc is None:
            raise RolloutRefusedError(f"service {service!r} is not declared in the master's"
                                      f" config (declared: {', '.join(sorted(self._services))})")
        strategy = Strategy.parse(strategy) if isinstance(strategy, str) else strategy
        st = self._stage_of(service)
        if st is None:
            raise RolloutRefusedError(f"service {service!r} runs no stage this master manages"
                                      " (give it a source_topic, or wait for its request)")
        current = self.rollouts.get(service)
        if current is not None and current.active:
            raise RolloutRefusedError(f"{service!r} is already rolling out to "
                                      f"{current.new.name} ({current.phase.value})")
        wanted = svc.version_named(version) if isinstance(version, str) else version
        old = st.version or ServiceVersion(svc.version)
        if wanted.name == old.name:
            raise RolloutRefusedError(f"{service!r} already runs version {old.name!r}")
        if self._validate is not None:
            why = self._validate(svc, wanted)
            if why is not None:
                raise RolloutRefusedError(f"no node can take {service!r} version"
                                          f" {wanted.name!r}: {why}")
        now = self._wall()
        target = max(1, len(st.deployed), st.plan.min_instance)
        st.scale_outs = 0
        rollout = Rollout(
            rollout_id=uuid.uuid4().hex[:12], service=service, stage=_stage(st),
            strategy=strategy, old=old, new=wanted, target=target, started_at=now, since=now,
            history=(f"started: {strategy.value} from {old.name} to {wanted.name} on"
                     f" {target} instance(s)",))
        log.info("%s: rollout %s from %s to %s (%s, %d instance(s))", service,
                 rollout.rollout_id, old.name, wanted.name, strategy.value, target)
        self._set(rollout)
        return rollout

    def restore(self, rollout: Rollout) -> None:
        """Take up a rollout an earlier master stored: resume it, or keep its outcome."""
        st = self._deployer.state(rollout.stage)
        if st is None:
            log.warning("%s: stored rollout %s is for %s, which is not managed now; ignored",
                        rollout.service, rollout.rollout_id, stage_name(rollout.stage))
            return
        if rollout.active:
            log.info("%s: resuming rollout %s to %s (%s, step %d) after a restart",
                     rollout.service, rollout.rollout_id, rollout.new.name,
                     rollout.phase.value, rollout.step + 1)
            # Whatever window was running is watched again from the start.
            if rollout.phase is Phase.WATCHING:
                rollout = _moved(rollout, Phase.STARTING, self._wall(),
                                 "resumed after a master restart")
        self.rollouts[rollout.service] = rollout
        self._apply(rollout, st)

    # -- the periodic loop ----------------------------------------------------------------

    async def tick(self, now: float) -> None:
        for rollout in list(self.rollouts.values()):
            if not rollout.active:
                continue
            st = self._deployer.state(rollout.stage)
            if st is None:
                continue
            try:
                self._step(rollout, st, now)
            except Exception:
                log.exception("%s: rollout step failed; trying again next tick", rollout.service)

    def _step(self, r: Rollout, st: StageState, now: float) -> None:
        if st.scale_outs:
            # Scaling goes on: the instances the deployer added are part of the target.
            r = replace(r, target=r.target + st.scale_outs, history=(
                *r.history, f"target {r.target + st.scale_outs}: the stage scaled out")[-20:])
            st.scale_outs = 0
            self._set(r)
        watch = self._watch.setdefault(r.service, _Watch())
        old, new = _split(st, r.new.name)
        view = self._view(r, st, watch, old, new, now)
        self._say(r, view.verdict)
        after, move = advance(r, view, self.settings)
        if after is not r:
            if after.phase is Phase.WATCHING:
                self._start_window(watch, st, now)
            elif after.phase is not r.phase:
                watch.started = None
            log.log(logging.WARNING if after.phase in (Phase.ROLLING_BACK, Phase.FAILED)
                    else logging.INFO, "%s: rollout %s", r.service, after.history[-1])
            self._set(after)
        if move.act is not Act.WAIT and now >= watch.retry_at:
            log.info("%s: %s", r.service, move.reason)
            st.task = asyncio.create_task(self._act(after, st, move, watch),
                                          name=f"rollout-{r.service}")

    def _view(self, r: Rollout, st: StageState, watch: _Watch, old: list[Deployed],
              new: list[Deployed], now: float) -> View:
        live = {rec.instance_id: rec for rec in self._registry.instances(st.plan.stage)}
        real = [self._new_instance(d, live, watch) for d in new]
        judged = list(real)
        lost = None if r.phase is Phase.ROLLING_BACK else _lost(watch, st, new)
        if lost is not None:
            judged.append(NewInstance("(gone)", now, lost=lost))
        old_counts = sum((_delta(live.get(d.live_id or ""), watch) for d in old), Counts())
        plan = steps(r.strategy, r.target, self.settings)
        verdict = judge(judged, old_counts, now,
                        watch.started if r.phase is Phase.WATCHING else None,
                        plan[min(r.step, len(plan) - 1)].window, st.plan.stage[1] is not None,
                        self.settings)
        self._verdicts[r.service] = verdict
        return View(self._wall(), tuple(d.live_id or d.deploy_id for d in _stop_order(old)),
                    tuple(real), verdict, busy=st.busy, ceiling=st.plan.max_instance)

    def _new_instance(self, d: Deployed, live: Mapping[str, InstanceRecord],
                      watch: _Watch) -> NewInstance:
        record = live.get(d.live_id or "")
        alive = d.result.alive if d.result is not None else None
        lost = None
        if record is None and alive is not None and not alive():
            lost = f"instance {d.deploy_id} exited before its first heartbeat"
        return NewInstance(d.live_id or d.deploy_id, d.started_at, beating=record is not None,
                           lost=lost, counts=_delta(record, watch))

    def _start_window(self, watch: _Watch, st: StageState, now: float) -> None:
        watch.started = now
        watch.base = {rec.instance_id: _totals(rec)
                      for rec in self._registry.instances(st.plan.stage)}

    async def _act(self, r: Rollout, st: StageState, move: Move, watch: _Watch) -> None:
        try:
            if move.act is Act.START_NEW:
                await self._deployer.actions.grow_partitions(
                    st, len(st.deployed) + move.count)
                started = await asyncio.gather(
                    *(self._deployer.actions.start(st, r.new) for _ in range(move.count)))
                watch.new_ids.update(d.deploy_id for d in started)
            elif move.act is Act.START_OLD:
                for _ in range(move.count):
                    await self._deployer.actions.start(st, r.old)
            elif move.act is Act.STOP:
                victims = [d for d in st.deployed if (d.live_id or d.deploy_id) in move.ids]
                watch.new_ids -= {d.deploy_id for d in victims}
                await asyncio.gather(*(self._deployer.actions.stop_instance(st, d)
                                       for d in victims if d.result is not None))
        except Exception as exc:
            retry = self._deployer.settings.deploy_delay
            log.error("%s: rollout action %s failed: %r; trying again in %gs at the earliest",
                      r.service, move.act.value, exc, retry)
            watch.retry_at = time.monotonic() + retry
            if move.act is Act.START_NEW:
                watch.failed = f"the start of a new instance failed: {exc}"

    # -- state ------------------------------------------------------------------------------

    def _set(self, rollout: Rollout) -> None:
        self.rollouts[rollout.service] = rollout
        st = self._deployer.state(rollout.stage)
        if st is not None:
            self._apply(rollout, st)
        if not rollout.active:
            self._watch.pop(rollout.service, None)
        self._save(rollout)

    def _apply(self, r: Rollout, st: StageState) -> None:
        """Tell the deployer which version scale-outs start and whether scale-in waits."""
        st.version = r.current if r.current.name != self._declared(r) else None
        st.hold_scale_in = (f"rollout {r.rollout_id} of {r.new.name} runs" if r.active
                            else None)
        st.rollout_target = r.target if r.active else None
        st.rollout_version = r.new.name

    def _declared(self, r: Rollout) -> str:
        svc = self._services.get(r.service)
        return svc.version if svc is not None else ""

    def _stage_of(self, service: str) -> StageState | None:
        for key in self._deployer.stages():
            st = self._deployer.state(key)
            if st is not None and st.plan.service_name == service:
                return st
        return None

    def _say(self, r: Rollout, verdict: Verdict) -> None:
        watch = self._watch[r.service]
        if verdict.code != watch.said:
            watch.said = verdict.code
            log.info("%s: verdict on %s: %s (%s): %s", r.service, r.new.name,
                     verdict.health.value, verdict.code, verdict.reason)

    def status(self) -> dict[str, RolloutStatus]:
        out = {}
        for service, r in sorted(self.rollouts.items()):
            st = self._deployer.state(r.stage)
            old, new = _split(st, r.new.name) if st is not None else ([], [])
            verdict = self._verdicts.get(service)
            out[service] = RolloutStatus(
                service=service, stage=stage_name(r.stage), strategy=r.strategy.value,
                old=r.old.name, new=r.new.name, phase=r.phase.value, step=r.step + 1,
                steps=len(steps(r.strategy, r.target, self.settings)), target=r.target,
                old_running=len(old), new_running=len(new), reason=r.reason,
                verdict="" if verdict is None or not r.active else
                f"{verdict.health.value} ({verdict.code}): {verdict.reason}",
                history=list(r.history))
        return out


def _stage(st: StageState) -> tuple[str, str | None]:
    source, target = st.plan.stage
    assert source is not None
    return source, target


def _split(st: StageState, new_name: str) -> tuple[list[Deployed], list[Deployed]]:
    old = [d for d in st.deployed if d.version != new_name]
    new = [d for d in st.deployed if d.version == new_name]
    return old, new


def _stop_order(old: list[Deployed]) -> list[Deployed]:
    """Instances that never bound first (nothing to drain), then the newest."""
    return sorted(old, key=lambda d: (d.live_id is not None, -d.started_at))


def _totals(rec: InstanceRecord) -> Counts:
    return Counts(rec.consumed_total, rec.produced_total, rec.dead_lettered_total)


def _delta(rec: InstanceRecord | None, watch: _Watch) -> Counts:
    if rec is None:
        return Counts()
    now, base = _totals(rec), watch.base.get(rec.instance_id, Counts())
    return Counts(now.consumed - base.consumed, now.produced - base.produced,
                  now.dead_lettered - base.dead_lettered)


def _lost(watch: _Watch, st: StageState, new: list[Deployed]) -> str | None:
    """Why a new instance is gone, if one is: its start failed, or the deployer forgot it."""
    if watch.failed:
        return watch.failed
    for gone in sorted(watch.new_ids - {d.deploy_id for d in new}):
        return st.forgotten.get(gone, f"instance {gone} is gone")
    return None


def _moved(r: Rollout, phase: Phase, wall: float, why: str) -> Rollout:
    return replace(r, phase=phase, since=wall, history=(*r.history, f"{phase.value}: {why}")[-20:])
