"""The Master process: reads the control topic, runs the workers, serves /status.

One asyncio loop. The control topic is read in batches on a thread of its own
(:mod:`master.control_reader`), so the loop only decodes and dispatches
(:mod:`master.dispatcher`). Workers tick four times a second with the same
monotonic ``now``. Deploy functions and admin calls run in tasks and threads of
their own: nothing the master waits for can stop it from reading heartbeats.

Shutdown (SIGTERM, SIGINT or :meth:`Master.stop`) stops every instance the
master started before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from deploy_scripts import DeployScripts, ServiceVersion
from fogverse.admin import KafkaAdmin
from fogverse.clients.confluent import BACKEND as CONFLUENT
from fogverse.config import connection_settings
from fogverse.constants import ENV_CONTROL_KEY
from fogverse.control import RolloutRequest
from master.config import MasterSettings, master_settings
from master.control_reader import ControlReader
from master.dispatcher import Dispatcher
from master.errors import MasterFailedError
from master.fleet_worker import fleet_enabled
from master.fog import FogScheduler
from master.http import StatusServer
from master.placement import InstancePlacer
from master.plan_book import PlanBook
from master.plans import StagePlan, plan_for_service
from master.rollout import Rollout, RolloutRefusedError, RolloutWorker
from master.rollout.validate import NeedsCheck
from master.state import StateStore
from master.state_restore import StateLedger, adopt_instances, restore_plans
from master.status import MasterStatus, MasterSummary, stage_statuses, to_json
from master.status_views import instance_statuses, node_statuses, task_counts
from master.wiring import (
    add_docker_provider,
    add_kubernetes_provider,
    add_local_provider,
    build_workers,
    check_providers,
)
from workers.base import BaseWorker
from workers.registry import InstanceRegistry, StageKey, stage_name

__all__ = ["TICK_SECONDS", "Master"]

log = logging.getLogger("fogverse.master")

_CONNECT_ATTEMPTS = 2
"""Tries to reach the cluster at start before giving up with BrokerUnavailableError."""

TICK_SECONDS = 0.25
"""How often workers tick; their own refresh rates decide how often they sample."""


class Master:
    """FogVerse's Master: heartbeats in, scaling decisions out.

    ``deploy_scripts`` holds the user's providers; a ``LOCAL`` provider for the
    declared LOCAL services is added unless one is registered already.
    ``observers`` are extra workers (FogVerse's name) that see every message.
    """

    def __init__(
        self,
        settings: MasterSettings | None = None,
        deploy_scripts: DeployScripts | None = None,
        observers: Sequence[BaseWorker] = (),
        *,
        consumer_topic: str | None = None,
        consumer_servers: str | None = None,
        consumer_group_id: str | None = None,
        possible_data_types: object = None,
    ) -> None:
        if settings is None:
            # FogVerse's hand-built Master: only the observers it is given.
            conf: dict[str, Any] = {
                "consumer_topic": consumer_topic, "consumer_servers": consumer_servers,
                "consumer_group_id": consumer_group_id, "included_worker": [],
            }
            settings = master_settings({k: v for k, v in conf.items() if v is not None})
        del possible_data_types  # FogVerse's decoder list: ours decodes every kind
        self.settings = settings
        self.deploy_scripts = deploy_scripts or DeployScripts()
        self.registry = InstanceRegistry(settings.instance_expiry_beats)
        self.admin: KafkaAdmin | None = None
        # One owner of placement: the deployer, the fleet's tasks and its AGENT
        # instances all ask this scheduler. With a fleet, its nodes are the agents
        # (this machine counts when an agent runs here); without, this machine is
        # the one node.
        self.scheduler = FogScheduler(coordinator_id=f"master-{settings.consumer_group_id}",
                                      local_node=not fleet_enabled(settings))
        workers = build_workers(settings, self.deploy_scripts, self.registry, _LazyAdmin(self),
                                self._read_lag, observers, StateLedger(lambda: self._store),
                                self.scheduler)
        self.statistic, self.input_output = workers.statistic, workers.input_output
        self.deployer, self.lock_worker = workers.deployer, workers.lock
        self.fleet = workers.fleet
        self.workers: list[BaseWorker] = workers.all
        self.plans = None if self.deployer is None else PlanBook(
            self.deployer, self.input_output, self.registry, max_plans=settings.max_plans,
            expiry=settings.plan_expiry, on_drop=self._forget_plan)
        self.dispatcher = Dispatcher(
            self.registry, self.workers, settings.services, control_key=settings.control_key,
            stale_after=settings.stale_after, max_clock_skew=settings.max_clock_skew,
            on_plan=self._on_requested_plan if self.deployer else None,
            on_rollout=self._on_rollout_request if self.deployer else None)
        self.reader = ControlReader(self._consumer_conf(), settings.consumer_topic,
                                    self.dispatcher.on_batch)
        self.placer = InstancePlacer(self.scheduler)
        self.rollouts: RolloutWorker | None = None
        """Runs rollouts (:meth:`rollout`); present with the auto-deployer."""
        if self.deployer is not None:
            self.deployer.actions.placer = self.placer.place
            self.rollouts = RolloutWorker(
                self.deployer, self.registry, settings.services, settings.rollout,
                save=self._save_rollout, validate=NeedsCheck(self.scheduler))
            self.workers.append(self.rollouts)
        self.http: StatusServer | None = None
        self.failure: BaseException | None = None
        """Why the master stopped on its own, if it did; :meth:`run` raises it."""
        self._store: StateStore | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._started_at = time.monotonic()
        self._closed = False
        self._blind_warned_at: float | None = None
        self._plan_declared_services()

    @property
    def ready(self) -> asyncio.Event:
        """Set once the master reads the control topic from a known position: a
        message written after that is seen (it reads from the latest offset)."""
        return self.reader.ready

    def rollout(self, service: str, to: str | ServiceVersion,
                strategy: str = "rolling") -> Rollout:
        """Roll ``service`` out to version ``to`` (a declared name or a ServiceVersion) by
        ``strategy`` (rolling, canary, blue-green); RolloutRefusedError says why not."""
        if self.rollouts is None:
            raise RolloutRefusedError("this master runs no auto_deployer: it deploys nothing")
        return self.rollouts.begin(service, to, strategy)

    def _on_rollout_request(self, request: RolloutRequest) -> None:
        self.rollout(request.service_name, request.version, request.strategy)

    def _save_rollout(self, rollout: Rollout) -> None:
        if self._store is not None:
            self._store.save_rollout(rollout)

    def _plan_declared_services(self) -> None:
        if self.plans is None:
            return
        for svc in self.settings.services.values():
            plan = plan_for_service(svc)
            if plan is not None:
                self.plans.declare(plan)
        if not self.settings.services:
            log.warning("no services declared: auto-scale requests will be refused "
                        "(declare them under 'services' in the master's config)")

    def _on_requested_plan(self, plan: StagePlan) -> None:
        assert self.plans is not None
        if self.plans.request(plan) and self._store is not None:
            self._store.save_plan(plan)

    def _forget_plan(self, stage: StageKey) -> None:
        if self._store is not None:
            self._store.drop_plan(stage)

    async def _read_lag(self, group_id: str, topic: str) -> int | None:
        return None if self.admin is None else await self.admin.group_lag(group_id, topic)

    def _consumer_conf(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.settings.consumer_servers,
            "group.id": self.settings.consumer_group_id,
            # Old heartbeats describe a past the master cannot act on; stages
            # repeat their requests, so starting at the end loses nothing.
            "auto.offset.reset": "latest",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 100,
            "logger": log,
            **connection_settings(self.settings.kafka_extra),
        }

    # -- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` or SIGTERM/SIGINT, then shut down cleanly.

        Raises :class:`MasterFailedError` (after shutting down) when the master
        stopped on its own: the control reader kept failing or a task of its own ended.
        """
        restore = self._install_signals()
        try:
            await self.start()
            await self._stopping.wait()
        finally:
            try:
                await self.close()
            finally:
                restore()
        if self.failure is not None:
            raise MasterFailedError(str(self.failure)) from self.failure

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from signal handlers)."""
        self._stopping.set()

    async def start(self) -> None:
        """Connect, restore plans, start the workers and the status server, start reading.

        Returns without waiting for the control topic's partitions: await
        :attr:`ready` before writing anything the master must see.
        """
        settings = self.settings
        self._started_at = time.monotonic()
        if not settings.control_key:
            log.warning("no control key (%s): the control plane is unauthenticated; anyone "
                        "who can write to %s can make this master deploy and stop instances "
                        "of the declared services", ENV_CONTROL_KEY, settings.consumer_topic)
        if self.deployer is not None:
            add_local_provider(settings, self.deploy_scripts)
            add_docker_provider(settings, self.deploy_scripts)
            add_kubernetes_provider(settings, self.deploy_scripts)
            check_providers(settings.services, self.deploy_scripts.providers)
        # One clear error for a wrong address, before any client retries for minutes.
        # The master administers topics with confluent-kafka whatever its stages use.
        probe = await CONFLUENT.connect(settings.consumer_servers, settings.kafka_extra,
                                        _CONNECT_ATTEMPTS, 0.5)
        await probe.close()
        self.admin = KafkaAdmin(
            settings.consumer_servers, connection_settings(settings.kafka_extra)
        )
        await self.admin.ensure_topic(settings.consumer_topic, 1, replicated=True)
        if self.plans is not None and settings.state_topic:
            await self._restore_state()
        await self.reader.open()
        for worker in self.workers:
            await worker.start()
        if settings.http_port is not None:
            self.http = StatusServer(self, settings.http_host, settings.http_port)
            await self.http.start()
        self._start_tasks()
        log.info("master reading %s on %s; workers: %s%s", settings.consumer_topic,
                 settings.consumer_servers, ", ".join(sorted(settings.workers)),
                 f"; status on http://{settings.http_host}:{self.http.port}/status, "
                 f"dashboard on {self.http.dashboard_url}" if self.http else "")

    def _start_tasks(self) -> None:
        self._tasks = [
            asyncio.create_task(self.reader.run(self._stopping), name="master-reader"),
            asyncio.create_task(self._tick_forever(), name="master-ticker"),
            asyncio.create_task(self._note_reading(), name="master-ready"),
        ]
        for task in self._tasks[:2]:
            task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """Reading and ticking end only at shutdown; any other end stops the master."""
        if self._stopping.is_set():
            return
        exc = None if task.cancelled() else task.exception()
        why = f"{task.get_name()} ended unexpectedly" + (f": {exc!r}" if exc else "")
        log.error("%s; stopping the master rather than run blind", why, exc_info=exc)
        self.failure = exc if exc is not None else MasterFailedError(why)
        self._stopping.set()

    async def _note_reading(self) -> None:
        await self.ready.wait()
        # The startup grace starts now, not at start(): before, nothing was heard.
        if self.deployer is not None:
            self.deployer.reading_from(time.monotonic())

    async def _restore_state(self) -> None:
        """Request the stored plans again, then adopt the stored instances still running."""
        assert self.admin is not None and self.plans is not None and self.deployer is not None
        settings = self.settings
        self._store = StateStore(settings.consumer_servers, settings.consumer_group_id,
                                 settings.state_topic, connection_settings(settings.kafka_extra),
                                 control_key=settings.control_key)
        state = await self._store.load(self.admin)
        restore_plans(self._store, state.plans, self.plans, settings.services,
                      settings.state_topic)
        await adopt_instances(self._store, self.deployer, self.deploy_scripts, state.instances,
                              settings.state_topic)
        assert self.rollouts is not None
        for rollout in state.rollouts:  # after adoption: which instance runs what is known
            self.rollouts.restore(rollout)

    async def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            await self.tick(time.monotonic())
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self, now: float) -> None:
        """Expire silent instances, then let every worker do its periodic work."""
        self._warn_if_blind(now)
        if self.plans is not None:
            self.plans.expire(now)
        for record in self.registry.expire(now):
            log.info("instance %s of %s expired: no heartbeat for %.1fs",
                     record.instance_id, stage_name(record.stage), now - record.last_seen)
        for worker in self.workers:
            try:
                await worker.tick(now)
            except Exception:
                log.exception("worker %s failed in tick; it keeps running", worker.name)
        if self.fleet is not None:
            return  # the fleet runs the scheduling passes: it carries out what they decide
        try:
            self.scheduler.schedule()
        except Exception:
            log.exception("the scheduler's pass failed; it runs again next tick")

    def _warn_if_blind(self, now: float) -> None:
        """Say once per silence that instances are kept alive because nothing arrives."""
        heard_at = self.registry.heard_at
        if heard_at is None or self._blind_warned_at == heard_at:
            return
        held = self.registry.blind(now)
        if not held:
            return
        self._blind_warned_at = heard_at
        log.warning("no control message of any kind for %.1fs: not expiring %d instance(s) "
                    "past their heartbeat deadline (the master may be the one not hearing; "
                    "they expire if the silence lasts %gs)", now - heard_at, len(held),
                    self.registry.blind_limit)

    def handle_raw(self, raw: bytes | None, now: float, wall: float) -> None:
        """Decode and dispatch one control message as if read at ``now``; never raises."""
        self.dispatcher.handle(raw, now, wall)

    # -- shutdown and status ----------------------------------------------------------------

    async def close(self) -> None:
        """Stop reading, stop every instance this master started, release everything."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for task in self._tasks:
            if task.get_name() != "master-reader":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in reversed(self.workers):
            try:
                await worker.stop()
            except Exception:
                log.exception("worker %s failed to stop cleanly", worker.name)
        if self.http is not None:
            await self.http.stop()
        await self.reader.close()
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self.admin is not None:
            self.admin.close()
        log.info("master stopped")

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        loop = asyncio.get_running_loop()
        signals = (signal.SIGTERM, signal.SIGINT)
        for sig in signals:
            loop.add_signal_handler(sig, self.stop)

        def restore() -> None:
            for sig in signals:
                loop.remove_signal_handler(sig)

        return restore

    def status(self) -> MasterStatus:
        """What /status renders (and /metrics reads): typed records, built now."""
        counters = self.dispatcher.counters()
        summary = MasterSummary(
            uptime_s=round(time.monotonic() - self._started_at, 1),
            control_topic=self.settings.consumer_topic,
            servers=self.settings.consumer_servers,
            workers=sorted(self.settings.workers), instances=len(self.registry),
            messages=counters.messages, malformed=counters.malformed, refused=counters.refused,
            control_plane="authenticated" if self.settings.control_key else "unauthenticated",
            state_rejected=dict(self._store.rejected) if self._store else {},
        )
        stages = stage_statuses(self.registry, self.deployer, self.input_output)
        scheduler = {**self.scheduler.get_system_status(),
                     "placements": [to_json(p) for p in self.placer.recent],
                     "placement_reasons": dict(self.placer.counts)}
        fleet = self.fleet.service.status() if self.fleet is not None else {}
        instances = instance_statuses(self.registry, self.deployer)
        deployer = self.deployer.status() if self.deployer is not None else None
        return MasterStatus(
            summary, stages, {w.name: w.status() for w in self.workers}, scheduler,
            instances=instances,
            nodes=node_statuses(self.scheduler.core, fleet.get("nodes", []), instances),
            tasks=task_counts(self.scheduler.get_system_status()["tasks"],
                              fleet.get("tasks", {})),
            decisions=deployer.decisions if deployer else [],
            scale_actions=deployer.scale_actions if deployer else [])


class _LazyAdmin:
    """The master's admin client, which exists only once the master has started."""

    def __init__(self, master: Master) -> None:
        self._master = master

    async def partition_count(self, topic: str) -> int | None:
        admin = self._master.admin
        return None if admin is None else await admin.partition_count(topic)

    async def ensure_partitions(self, topic: str, count: int) -> int:
        admin = self._master.admin
        if admin is None:
            raise RuntimeError("master not started")
        return await admin.ensure_partitions(topic, count)
