"""The Master process: reads the control topic, runs the workers, serves /status.

One asyncio loop. The control topic is read in batches on a dedicated thread, so
the loop only decodes (about 12 us a heartbeat) and dispatches. Workers tick
four times a second with the same monotonic ``now``. Deploy functions and admin
calls run in tasks and threads of their own: nothing the master waits for can
stop it from reading heartbeats.

Shutdown (SIGTERM, SIGINT or :meth:`Master.stop`) stops every instance the
master started before it returns.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, Message

from deploy_scripts import DeployScripts, LocalProvider, ServiceSpec
from fogverse.admin import KafkaAdmin
from fogverse.config import connection_settings
from fogverse.constants import ENV_BOOTSTRAP
from fogverse.control import (
    AutoScaleRequest,
    ControlDecodeError,
    Heartbeat,
    InstanceStopping,
    decode_control,
)
from fogverse.errors import FogVerseError
from fogverse.observer import ENV_CONTROL_KEY
from master.config import MasterSettings, Worker, master_settings
from master.http import StatusServer
from master.plans import RequestRefused, plan_for_request, plan_for_service
from master.state import PlanStore
from workers.auto_deployer import AutoDeployer, StagePlan
from workers.base import BaseWorker
from workers.input_output import InputOutputWorker
from workers.registry import InstanceRegistry, stage_name
from workers.statistic import StatisticWorker

__all__ = ["TICK_SECONDS", "Master", "MasterFailed"]

log = logging.getLogger("fogverse.master")

TICK_SECONDS = 0.25
"""How often workers tick; their own refresh rates decide how often they sample."""

_BATCH = 1000
_POLL_TIMEOUT = 0.2


class MasterFailed(FogVerseError):
    """The master stopped because it could no longer read or tick (it stopped its instances)."""


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
        self.statistic: StatisticWorker | None = None
        self.input_output: InputOutputWorker | None = None
        self.deployer: AutoDeployer | None = None
        self.lock_worker: Any = None
        self.http: StatusServer | None = None
        self.messages: Counter[str] = Counter()
        self.malformed: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._workers = self._build_workers(list(observers))
        self._hooked = [w for w in self._workers if _overrides(w, "on_heartbeat")]
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._consumer: KafkaConsumer | None = None
        self._store: PlanStore | None = None
        self._reader_pool: ThreadPoolExecutor | None = None
        self._started_at = time.monotonic()
        self._closed = False
        self._assigned = False
        self._reading = False
        self._blind_warned_at: float | None = None
        self.failure: BaseException | None = None
        """Why the master stopped on its own, if it did; :meth:`run` raises it."""
        self.read_retries = 5
        """Consecutive failed reads of the control topic before the master gives up."""
        self.read_backoff = 0.5
        """Seconds before the first retry of a failed read; doubles each time, to 8 s."""

    # -- wiring -----------------------------------------------------------------------

    def _build_workers(self, extra: list[BaseWorker]) -> list[BaseWorker]:
        chosen = self.settings.workers
        built: list[BaseWorker] = []
        if Worker.STATISTIC_WORKER in chosen:
            self.statistic = StatisticWorker(self.registry, self.settings.statistic)
            built.append(self.statistic)
        if Worker.INPUT_OUTPUT_WORKER in chosen:
            self.input_output = InputOutputWorker(
                self.registry, self.settings.input_output, self._read_lag
            )
            built.append(self.input_output)
        if Worker.AUTO_DEPLOYER in chosen:
            self._add_local_provider()
            self.deployer = AutoDeployer(
                self.deploy_scripts, self.registry, self.settings.deployer,
                statistic=self.statistic, input_output=self.input_output,
                admin=_LazyAdmin(self), wait_for_reader=True,
            )
            built.append(self.deployer)
            self._plan_declared_services()
        return built + extra

    def _add_local_provider(self) -> None:
        local = {
            name: ServiceSpec(
                name=name, module=svc.module, command=svc.command, env=dict(svc.env),
                cwd=svc.cwd, min_instance=svc.min_instance, max_instance=svc.max_instance,
            )
            for name, svc in self.settings.services.items() if svc.provider == "LOCAL"
        }
        if not local or "LOCAL" in self.deploy_scripts.providers:
            return
        base_env = {ENV_BOOTSTRAP: self.settings.consumer_servers,
                    "CONTROL_TOPIC": self.settings.consumer_topic}
        if self.settings.control_key:
            base_env[ENV_CONTROL_KEY] = self.settings.control_key.decode()
        self.deploy_scripts.set_deploy_functions(
            "LOCAL", LocalProvider(local, base_env, log_dir=self.settings.log_dir)
        )

    def _plan_declared_services(self) -> None:
        assert self.deployer is not None
        for svc in self.settings.services.values():
            plan = plan_for_service(svc)
            if plan is None:
                continue
            self.deployer.set_plan(plan)
            if self.input_output is not None:
                self.input_output.watch(plan.stage, plan.group_id)
        if not self.settings.services:
            log.warning("no services declared: auto-scale requests will be refused "
                        "(declare them under 'services' in the master's config)")

    async def _read_lag(self, group_id: str, topic: str) -> int | None:
        return None if self.admin is None else await self.admin.group_lag(group_id, topic)

    # -- running ----------------------------------------------------------------------

    async def run(self) -> None:
        """Run until :meth:`stop` or SIGTERM/SIGINT, then shut down cleanly.

        Raises :class:`MasterFailed` (after shutting down) when the master stopped
        on its own: the control reader kept failing or a task of its own ended.
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
            raise MasterFailed(str(self.failure)) from self.failure

    def stop(self) -> None:
        """Ask :meth:`run` to return (safe from signal handlers)."""
        self._stopping.set()

    async def start(self) -> None:
        """Connect, start the workers and the status server; return once reading."""
        settings = self.settings
        self._started_at = time.monotonic()
        self.admin = KafkaAdmin(
            settings.consumer_servers, connection_settings(settings.kafka_extra)
        )
        await self.admin.ensure_topic(settings.consumer_topic, 1)
        if self.deployer is not None and settings.state_topic:
            await self._restore_plans()
        self._consumer = KafkaConsumer(self._consumer_conf())
        self._consumer.subscribe([settings.consumer_topic], on_assign=self._on_assign)
        self._reader_pool = ThreadPoolExecutor(1, thread_name_prefix="master-control")
        for worker in self._workers:
            await worker.start()
        if Worker.DISTRIBUTED_LOCK_WORKER in settings.workers:
            await self._start_lock_worker()
        if settings.http_port is not None:
            self.http = StatusServer(self, settings.http_host, settings.http_port)
            await self.http.start()
        self._start_tasks()
        log.info("master reading %s on %s; workers: %s%s", settings.consumer_topic,
                 settings.consumer_servers, ", ".join(sorted(settings.workers)),
                 f"; status on http://{settings.http_host}:{self.http.port}/status"
                 if self.http else "")

    def _start_tasks(self) -> None:
        self._tasks = [asyncio.create_task(self._read_control(), name="master-reader"),
                       asyncio.create_task(self._tick_forever(), name="master-ticker")]
        for task in self._tasks:
            task.add_done_callback(self._task_ended)

    def _task_ended(self, task: asyncio.Task[None]) -> None:
        """Reading and ticking end only at shutdown; any other end stops the master."""
        if self._stopping.is_set():
            return
        exc = None if task.cancelled() else task.exception()
        why = f"{task.get_name()} ended unexpectedly" + (f": {exc!r}" if exc else "")
        log.error("%s; stopping the master rather than run blind", why, exc_info=exc)
        self.failure = exc if exc is not None else MasterFailed(why)
        self._stopping.set()

    async def _restore_plans(self) -> None:
        assert self.admin is not None
        settings = self.settings
        self._store = PlanStore(settings.consumer_servers, settings.consumer_group_id,
                                settings.state_topic, connection_settings(settings.kafka_extra))
        for stored in await self._store.load(self.admin):
            # The config may have changed since: the stored plan is a request
            # like any other and meets the same checks.
            try:
                plan = plan_for_request(_as_request(stored), settings.services)
            except RequestRefused as exc:
                log.warning("not restoring the plan for %s: %s", stage_name(stored.stage), exc)
                continue
            log.info("restored the plan for %s from %s", stage_name(plan.stage),
                     settings.state_topic)
            self._adopt(plan)

    def _adopt(self, plan: StagePlan) -> bool:
        assert self.deployer is not None
        changed = self.deployer.set_plan(plan)
        if self.input_output is not None:
            self.input_output.watch(plan.stage, plan.group_id)
        return changed

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

    async def _start_lock_worker(self) -> None:
        from workers.distributed_lock import DistributedLockWorker

        self.lock_worker = DistributedLockWorker(self.settings.lock_host, self.settings.lock_port)
        await self.lock_worker.start()

    async def _read_control(self) -> None:
        loop = asyncio.get_running_loop()
        consumer = self._consumer
        assert consumer is not None
        failures = 0
        while not self._stopping.is_set():
            try:
                batch: list[Message] = await loop.run_in_executor(
                    self._reader_pool, consumer.consume, _BATCH, _POLL_TIMEOUT
                )
            except Exception as exc:
                failures += 1
                if failures >= self.read_retries:
                    raise MasterFailed(f"reading the control topic failed {failures} times "
                                       f"in a row; last: {exc!r}") from exc
                delay = min(self.read_backoff * 2 ** (failures - 1), 8.0)
                log.warning("reading the control topic failed (%d of %d): %r; retrying in "
                            "%.1fs", failures, self.read_retries, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            now, wall = time.monotonic(), time.time()
            if not self._reading and (batch or self._assigned):
                self.reading_from(now)
            for msg in batch:
                err = msg.error()
                if err is None:
                    self.handle_raw(msg.value(), now, wall)
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.warning("control topic: %s", err)

    def _on_assign(self, consumer: Any, partitions: Any) -> None:
        # Runs on the reader thread, inside consume(); _read_control acts on it.
        self._assigned = True

    def reading_from(self, now: float) -> None:
        """The first batch was consumed: the startup grace starts now, not at start()."""
        self._reading = True
        if self.deployer is not None:
            self.deployer.reading_from(now)

    async def _tick_forever(self) -> None:
        while not self._stopping.is_set():
            await self.tick(time.monotonic())
            await asyncio.sleep(TICK_SECONDS)

    async def tick(self, now: float) -> None:
        """Expire silent instances, then let every worker do its periodic work."""
        self._warn_if_blind(now)
        for record in self.registry.expire(now):
            log.info("instance %s of %s expired: no heartbeat for %.1fs",
                     record.instance_id, stage_name(record.stage), now - record.last_seen)
        for worker in self._workers:
            try:
                await worker.tick(now)
            except Exception:
                log.exception("worker %s failed in tick; it keeps running", worker.name)

    def _warn_if_blind(self, now: float) -> None:
        """Say once per silence that instances are kept alive because nothing arrives."""
        held = self.registry.blind(now)
        heard_at = self.registry.heard_at
        if not held or heard_at is None or self._blind_warned_at == heard_at:
            return
        self._blind_warned_at = heard_at
        log.warning("no control message of any kind for %.1fs: not expiring %d instance(s) "
                    "past their heartbeat deadline (the master may be the one not hearing; "
                    "they expire if the silence lasts %gs)", now - heard_at, len(held),
                    self.registry.blind_limit)

    # -- messages -----------------------------------------------------------------------

    def handle_raw(self, raw: bytes | None, now: float, wall: float) -> None:
        """Decode and dispatch one control message; never raises."""
        self.registry.heard(now)  # any message, even one dropped below, proves we read
        try:
            msg = decode_control(raw, self.settings.control_key)
        except ControlDecodeError as exc:
            self._count_malformed(exc.reason, str(exc))
            return
        if wall - msg.sent_at > self.settings.stale_after:
            self._count_malformed("stale", f"{msg.kind} from {msg.sender} sent "
                                           f"{wall - msg.sent_at:.0f}s ago")
            return
        self.messages[msg.kind] += 1
        body = msg.body
        try:
            if isinstance(body, Heartbeat):
                self._on_heartbeat(body, now)
            elif isinstance(body, AutoScaleRequest):
                self._on_request(body, now)
            else:
                self._on_stopping(body, now)
        except Exception:
            self._count_malformed("handler_error", f"{msg.kind} from {msg.sender}")
            log.exception("handling %s from %s failed", msg.kind, msg.sender)

    def _count_malformed(self, reason: str, detail: str) -> None:
        self.malformed[reason] += 1
        count = self.malformed[reason]
        if count & (count - 1) == 0:  # 1st, 2nd, 4th, 8th...: visible, never a flood
            log.warning("dropped control message #%d of this kind: %s", count, detail)

    def _on_heartbeat(self, hb: Heartbeat, now: float) -> None:
        seen = self.registry.on_heartbeat(hb, now)
        if seen is None:
            return
        record, new = seen
        if new:
            log.info("instance %s of %r appeared on %s (%s)", hb.instance_id, hb.service_name,
                     hb.node_id or "?", stage_name(record.stage))
        for worker in self._hooked:
            worker.on_heartbeat(hb, now)

    def _on_request(self, request: AutoScaleRequest, now: float) -> None:
        if self.deployer is None:
            return
        try:
            plan = plan_for_request(request, self.settings.services)
        except RequestRefused as exc:
            self.refused[exc.reason] += 1
            count = self.refused[exc.reason]
            if count & (count - 1) == 0:
                log.warning("refused auto-scale request #%d: %s", count, exc)
            return
        if self._adopt(plan) and self._store is not None:
            self._store.save(plan)
        for worker in self._workers:
            worker.on_auto_scale_request(request, now)

    def _on_stopping(self, notice: InstanceStopping, now: float) -> None:
        record = self.registry.on_stopping(notice)
        if record is not None:
            log.info("instance %s of %s is stopping%s", notice.instance_id,
                     stage_name(record.stage), f": {notice.reason}" if notice.reason else "")
        for worker in self._workers:
            worker.on_instance_stopping(notice, now)

    # -- shutdown and status ----------------------------------------------------------------

    async def close(self) -> None:
        """Stop reading, stop every instance this master started, release everything."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        for task in self._tasks:
            if task.get_name() == "master-ticker":
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for worker in reversed(self._workers):
            try:
                await worker.stop()
            except Exception:
                log.exception("worker %s failed to stop cleanly", worker.name)
        if self.lock_worker is not None:
            await self.lock_worker.stop()
        if self.http is not None:
            await self.http.stop()
        if self._consumer is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._reader_pool, self._consumer.close)
        if self._reader_pool is not None:
            self._reader_pool.shutdown(wait=True)
        if self._store is not None:
            await asyncio.to_thread(self._store.close)
        if self.admin is not None:
            self.admin.close()
        log.info("master stopped")

    def _install_signals(self) -> Any:
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

    def status(self) -> dict[str, Any]:
        """Everything /status shows, as plain JSON-able values."""
        return {
            "master": {
                "uptime_s": round(time.monotonic() - self._started_at, 1),
                "control_topic": self.settings.consumer_topic,
                "servers": self.settings.consumer_servers,
                "workers": sorted(self.settings.workers),
                "instances": len(self.registry),
                "messages": dict(self.messages),
                "malformed": dict(self.malformed),
                "refused": dict(self.refused),
            },
            "stages": self._stage_status(),
            "topics": self.statistic.status()["topics"] if self.statistic else {},
            "decisions": list(self.deployer.decisions)[-50:] if self.deployer else [],
        }

    def _stage_status(self) -> list[dict[str, Any]]:
        keys = set(self.registry.stages())
        plans = self.deployer.status()["stages"] if self.deployer else {}
        if self.deployer is not None:
            keys |= set(self.deployer.stages())
        out = []
        for key in sorted(keys, key=stage_name):
            name = stage_name(key)
            rates = self.registry.stage_rates(key)
            assessment = self.input_output.assessment(key) if self.input_output else None
            out.append({
                "stage": name, "source_topic": key[0], "target_topic": key[1],
                "live": rates.live,
                "instances": sorted(r.instance_id for r in self.registry.instances(key)),
                "consumed_rate": round(rates.consumed, 3),
                "produced_rate": round(rates.produced, 3),
                "busy": None if rates.busy is None else round(rates.busy, 3),
                "assessment": assessment.as_dict() if assessment else None,
                "plan": plans.get(name),
            })
        return out


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


def _as_request(plan: StagePlan) -> AutoScaleRequest:
    return AutoScaleRequest(
        source_topic=plan.stage[0] or "", target_topic=plan.stage[1],
        service_name=plan.service_name, provider=plan.provider,
        max_instance=plan.max_instance, min_instance=plan.min_instance,
        extra_configs=dict(plan.extra_configs), group_id=plan.group_id,
    )


def _overrides(worker: BaseWorker, hook: str) -> bool:
    return getattr(type(worker), hook) is not getattr(BaseWorker, hook)

