"""AUTO_DEPLOYER: keeps every planned stage between its limits, and says why each time.

Every tick it gathers what the master knows about each stage into
:class:`~master.scheduling.autoscale.ScaleInputs`, asks the pure
:func:`~master.scheduling.autoscale.decide`, records the decision, and hands
anything but a hold to :class:`~master.deployer.actions.Actions`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from deploy_scripts import DeployResult, DeployScripts
from deploy_scripts.version import instance_version
from master.deployer.actions import Actions, InstanceLedger, PartitionAdmin
from master.deployer.instances import Deployed, StageState
from master.plans import StagePlan
from master.scheduling.autoscale import (
    Action,
    Decision,
    Demand,
    DeployerSettings,
    ScaleInputs,
    decide,
)
from workers.base import BaseWorker
from workers.input_output import InputOutputWorker
from workers.registry import InstanceRegistry, StageKey, stage_name
from workers.statistic import StatisticWorker

__all__ = ["AutoDeployer", "DecisionRecord", "DeployerStatus", "StagePlanStatus"]

log = logging.getLogger("fogverse.master.auto_deployer")


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision (or failed action) as /status lists it."""

    at: float
    """Wall-clock epoch seconds."""
    stage: str
    action: str
    code: str
    reason: str
    target: int


@dataclass(frozen=True, slots=True)
class StagePlanStatus:
    service: str
    provider: str
    min_instance: int
    max_instance: int
    deployed: list[str]
    starting: list[str]
    unstopped: list[str]
    last_decision: DecisionRecord | None


@dataclass(frozen=True, slots=True)
class DeployerStatus:
    stages: dict[str, StagePlanStatus]
    actions: dict[str, int]
    decisions: list[DecisionRecord]
    scale_actions: list[DecisionRecord] = field(default_factory=list)
    """Recent scale-outs, scale-ins and failed actions only."""


