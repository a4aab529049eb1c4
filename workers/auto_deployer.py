"""AUTO_DEPLOYER: starts and stops stage instances, and says why each time.

The decision (:func:`decide`) is a pure function of what the master knows about
one stage at one instant; :class:`AutoDeployer` gathers those facts every tick
and carries out what it decides in background tasks, so a deploy function that
takes a minute never stalls the control-topic reader. One action per stage runs
at a time.

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

A scale-out is also held while the stage backs off: each instance in a row that
sends no heartbeat within ``start_timeout`` doubles the wait before the next
start (``start_timeout``, then twice that, up to 5 minutes), so a service that
cannot start is not redeployed every half minute forever. A deploy that fails
outright (a missing image, an engine that does not answer) backs off the same way
from ``deploy_delay``. A heartbeat from a started instance ends the backoff.

Before a stage grows past its source topic's partition count the topic gets
more partitions, so the new instance has something to read.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.base import BaseWorker
from workers.input_output import InputOutputWorker, Verdict
from workers.registry import InstanceRegistry, StageKey, stage_name
from workers.statistic import StatisticWorker

__all__ = [
    "Action",
    "AutoDeployer",
    "Decision",
    "DeployHandle",
    "DeployRegistry",
    "Deployed",
    "DeployerSettings",
    "PartitionAdmin",
    "ScaleInputs",
    "StagePlan",
    "decide",
]

log = logging.getLogger("fogverse.master.auto_deployer")

_MAX_BACKOFF = 300.0
"""The longest wait between two attempts at something that keeps failing."""


class Action(enum.StrEnum):
    SCALE_OUT = "scale_out"
    SCALE_IN = "scale_in"
    HOLD = "hold"


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
    verdict: Verdict = Verdict.UNKNOWN
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
    return _by_verdict(x, count, hold)


def _by_verdict(x: ScaleInputs, count: int, hold: Callable[[str, str], Decision]) -> Decision:
    if x.verdict is Verdict.NEEDS_MORE:
        if count >= x.max_instance:
            return hold("at_max", f"{x.verdict_reason}, but at max_instance {x.max_instance}")
        return Decision(Action.SCALE_OUT, "needs_more", x.verdict_reason, count + 1)
    if x.verdict is Verdict.HAS_TOO_MANY:
        if count <= x.min_instance:
            return hold("at_min", f"{x.verdict_reason}, but at min_instance {x.min_instance}")
        if not x.stoppable:
            return hold("no_handle", "idle, but no live instance was started by this master")
        return Decision(Action.SCALE_IN, "too_many", x.verdict_reason, count - 1)
    return hold(x.verdict.value, x.verdict_reason or x.verdict.value)


@dataclass(frozen=True)
class StagePlan:
    """What the master may do for one stage: which service, within which limits."""

    stage: StageKey
    service_name: str
    provider: str = "LOCAL"
    min_instance: int = 1
    max_instance: int = 1
    group_id: str | None = None
    extra_configs: Mapping[str, Any] = field(default_factory=dict)

    def deploy_config(self) -> dict[str, Any]:
        """FogVerse's DeployConfig for one more instance of this stage."""
        return {
            "provider": self.provider, "service_name": self.service_name,
            "max_instance": self.max_instance, "min_instance": self.min_instance,
            "extra_configs": dict(self.extra_configs),
        }


class DeployHandle(Protocol):
    """A started instance as deploy_scripts.DeployResult describes it."""

    @property
    def instance_id(self) -> str: ...


class DeployRegistry(Protocol):
    """The part of deploy_scripts.DeployScripts the deployer uses.

    A protocol rather than an import keeps workers/ independent of deploy_scripts/.
    """

    async def deploy(self, config: Any, logger: logging.Logger | None = None) -> Any: ...

    async def stop(self, result: Any) -> None: ...

    async def close(self) -> None: ...


@dataclass
class Deployed:
    """An instance this master started."""

    deploy_id: str
    result: DeployHandle | None
    started_at: float
    live_id: str | None = None
    """The instance id its heartbeats carry, once one arrived."""
    stop_failures: int = 0
    retry_stop_at: float = float("-inf")


class PartitionAdmin(Protocol):
    """The part of fogverse.admin.KafkaAdmin the deployer needs."""

    async def partition_count(self, topic: str) -> int | None: ...

    async def ensure_partitions(self, topic: str, count: int) -> int: ...


@dataclass
class _Stage:
    plan: StagePlan
    deployed: list[Deployed] = field(default_factory=list)
    last_action_at: float | None = None
    provisioned: bool = False
    provision_after: float = float("-inf")
    task: asyncio.Task[None] | None = None
    last: Decision | None = None
    unstopped: list[Deployed] = field(default_factory=list)
    start_failures: int = 0
    """Instances in a row that sent no heartbeat within start_timeout."""
    backoff_until: float = float("-inf")
    backoff_reason: str = ""
    """Dead or never-started instances whose stop failed: kept, and stopped again later."""


