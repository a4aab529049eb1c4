"""The node agent: reports this device's capacity and runs what the master places on it.

Over Kafka only. Every ``interval`` seconds the agent sends a
:class:`~fogverse.wire.nodes.NodeCapacity` on the nodes topic; it reads the
orders topic and obeys only orders addressed to its node id (and, when
``master`` is set, sent by that master; with a control key, only signed ones).
Everything else is counted in :attr:`Agent.dropped` and ignored. Orders older
than ``stale_after`` seconds are dropped too: a restarted agent must not run
what the master gave up on long ago.

The agent starts reading the orders topic at its end *before* its first report,
so it never replays old orders, and the master (which places work only on nodes
it has heard) never sends one it would miss.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fogverse.agent.handlers import TaskHandler
from fogverse.agent.instances import InstanceSupervisor
from fogverse.agent.probe import DeviceProbe
from fogverse.agent.profile import DeviceProfile, profile_from_env, read_profile_file
from fogverse.agent.runner import TaskRunner
from fogverse.clients.base import Backend, SyncProducer, TailReader
from fogverse.clients.choice import backend_for
from fogverse.config import connection_settings
from fogverse.constants import NODE_ORDERS_TOPIC, NODES_TOPIC
from fogverse.control import ControlDecodeError
from fogverse.errors import ConfigError
from fogverse.wire.nodes import (
    FleetBody,
    InstanceEvent,
    InstanceStart,
    InstanceStop,
    NodeCapacity,
    decode_fleet,
    encode_fleet,
)
from fogverse.wire.tasks import TaskAssignment, TaskRefusal, TaskRevoke

__all__ = ["Agent", "AgentSettings"]

log = logging.getLogger("fogverse.agent")

_REAP_S = 0.25
_CONNECT_ATTEMPTS = 5
_CONNECT_BACKOFF_S = 0.5


@dataclass(frozen=True)
class AgentSettings:
    node_id: str
    bootstrap: str
    master: str = ""
    """Sender id of the only master whose orders count; empty accepts any."""
    tags: tuple[str, ...] = ()
    max_tasks: int = 2
    interval: float = 2.0
    nodes_topic: str = NODES_TOPIC
    orders_topic: str = NODE_ORDERS_TOPIC
    key: bytes | None = None
    log_dir: Path | None = None
    stale_after: float = 60.0
    profile_file: Path | None = None
    """Re-read before every report, over the environment (see fogverse.agent.profile)."""
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    client: str | None = None
    """The Kafka client backend, as a stage's ``client`` setting (``FOGVERSE_CLIENT``)."""

    def __post_init__(self) -> None:
        if not self.node_id:
            raise ValueError("an agent needs a node id")
        if self.max_tasks < 0 or self.interval <= 0:
            raise ValueError("max_tasks must be >= 0 and interval > 0")