class AutoDeployer(BaseWorker):
    """Keeps every planned stage between its limits, following :func:`decide`."""

    name = "auto_deployer"

    def __init__(
        self,
        deploy_scripts: DeployScripts,
        registry: InstanceRegistry,
        settings: DeployerSettings | None = None,
        *,
        statistic: StatisticWorker | None = None,
        input_output: InputOutputWorker | None = None,
        admin: PartitionAdmin | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: int = 200,
        wait_for_reader: bool = False,
        ledger: InstanceLedger | None = None,
        leave_running: bool = False,
    ) -> None:
        """``wait_for_reader``: hold every stage until :meth:`reading_from` says the
        control topic is being read, and start the startup grace from then (the
        master's case); otherwise the grace starts at the first tick.

        ``clock`` dates the end of an action, which finishes between ticks.
        ``ledger`` is told of each instance started and stopped; with
        ``leave_running`` :meth:`stop` leaves the instances running (their
        records stay, so the next master adopts them)."""
        self.settings = settings or DeployerSettings()
        self._registry = registry
        self._statistic = statistic
        self._io = input_output
        self._clock = clock
        self.actions = Actions(deploy_scripts, registry, self.settings, admin, clock, ledger)
        self.leave_running = leave_running
        self._stages: dict[StageKey, StageState] = {}
        self._learning_until: float | None = None
        self._wait_for_reader = wait_for_reader
        self.decisions: deque[DecisionRecord] = deque(maxlen=history)
        """Every decision as it changes (a repeated hold is said once), newest last."""
        self.scale_actions: deque[DecisionRecord] = deque(maxlen=history)
        """Only the scale-outs, scale-ins and failed actions: never pushed out by holds."""
        self.counts: dict[str, int] = {}
        """Scale actions started, by action."""
        self.reasons: Counter[tuple[str, str, str]] = Counter()
        """Decisions recorded, by (stage, action, code): what /metrics counts."""
        self._last_at: dict[str, float] = {}

    # -- plans ------------------------------------------------------------------------

    def set_plan(self, plan: StagePlan) -> bool:
        """Manage ``plan.stage`` with these limits (replacing earlier ones).

        Returns whether anything changed (a repeated request changes nothing).
        """
        current = self._stages.get(plan.stage)
        if current is None:
            self._stages[plan.stage] = StageState(plan)
            self._registry.declare_stage(plan.stage)
            log.info("managing %s with service %r (%s), %d..%d instance(s)",
                     stage_name(plan.stage), plan.service_name, plan.provider,
                     plan.min_instance, plan.max_instance)
            return True
        if current.plan != plan:
            current.plan = plan
            current.provisioned = False
            log.info("limits of %s are now %d..%d", stage_name(plan.stage),
                     plan.min_instance, plan.max_instance)
            return True
        return False

    def adopt(self, stage: StageKey, result: DeployResult) -> bool:
        """Count a running instance an earlier master started as one of ``stage``'s.

        It counts as starting until its heartbeat binds it (by its instance id),
        so no duplicate is deployed meanwhile; it is stopped like the others.
        False when ``stage`` has no plan."""
        st = self._stages.get(stage)
        if st is None:
            return False
        st.deployed.append(Deployed(result.instance_id, result, self._clock(),
                                    version=instance_version(result.info)))
        log.info("%s: adopted running instance %s", st.name, result.instance_id)
        return True

    def drop_plan(self, stage: StageKey) -> bool:
        """Stop managing ``stage``; refused (False) while it has instances or an action runs."""
        st = self._stages.get(stage)
        if st is None:
            return True
        if st.deployed or st.unstopped or st.busy:
            return False
        del self._stages[stage]
        return True

    def stages(self) -> list[StageKey]:
        """Every stage with a plan."""
        return list(self._stages)

    def plan(self, stage: StageKey) -> StagePlan | None:
        st = self._stages.get(stage)
        return st.plan if st else None

    def state(self, stage: StageKey) -> StageState | None:
        """The deployer's own record of ``stage`` (for the rollout worker)."""
        return self._stages.get(stage)

    def instances(self, stage: StageKey) -> list[Deployed]:
        """The instances of ``stage`` this master started and still counts."""
        st = self._stages.get(stage)
        return list(st.deployed) if st else []

    # -- the periodic loop ----------------------------------------------------------------

    def reading_from(self, now: float) -> None:
        """The control topic is being read as of ``now``: learn who is alive from here.

        Only the first call counts."""
        if self._learning_until is None or self._learning_until == float("inf"):
            self._learning_until = now + self.settings.startup_grace
            # Instances adopted before anything could be heard get their whole
            # start_timeout from now to send a first heartbeat.
            for st in self._stages.values():
                for d in st.deployed:
                    if d.live_id is None:
                        d.started_at = max(d.started_at, now)

    async def tick(self, now: float) -> None:
        if self._learning_until is None:
            # Nothing read yet, nothing known: hold until the reader says so.
            self._learning_until = (float("inf") if self._wait_for_reader
                                    else now + self.settings.startup_grace)
        for st in self._stages.values():
            self._track(st, now)
            self.actions.retry_stops(st, now)
            if self.actions.should_provision(st, now):
                st.task = asyncio.create_task(self.actions.provision(st, now),
                                              name=f"partitions-{st.name}")
            decision = decide(self._inputs(st, now), self.settings)
            if decision.action is Action.SCALE_IN and st.hold_scale_in:
                decision = Decision(Action.HOLD, "rollout", f"{decision.reason}, but"
                                    f" {st.hold_scale_in}", decision.target + 1)
            self._record(st, decision)
            if decision.action is not Action.HOLD:
                st.task = asyncio.create_task(self.act(st.plan.stage, decision),
                                              name=f"scale-{st.name}")

    async def act(self, stage: StageKey, decision: Decision) -> None:
        """Carry out ``decision`` for ``stage`` now; a failure is recorded, not raised."""
        st = self._stages[stage]
        try:
            await self.actions.run(st, decision)
        except Exception as exc:
            log.error("%s: %s failed: %r", st.name, decision.action.value, exc)
            self._log(DecisionRecord(time.time(), st.name, "error",
                                     f"{decision.action.value}_failed", repr(exc),
                                     decision.target))
            if decision.action is Action.SCALE_OUT:
                # A missing image or an engine that does not answer: back off as for
                # an instance that never started, from deploy_delay.
                st.back_off(self._clock(), repr(exc), self.settings.deploy_delay)

    async def idle(self) -> None:
        """Wait until every action and background stop started so far has finished."""
        tasks = [st.task for st in self._stages.values() if st.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.actions.reaped()

    def inputs(self, stage: StageKey, now: float) -> ScaleInputs:
        """The facts :func:`decide` would see for ``stage`` at ``now``."""
        return self._inputs(self._stages[stage], now)

    def _inputs(self, st: StageState, now: float) -> ScaleInputs:
        """The facts :func:`decide` needs for one stage, gathered from the other workers."""
        stage = st.plan.stage
        verdict, why = Demand.UNKNOWN, "input_output worker not included"
        if self._io is not None:
            assessment = self._io.assessment(stage)
            if assessment is not None:
                verdict, why = Demand(assessment.verdict.value), assessment.reason
        spike, z = False, None
        if self._statistic is not None and stage[0] is not None:
            spike, stats = self._statistic.is_spike(stage[0])
            z = stats.z if stats else None
        return ScaleInputs(
            now=now, live=max(0, self._registry.live_count(stage) - st.surplus(
                {r.instance_id: r for r in self._registry.instances(stage)})),
            min_instance=st.plan.min_instance, max_instance=st.plan.max_instance,
            verdict=verdict, verdict_reason=why, starting=st.starting(),
            stoppable=st.stoppable(), spike=spike, spike_z=z, last_action_at=st.last_action_at,
            last_appeared_at=self._registry.last_appeared(stage), busy=st.busy,
            learning_until=(float("-inf") if self._learning_until is None
                            else self._learning_until),
            backoff_until=st.backoff_until, backoff_reason=st.backoff_reason,
        )

    def _track(self, st: StageState, now: float) -> None:
        """Bind heartbeats to deployed instances; drop the dead and the never-started."""
        live = {r.instance_id: r for r in self._registry.instances(st.plan.stage)}
        st.bind(live)
        for d, why, never_started in st.lost(live, now, self.settings.start_timeout):
            if st.forget(d, why):
                self.actions.reap(st, d)
            if never_started:
                st.back_off(now, why, self.settings.start_timeout)

    def _record(self, st: StageState, d: Decision) -> None:
        previous = st.last
        st.last = d
        if d.action is Action.HOLD and previous is not None and previous.code == d.code:
            return  # the same reason as a moment ago: already said
        level = logging.INFO if d.action is not Action.HOLD or d.code != "busy" else logging.DEBUG
        log.log(level, "%s: %s (%s): %s", st.name, d.action.value, d.code, d.reason)
        self._log(DecisionRecord(time.time(), st.name, d.action.value, d.code, d.reason,
                                 d.target))
        if d.action is not Action.HOLD:
            self.counts[d.action.value] = self.counts.get(d.action.value, 0) + 1

    def _log(self, record: DecisionRecord) -> None:
        self.decisions.append(record)
        if record.action != Action.HOLD.value:
            self.scale_actions.append(record)
        self.reasons[(record.stage, record.action, record.code)] += 1
        self._last_at[record.stage] = record.at

    # -- shutdown and status ----------------------------------------------------------------

    async def stop(self) -> None:
        """Let running actions finish, then stop every instance this master started
        (unless ``leave_running``)."""
        running = [st.task for st in self._stages.values() if st.busy and st.task]
        if running:
            await asyncio.wait(running, timeout=self.settings.start_timeout)
        if self.leave_running:
            await self.actions.reaped()
            left = sum(len(st.deployed) for st in self._stages.values())
            log.info("leaving %d instance(s) running for the next master to adopt", left)
            return
        results = [d.result for st in self._stages.values()
                   for d in (*st.deployed, *st.unstopped) if d.result]
        for st in self._stages.values():
            st.deployed.clear()
            st.unstopped.clear()
        await self.actions.stop_all(results)

    def status(self) -> DeployerStatus:
        stages = {st.name: _plan_status(st, self._last_at.get(st.name, 0.0))
                  for st in self._stages.values()}
        return DeployerStatus(stages, dict(self.counts), list(self.decisions)[-_SHOWN:],
                              list(self.scale_actions)[-_SHOWN:])


_SHOWN = 50
"""Decisions /status lists (the newest); the deployer keeps ``history`` of each kind."""


def _plan_status(st: StageState, last_at: float) -> StagePlanStatus:
    last = st.last
    return StagePlanStatus(
        service=st.plan.service_name, provider=st.plan.provider,
        min_instance=st.plan.min_instance, max_instance=st.plan.max_instance,
        deployed=[d.live_id or d.deploy_id for d in st.deployed],
        starting=[d.deploy_id for d in st.deployed if d.live_id is None],
        unstopped=[d.live_id or d.deploy_id for d in st.unstopped],
        last_decision=None if last is None else DecisionRecord(
            last_at, st.name, last.action.value, last.code, last.reason, last.target),
    )