class AutoDeployer(BaseWorker):
    """Keeps every planned stage between its limits, following :func:`decide`."""

    name = "auto_deployer"

    def __init__(
        self,
        deploy_scripts: DeployRegistry,
        registry: InstanceRegistry,
        settings: DeployerSettings | None = None,
        *,
        statistic: StatisticWorker | None = None,
        input_output: InputOutputWorker | None = None,
        admin: PartitionAdmin | None = None,
        clock: Callable[[], float] = time.monotonic,
        history: int = 200,
        wait_for_reader: bool = False,
    ) -> None:
        """``wait_for_reader``: hold every stage until :meth:`reading_from` says the
        control topic is being read, and start the startup grace from then (the
        master's case); otherwise the grace starts at the first tick."""
        self.settings = settings or DeployerSettings()
        self._scripts = deploy_scripts
        self._registry = registry
        self._statistic = statistic
        self._io = input_output
        self._admin = admin
        self._clock = clock
        self._stages: dict[StageKey, _Stage] = {}
        self._learning_until: float | None = None
        self._wait_for_reader = wait_for_reader
        self._reaping: set[asyncio.Task[None]] = set()
        self._reaping_of: dict[asyncio.Task[None], Deployed] = {}
        self.decisions: deque[dict[str, Any]] = deque(maxlen=history)
        self.actions: dict[str, int] = {}

    # -- plans ------------------------------------------------------------------------

    def set_plan(self, plan: StagePlan) -> bool:
        """Manage ``plan.stage`` with these limits (replacing earlier ones).

        Returns whether anything changed (a repeated request changes nothing).
        """
        current = self._stages.get(plan.stage)
        if current is None:
            self._stages[plan.stage] = _Stage(plan)
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

    def stages(self) -> list[StageKey]:
        """Every stage with a plan."""
        return list(self._stages)

    def plan(self, stage: StageKey) -> StagePlan | None:
        st = self._stages.get(stage)
        return st.plan if st else None

    # -- the periodic loop ----------------------------------------------------------------

    def reading_from(self, now: float) -> None:
        """The control topic is being read as of ``now``: learn who is alive from here.

        Only the first call counts."""
        if self._learning_until is None or self._learning_until == float("inf"):
            self._learning_until = now + self.settings.startup_grace

    async def tick(self, now: float) -> None:
        if self._learning_until is None:
            # Nothing read yet, nothing known: hold until the reader says so.
            self._learning_until = (float("inf") if self._wait_for_reader
                                    else now + self.settings.startup_grace)
        for st in self._stages.values():
            self._track_instances(st, now)
            self._retry_stops(st, now)
            if self._should_provision(st, now):
                st.task = asyncio.create_task(self._provision(st, now),
                                              name=f"partitions-{stage_name(st.plan.stage)}")
            decision = decide(self.inputs(st, now), self.settings)
            self._record(st, decision)
            if decision.action is not Action.HOLD:
                st.task = asyncio.create_task(self._act(st, decision),
                                              name=f"scale-{stage_name(st.plan.stage)}")

    def inputs(self, st: _Stage, now: float) -> ScaleInputs:
        """The facts :func:`decide` needs for one stage, gathered from the other workers."""
        stage = st.plan.stage
        verdict, why = Verdict.UNKNOWN, "input_output worker not included"
        if self._io is not None:
            assessment = self._io.assessment(stage)
            if assessment is not None:
                verdict, why = assessment.verdict, assessment.reason
        spike, z = False, None
        if self._statistic is not None and stage[0] is not None:
            spike, stats = self._statistic.is_spike(stage[0])
            z = stats.z if stats else None
        return ScaleInputs(
            now=now, live=self._registry.live_count(stage),
            min_instance=st.plan.min_instance, max_instance=st.plan.max_instance,
            verdict=verdict, verdict_reason=why,
            starting=sum(1 for d in st.deployed if d.live_id is None),
            stoppable=sum(1 for d in st.deployed if d.live_id is not None and d.result),
            spike=spike, spike_z=z, last_action_at=st.last_action_at,
            last_appeared_at=self._registry.last_appeared(stage),
            busy=st.task is not None and not st.task.done(),
            learning_until=(float("-inf") if self._learning_until is None
                            else self._learning_until),
            backoff_until=st.backoff_until, backoff_reason=st.backoff_reason,
        )

    def _track_instances(self, st: _Stage, now: float) -> None:
        """Match deployed instances with heartbeats; drop the dead and the never-started."""
        stage = st.plan.stage
        live = {r.instance_id: r for r in self._registry.instances(stage)}
        bound = {d.live_id for d in st.deployed if d.live_id}
        was_bound = len(bound)
        for d in st.deployed:
            if d.live_id is None and d.deploy_id in live:
                d.live_id = d.deploy_id
                bound.add(d.deploy_id)
        for d in st.deployed:
            if d.live_id is None:
                # A provider that cannot pass our id: take a newcomer nobody claimed.
                newcomer = next((r for i, r in live.items()
                                 if i not in bound and r.first_seen >= d.started_at), None)
                if newcomer is not None:
                    d.live_id = newcomer.instance_id
                    bound.add(newcomer.instance_id)
        if st.start_failures and len(bound) > was_bound:
            log.info("%s: a started instance heartbeats; start backoff over",
                     stage_name(stage))
            st.start_failures, st.backoff_until = 0, float("-inf")
        for d in list(st.deployed):
            if d.live_id is not None and d.live_id not in live:
                self._forget(st, d, f"instance {d.live_id} stopped heartbeating")
            elif d.live_id is None and now - d.started_at > self.settings.start_timeout:
                why = (f"instance {d.deploy_id} sent no heartbeat within "
                       f"start_timeout {self.settings.start_timeout:g}s")
                self._forget(st, d, why)
                self._back_off(st, now, why)

    def _back_off(self, st: _Stage, now: float, why: str, base: float | None = None) -> None:
        st.start_failures += 1
        first = self.settings.start_timeout if base is None else base
        delay = min(first * 2 ** (st.start_failures - 1), _MAX_BACKOFF)
        st.backoff_until = now + delay
        st.backoff_reason = f"{st.start_failures} start(s) in a row failed; last: {why}"
        log.warning("%s: next start in %.0fs at the earliest (%s)", stage_name(st.plan.stage),
                    delay, st.backoff_reason)

    def _forget(self, st: _Stage, d: Deployed, why: str) -> None:
        log.warning("%s: %s; stopping what is left of it", stage_name(st.plan.stage), why)
        st.deployed.remove(d)
        if d.result is not None:
            st.unstopped.append(d)
            self._reap(st, d)

    def _retry_stops(self, st: _Stage, now: float) -> None:
        reaping = {id(d) for d in self._reaping_of.values()}
        for d in st.unstopped:
            if id(d) not in reaping and d.stop_failures and now >= d.retry_stop_at:
                log.info("%s: stopping %s again (%d failed attempt(s))",
                         stage_name(st.plan.stage), d.deploy_id, d.stop_failures)
                self._reap(st, d)

    def _reap(self, st: _Stage, d: Deployed) -> None:
        task = asyncio.create_task(self._stop_forgotten(st, d))
        self._reaping.add(task)
        self._reaping_of[task] = d
        task.add_done_callback(self._reaped)

    def _reaped(self, task: asyncio.Task[None]) -> None:
        self._reaping.discard(task)
        self._reaping_of.pop(task, None)

    async def _stop_forgotten(self, st: _Stage, d: Deployed) -> None:
        assert d.result is not None
        try:
            await self._scripts.stop(d.result)
        except Exception as exc:
            d.stop_failures += 1
            delay = min(self.settings.deploy_delay * 2 ** d.stop_failures, _MAX_BACKOFF)
            d.retry_stop_at = self._clock() + delay
            log.error("%s: stopping %s failed: %r; trying again in %.0fs",
                      stage_name(st.plan.stage), d.deploy_id, exc, delay)
        else:
            if d in st.unstopped:
                st.unstopped.remove(d)

    async def _stop_quietly(self, result: DeployHandle) -> None:
        try:
            await self._scripts.stop(result)
        except Exception as exc:
            log.error("stopping %s failed: %r", result.instance_id, exc)

    def _record(self, st: _Stage, d: Decision) -> None:
        previous = st.last
        st.last = d
        if d.action is Action.HOLD and previous is not None and previous.code == d.code:
            return  # the same reason as a moment ago: already said
        level = logging.INFO if d.action is not Action.HOLD or d.code != "busy" else logging.DEBUG
        log.log(level, "%s: %s (%s): %s", stage_name(st.plan.stage), d.action.value, d.code,
                d.reason)
        self.decisions.append({
            "at": time.time(), "stage": stage_name(st.plan.stage), "action": d.action.value,
            "code": d.code, "reason": d.reason, "target": d.target,
        })
        if d.action is not Action.HOLD:
            self.actions[d.action.value] = self.actions.get(d.action.value, 0) + 1

    # -- partitions ahead of need -------------------------------------------------------

    def _should_provision(self, st: _Stage, now: float) -> bool:
        return (self.settings.partitions_ahead and not st.provisioned
                and self._admin is not None and st.plan.stage[0] is not None
                and now >= st.provision_after and (st.task is None or st.task.done()))

    async def _provision(self, st: _Stage, now: float) -> None:
        assert self._admin is not None and st.plan.stage[0] is not None
        source, want = st.plan.stage[0], st.plan.max_instance
        try:
            count = await self._admin.partition_count(source)
            if count is None:
                st.provision_after = now + 5.0  # the stage creates its topic on start
                return
            if count < want:
                now_count = await self._admin.ensure_partitions(source, want)
                log.info("%s: partitions of %s %d -> %d ahead of need (max_instance %d)",
                         stage_name(st.plan.stage), source, count, now_count, want)
            st.provisioned = True
        except Exception as exc:
            log.warning("%s: could not add partitions ahead: %r", stage_name(st.plan.stage), exc)
            st.provision_after = now + 5.0

    # -- actions --------------------------------------------------------------------------

    async def _act(self, st: _Stage, d: Decision) -> None:
        try:
            if d.action is Action.SCALE_OUT:
                await self._scale_out(st, d.target)
            else:
                await self._scale_in(st)
        except Exception as exc:
            log.error("%s: %s failed: %r", stage_name(st.plan.stage), d.action.value, exc)
            self.decisions.append({
                "at": time.time(), "stage": stage_name(st.plan.stage), "action": "error",
                "code": f"{d.action.value}_failed", "reason": repr(exc), "target": d.target,
            })
            if d.action is Action.SCALE_OUT:
                self._back_off(st, self._clock(), repr(exc), base=self.settings.deploy_delay)
        finally:
            st.last_action_at = self._clock()

    async def _scale_out(self, st: _Stage, target: int) -> None:
        source = st.plan.stage[0]
        if self._admin is not None and source is not None:
            count = await self._admin.partition_count(source)
            if count is not None and count < target:
                now_count = await self._admin.ensure_partitions(source, target)
                log.info("%s: partitions of %s %d -> %d so %d instances all get work",
                         stage_name(st.plan.stage), source, count, now_count, target)
        started = self._clock()
        result = await self._scripts.deploy(st.plan.deploy_config(), log)
        deploy_id = result.instance_id if result else f"{st.plan.service_name}-unbound"
        st.deployed.append(Deployed(deploy_id, result, started))
        log.info("%s: started instance %s of %r", stage_name(st.plan.stage), deploy_id,
                 st.plan.service_name)

    async def _scale_in(self, st: _Stage) -> None:
        victim = next((d for d in reversed(st.deployed) if d.live_id and d.result), None)
        if victim is None or victim.result is None or victim.live_id is None:
            return
        # Stop counting it first: while it drains it still beats, but it is leaving.
        self._registry.retire(victim.live_id, self._clock())
        at = st.deployed.index(victim)
        st.deployed.remove(victim)
        log.info("%s: stopping instance %s", stage_name(st.plan.stage), victim.live_id)
        try:
            await self._scripts.stop(victim.result)
        except BaseException:
            # It may well still run: count it again (its next beat makes it live),
            # so a later scale-in retries it and stop() still stops it.
            self._registry.unretire(victim.live_id)
            st.deployed.insert(at, victim)
            raise

    # -- shutdown and status ----------------------------------------------------------------

    async def stop(self) -> None:
        """Let running actions finish, then stop every instance this master started."""
        running = [st.task for st in self._stages.values() if st.task and not st.task.done()]
        if running:
            await asyncio.wait(running, timeout=self.settings.start_timeout)
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)
        results = [d.result for st in self._stages.values()
                   for d in (*st.deployed, *st.unstopped) if d.result]
        for st in self._stages.values():
            st.deployed.clear()
            st.unstopped.clear()
        if results:
            log.info("stopping %d instance(s) started by this master", len(results))
        await asyncio.gather(*(self._stop_quietly(r) for r in results))
        await self._scripts.close()  # tries once more whatever failed to stop

    def status(self) -> dict[str, Any]:
        stages = {}
        for key, st in self._stages.items():
            stages[stage_name(key)] = {
                "service": st.plan.service_name, "provider": st.plan.provider,
                "min_instance": st.plan.min_instance, "max_instance": st.plan.max_instance,
                "deployed": [d.live_id or d.deploy_id for d in st.deployed],
                "starting": [d.deploy_id for d in st.deployed if d.live_id is None],
                "unstopped": [d.live_id or d.deploy_id for d in st.unstopped],
                "last_decision": None if st.last is None else {
                    "action": st.last.action.value, "code": st.last.code,
                    "reason": st.last.reason,
                },
            }
        return {"stages": stages, "actions": dict(self.actions)}