class Agent:
    """One device's agent; :meth:`run` until :meth:`stop` or SIGTERM."""

    def __init__(
        self,
        settings: AgentSettings,
        handlers: Mapping[str, TaskHandler],
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self._env = dict(os.environ if env is None else env)
        self.profile: DeviceProfile = profile_from_env(self._env)
        self.incarnation = uuid.uuid4().hex
        self.runner = TaskRunner(settings.node_id, handlers, settings.max_tasks, self.send)
        self.instances = InstanceSupervisor(settings.node_id, log_dir=settings.log_dir,
                                            parent_env=self._env)
        self.dropped: Counter[str] = Counter()
        self.ignored = 0
        """Orders for other nodes: normal, every agent reads the whole topic."""
        self.reports = 0
        self._probe = DeviceProbe()
        self._extra = connection_settings(settings.kafka_extra)
        self._producer: SyncProducer | None = None
        self._kafka: Backend | None = None
        self._stopping = asyncio.Event()

    # -- what the agent tells ----------------------------------------------------------

    def capacity(self) -> NodeCapacity:
        self._reload_profile()
        reading = self.profile.apply(self._probe.read())
        return NodeCapacity(
            node_id=self.settings.node_id, incarnation=self.incarnation,
            interval=self.settings.interval, tags=self.settings.tags,
            cpu_cores=reading.cpu_cores, cpu_percent=reading.cpu_percent,
            memory_total_mb=reading.memory_total_mb, memory_used_mb=reading.memory_used_mb,
            gpu=reading.gpu, gpu_memory_mb=reading.gpu_memory_mb,
            battery_powered=reading.battery_powered, battery_percent=reading.battery_percent,
            charging=reading.charging, thermal_state=reading.thermal_state,
            cpu_temp_c=reading.cpu_temp_c, network_type=reading.network_type,
            max_concurrent_tasks=self.settings.max_tasks,
            task_types=tuple(sorted(self.runner.handlers)),
            running_tasks=self.runner.running, running_instances=self.instances.running,
            profile=self.profile.name,
        )

    def _reload_profile(self) -> None:
        path = self.settings.profile_file
        if path is None:
            return
        try:
            self.profile = profile_from_env({**self._env, **read_profile_file(path)})
        except ConfigError as exc:  # keep reporting what we had; say why once per change
            log.warning("profile file ignored: %s", exc)

    def send(self, msg: FleetBody) -> None:
        """Queue one record for the master; thread-safe, never waits for the broker."""
        producer = self._producer
        if producer is None:
            return
        payload = encode_fleet(msg, self.settings.node_id, self.settings.key)
        producer.produce(self.settings.nodes_topic, payload, self.settings.node_id.encode())
        producer.poll(0)

    # -- life --------------------------------------------------------------------------

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Outside the main thread this fails: then whoever runs us calls stop().
            with contextlib.suppress(RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
        self._kafka = kafka = backend_for(self.settings.client)
        await self._ensure_topics(kafka)
        self._producer = kafka.sync_producer(self.settings.bootstrap, self._extra,
                                             {"linger.ms": 1})
        orders = await kafka.tail_reader(self.settings.bootstrap, self._extra,
                                         self.settings.orders_topic)
        reader = loop.create_task(self._read(orders))
        log.info("agent %s up (profile %s, handlers %s)", self.settings.node_id,
                 self.profile.name or "none", ", ".join(sorted(self.runner.handlers)) or "none")
        try:
            await self._beat()
        finally:
            await self._shutdown(reader)

    def stop(self) -> None:
        self._stopping.set()

    async def _ensure_topics(self, kafka: Backend) -> None:
        admin = await kafka.connect(self.settings.bootstrap, self._extra,
                                    _CONNECT_ATTEMPTS, _CONNECT_BACKOFF_S)
        try:
            await admin.ensure_topics([self.settings.nodes_topic, self.settings.orders_topic])
        finally:
            await admin.close()

    async def _beat(self) -> None:
        next_report = 0.0
        while not self._stopping.is_set():
            now = time.monotonic()
            if now >= next_report:
                self.send(await asyncio.to_thread(self.capacity))
                self.reports += 1
                next_report = now + self.settings.interval
            for event in self.instances.reap():
                log.info("instance %s exited (%s)", event.instance_id, event.exit_code)
                self.send(event)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), _REAP_S)

    async def _shutdown(self, reader: asyncio.Task[None]) -> None:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        for task_id in self.runner.running:
            self.send(TaskRefusal(self.settings.node_id, task_id, reason="agent_stopping",
                                  detail="the agent stopped before the task finished"))
        await self.runner.stop()
        for instance_id in self.instances.running:
            event = await asyncio.to_thread(self.instances.stop, instance_id, 10.0)
            if event is not None:
                self.send(event)
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, 5.0)
            closing = getattr(self._producer, "close", None)
            if callable(closing):
                await asyncio.to_thread(closing)

    # -- what the agent hears ----------------------------------------------------------

    async def _read(self, orders: TailReader) -> None:
        try:
            while True:
                for value in await orders.read():
                    self.handle_raw(value, time.time())
        finally:
            await orders.close()

    def handle_raw(self, raw: bytes | None, wall: float) -> None:
        """Decode one order and carry it out if it is for this node; never raises."""
        try:
            msg = decode_fleet(raw, self.settings.key)
        except ControlDecodeError as exc:
            self._drop(exc.reason, str(exc))
            return
        body = msg.body
        if not isinstance(body, TaskAssignment | TaskRevoke | InstanceStart | InstanceStop):
            self._drop("not_an_order", f"{msg.kind} from {msg.sender}")
            return
        if body.node_id != self.settings.node_id:
            self.ignored += 1
            return
        if self.settings.master and msg.sender != self.settings.master:
            self._drop("not_from_master", f"{msg.kind} from {msg.sender!r}")
            return
        if wall - msg.sent_at > self.settings.stale_after:
            self._drop("stale", f"{msg.kind} sent {wall - msg.sent_at:.0f}s ago")
            return
        self._obey(body)

    def _obey(self, order: TaskAssignment | TaskRevoke | InstanceStart | InstanceStop) -> None:
        if isinstance(order, TaskAssignment):
            self.runner.assign(order)
        elif isinstance(order, TaskRevoke):
            if self.runner.revoke(order.task_id):
                log.warning("task %s revoked by the master: %s", order.task_id, order.reason)
        elif isinstance(order, InstanceStart):
            event = self.instances.start(order)
            log.info("instance %s of %s: %s %s", order.instance_id, order.service_name,
                     event.state, event.detail)
            self.send(event)
        else:
            asyncio.get_running_loop().create_task(self._stop_instance(order))

    async def _stop_instance(self, order: InstanceStop) -> None:
        event = await asyncio.to_thread(self.instances.stop, order.instance_id, order.grace_s,
                                        order.hard)
        self.send(event or InstanceEvent(self.settings.node_id, order.instance_id, "stopped",
                                         detail="was not running here"))

    def _drop(self, reason: str, detail: str) -> None:
        self.dropped[reason] += 1
        count = self.dropped[reason]
        if count & (count - 1) == 0:  # 1st, 2nd, 4th...: visible, never a flood
            log.warning("dropped order #%d of this kind (%s): %s", count, reason, detail)
