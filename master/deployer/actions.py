"""What the deployer does to the world: start, stop, reap, and grow partitions.

Each action runs in a task of its own, so a deploy function that takes a minute
never stalls the control-topic reader; one action per stage runs at a time.
Before a stage grows past its source topic's partition count the topic gets
more partitions (growing to at least N is idempotent), so the new instance has
something to read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from deploy_scripts import DeployResult, DeployScripts, ServiceVersion
from deploy_scripts.version import DECLARED_VERSION, with_version
from fogverse.constants import INFO_VERSION
from master.deployer.instances import MAX_BACKOFF, Deployed, StageState
from master.plans import StagePlan
from master.scheduling.autoscale import Action, Decision, DeployerSettings
from workers.registry import InstanceRegistry

__all__ = ["Actions", "InstanceLedger", "PartitionAdmin", "Placer"]

Placer = Callable[[str, str, dict[str, object]], object]
"""``placer(service_name, provider, extra_configs)`` may name a node in ``extra_configs``."""

log = logging.getLogger("fogverse.master.auto_deployer")

_PROVISION_RETRY = 5.0
"""Seconds before trying again to add partitions ahead (the topic may not exist yet)."""


class PartitionAdmin(Protocol):
    """The part of fogverse.admin.KafkaAdmin the deployer needs."""

    async def partition_count(self, topic: str) -> int | None: ...

    async def ensure_partitions(self, topic: str, count: int) -> int: ...


class InstanceLedger(Protocol):
    """Told of every instance the deployer starts and of every one it stopped for good,
    so a restarted master knows what runs (the master's state topic)."""

    def started(self, plan: StagePlan, result: DeployResult) -> None: ...

    def stopped(self, instance_id: str) -> None: ...


class _NoLedger:
    def started(self, plan: StagePlan, result: DeployResult) -> None:
        pass

    def stopped(self, instance_id: str) -> None:
        pass


class Actions:
    """Carries out scale decisions through the deploy providers and the admin client."""

    def __init__(
        self,
        scripts: DeployScripts,
        registry: InstanceRegistry,
        settings: DeployerSettings,
        admin: PartitionAdmin | None,
        clock: Callable[[], float],
        ledger: InstanceLedger | None = None,
    ) -> None:
        self.scripts = scripts
        self.ledger: InstanceLedger = ledger or _NoLedger()
        self._registry = registry
        self._settings = settings
        self._admin = admin
        self._clock = clock
        self._reaping: dict[asyncio.Task[None], Deployed] = {}
        self.placer: Placer | None = None
        """Asked where each new instance goes (the master's scheduler), if set."""

    async def run(self, st: StageState, d: Decision) -> None:
        """Carry out ``d`` (errors propagate); the stage's delay runs from its end."""
        try:
            if d.action is Action.SCALE_OUT:
                await self.scale_out(st, d.target)
            elif d.action is Action.SCALE_IN:
                await self.scale_in(st)
        finally:
            st.last_action_at = self._clock()

    async def scale_out(self, st: StageState, target: int) -> Deployed | None:
        await self.grow_partitions(st, target)
        deployed = await self.start(st, st.version)
        st.scale_outs += 1
        return deployed

    async def start(self, st: StageState, version: ServiceVersion | None) -> Deployed:
        """Start one instance of ``version`` (None: as declared) for ``st``; errors propagate."""
        started = self._clock()
        config = with_version(st.plan.deploy_config(), version)
        if self.placer is not None:
            self.placer(st.plan.service_name, st.plan.provider, config["extra_configs"])
        result = await self.scripts.deploy(config, log)
        # The declared service's version is named by its spec, which the provider holds.
        name = version.name if version is not None else str(
            (result.info if result is not None else {}).get(INFO_VERSION) or DECLARED_VERSION)
        if result is not None:
            result.info[INFO_VERSION] = name
        deploy_id = result.instance_id if result else f"{st.plan.service_name}-unbound"
        deployed = Deployed(deploy_id, result, started, version=name)
        st.deployed.append(deployed)
        if result is not None:
            self.ledger.started(st.plan, result)
        log.info("%s: started instance %s of %r (version %s)", st.name, deploy_id,
                 st.plan.service_name, name)
        return deployed

    async def grow_partitions(self, st: StageState, target: int) -> None:
        """Give the source topic at least ``target`` partitions, where the plan allows."""
        source = st.plan.stage[0]
        if self._admin is None or source is None or not st.plan.grow_partitions:
            return
        count = await self._admin.partition_count(source)
        if count is not None and count < target:
            now_count = await self._admin.ensure_partitions(source, target)
            log.info("%s: partitions of %s %d -> %d so %d instances all get work",
                     st.name, source, count, now_count, target)

    async def scale_in(self, st: StageState) -> None:
        victim = st.newest_stoppable()
        if victim is None or victim.result is None or victim.live_id is None:
            return
        await self.stop_instance(st, victim)

    async def stop_instance(self, st: StageState, victim: Deployed) -> None:
        """Stop ``victim`` gracefully (it drains and commits); errors propagate."""
        assert victim.result is not None
        live_id = victim.live_id or victim.deploy_id
        # Stop counting it first: while it drains it still beats, but it is leaving.
        self._registry.retire(live_id, self._clock())
        at = st.deployed.index(victim)
        st.deployed.remove(victim)
        log.info("%s: stopping instance %s", st.name, live_id)
        try:
            await self.scripts.stop(victim.result)
        except BaseException:
            # It may well still run: count it again (its next beat makes it live),
            # so a later scale-in retries it and stop() still stops it.
            self._registry.unretire(live_id)
            st.deployed.insert(at, victim)
            raise
        self.ledger.stopped(victim.result.instance_id)

    # -- partitions ahead of need -------------------------------------------------------

    def should_provision(self, st: StageState, now: float) -> bool:
        return (self._settings.partitions_ahead and not st.provisioned
                and st.plan.grow_partitions and self._admin is not None
                and st.plan.stage[0] is not None and now >= st.provision_after and not st.busy)

    async def provision(self, st: StageState, now: float) -> None:
        """Give the source topic ``max_instance`` partitions while the stage is idle."""
        assert self._admin is not None and st.plan.stage[0] is not None
        source, want = st.plan.stage[0], st.plan.max_instance
        try:
            count = await self._admin.partition_count(source)
            if count is None:
                st.provision_after = now + _PROVISION_RETRY  # the stage creates it on start
                return
            if count < want:
                now_count = await self._admin.ensure_partitions(source, want)
                log.info("%s: partitions of %s %d -> %d ahead of need (max_instance %d)",
                         st.name, source, count, now_count, want)
            st.provisioned = True
        except Exception as exc:
            log.warning("%s: could not add partitions ahead: %r", st.name, exc)
            st.provision_after = now + _PROVISION_RETRY

    # -- remains of lost instances ----------------------------------------------------------

    def reap(self, st: StageState, d: Deployed) -> None:
        """Stop what is left of a lost instance, in the background."""
        task = asyncio.create_task(self._stop_forgotten(st, d))
        self._reaping[task] = d
        task.add_done_callback(self._reaping.pop)

    def retry_stops(self, st: StageState, now: float) -> None:
        reaping = {id(d) for d in self._reaping.values()}
        for d in st.unstopped:
            if id(d) not in reaping and d.stop_failures and now >= d.retry_stop_at:
                log.info("%s: stopping %s again (%d failed attempt(s))", st.name, d.deploy_id,
                         d.stop_failures)
                self.reap(st, d)

    async def _stop_forgotten(self, st: StageState, d: Deployed) -> None:
        assert d.result is not None
        try:
            await self.scripts.stop(d.result)
        except Exception as exc:
            d.stop_failures += 1
            delay = min(self._settings.deploy_delay * 2 ** d.stop_failures, MAX_BACKOFF)
            d.retry_stop_at = self._clock() + delay
            log.error("%s: stopping %s failed: %r; trying again in %.0fs", st.name,
                      d.deploy_id, exc, delay)
        else:
            if d in st.unstopped:
                st.unstopped.remove(d)
            self.ledger.stopped(d.result.instance_id)

    async def reaped(self) -> None:
        """Wait until every background stop started so far has finished."""
        if self._reaping:
            await asyncio.gather(*self._reaping, return_exceptions=True)

    async def stop_all(self, results: list[DeployResult]) -> None:
        """Stop these instances concurrently, then whatever the registry still holds."""
        await self.reaped()
        if results:
            log.info("stopping %d instance(s) started by this master", len(results))
        await asyncio.gather(*(self._stop_quietly(r) for r in results))
        await self.scripts.close()  # tries once more whatever failed to stop

    async def _stop_quietly(self, result: DeployResult) -> None:
        try:
            await self.scripts.stop(result)
        except Exception as exc:
            log.error("stopping %s failed: %r", result.instance_id, exc)
        else:
            self.ledger.stopped(result.instance_id)
