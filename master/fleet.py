"""The master's link to its node agents and task clients, over Kafka.

Reads agents' reports (``fogverse-nodes``) and clients' submissions
(``fogverse-tasks``); writes orders to agents (``fogverse-node-orders``, keyed by
node id) and each task's status (``fogverse-task-status``, compacted, keyed by
task id). Decisions belong to :class:`~master.tasks.TaskDesk` and the scheduler;
this module only carries messages, on one asyncio loop, with the reading done in a
thread so a slow broker never stalls a scheduling pass.

It reads both topics from their end when it starts: a capacity report older
than that is stale anyway, and tasks submitted while no master ran are not
picked up (clients see no status for them and may submit again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka import TopicPartition

from fogverse.admin import KafkaAdmin
from fogverse.config import connection_settings
from fogverse.constants import NODE_ORDERS_TOPIC, NODES_TOPIC, TASK_STATUS_TOPIC, TASKS_TOPIC
from fogverse.control import ControlDecodeError
from fogverse.tasks.topics import STATUS_TOPIC_CONFIG, partitions_of
from fogverse.wire.nodes import (
    FleetBody,
    InstanceEvent,
    InstanceStart,
    InstanceStop,
    NodeCapacity,
    decode_fleet,
    encode_fleet,
)
from fogverse.wire.tasks import (
    TaskCancel,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
    TaskStatus,
    TaskSubmit,
)
from master.fog import FogScheduler
from master.nodes import DEFAULT_MISSES, NodeBook
from master.tasks import TaskDesk

__all__ = ["DEFAULT_MASTER_ID", "FleetService", "FleetSettings"]

log = logging.getLogger("fogverse.master.fleet")

DEFAULT_MASTER_ID = "fogverse-master"
"""The sender id on the master's orders; agents started with ``--master`` check it."""

_BATCH = 1000
_POLL_S = 0.05


@dataclass(frozen=True)
class FleetSettings:
    bootstrap: str
    master_id: str = DEFAULT_MASTER_ID
    nodes_topic: str = NODES_TOPIC
    orders_topic: str = NODE_ORDERS_TOPIC
    tasks_topic: str = TASKS_TOPIC
    status_topic: str = TASK_STATUS_TOPIC
    key: bytes | None = None
    misses: int = DEFAULT_MISSES
    tick_s: float = 0.1
    """Scheduling passes run after every batch of messages, and at least this often."""
    stale_after: float = 30.0
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)


InstanceListener = Callable[[InstanceEvent], None]
NodeListener = Callable[[NodeCapacity, str], None]
"""Called with each report and what it meant: "new", "restarted", "updated",
"rejected", or "lost" (then with an empty report naming the node)."""


class FleetService:
    """Runs with the master (or alone, for tests and benchmarks) until :meth:`stop`.

    ``fog`` is the Master's scheduler (one owner of placement: tasks, AGENT
    instances and the deployer's placements all ask it); alone, the service makes
    one without a local node. Its core's clock is the scheduler's (epoch seconds);
    liveness is judged on the monotonic clock.
    """

    def __init__(self, settings: FleetSettings, fog: FogScheduler | None = None) -> None:
        self.settings = settings
        self.fog = fog or FogScheduler(coordinator_id=settings.master_id)
        self.scheduler = self.fog.core
        self.nodes = NodeBook(self.scheduler, settings.misses)
        self.desk = TaskDesk(self.scheduler, self.nodes, self._send, self._send)
        self.malformed: Counter[str] = Counter()
        self.instance_listeners: list[InstanceListener] = []
        self.node_listeners: list[NodeListener] = []
        self._extra = connection_settings(settings.kafka_extra)
        self._producer: KafkaProducer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = asyncio.Event()
        self._reader_done = threading.Event()
        self.ready = asyncio.Event()
        """Set once the topics are read from their end: orders sent after this are heard."""

    # -- sending -----------------------------------------------------------------------

    def _send(self, msg: FleetBody) -> None:
        producer = self._producer
        if producer is None:
            raise RuntimeError("the fleet service is not running")
        if isinstance(msg, TaskStatus):
            topic, key = self.settings.status_topic, msg.task_id
        else:
            topic, key = self.settings.orders_topic, getattr(msg, "node_id", "")
        payload = encode_fleet(msg, self.settings.master_id, self.settings.key)
        while True:
            try:
                producer.produce(topic, payload, key.encode())
                break
            except BufferError:  # the local queue is full: let librdkafka deliver some
                producer.poll(0.05)
        producer.poll(0)

    def send_instance_order(self, order: InstanceStart | InstanceStop) -> None:
        """Tell a node to start or stop an instance (the AGENT provider's way out)."""
        self._send(order)

    # -- the AGENT provider's view (thread-safe) ---------------------------------------

    def place_instance(self, service: str, avoid: tuple[str, ...] = ()) -> str | None:
        """The scheduler's node for a new instance of ``service`` (None: none can take it).

        Called from deploy threads; the scheduler is only touched on the loop.
        """
        loop = self._loop
        if loop is None:
            return None
        future = asyncio.run_coroutine_threadsafe(self._place(avoid), loop)
        return future.result(30)

    async def _place(self, avoid: tuple[str, ...]) -> str | None:
        node = self.fog.place(avoid=avoid)
        # Only an agent can run an instance: the master's own machine counts when
        # an agent runs on it (and then reports under its own id).
        return node if node in self.nodes.entries else None

    def node_score(self, node_id: str) -> float | None:
        record = self.scheduler.nodes.get(node_id)
        return None if record is None else float(record.key)

    def add_instance_listener(self, listener: InstanceListener) -> None:
        self.instance_listeners.append(listener)

    # -- life --------------------------------------------------------------------------

    async def run(self) -> None:
        await self._ensure_topics()
        self._producer = KafkaProducer({"bootstrap.servers": self.settings.bootstrap,
                                        "linger.ms": 1, "logger": log, **self._extra})
        consumer = await asyncio.to_thread(self._consumer)
        loop = self._loop = asyncio.get_running_loop()
        reader = threading.Thread(target=self._read, args=(consumer, loop), daemon=True,
                                  name="master-fleet")
        reader.start()
        self.ready.set()
        try:
            while not self._stopping.is_set():
                self._tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self.settings.tick_s)
        finally:
            self._reader_done.set()
            await asyncio.to_thread(reader.join, 5.0)
            await asyncio.to_thread(self._producer.flush, 5.0)

    def stop(self) -> None:
        self._stopping.set()

    async def _ensure_topics(self) -> None:
        admin = KafkaAdmin(self.settings.bootstrap, self._extra)
        s = self.settings
        try:
            for topic in (s.nodes_topic, s.orders_topic, s.tasks_topic):
                await admin.ensure_topic(topic)
            await admin.ensure_topic(s.status_topic, config=STATUS_TOPIC_CONFIG)
        finally:
            admin.close()

    def _consumer(self) -> KafkaConsumer:
        consumer = KafkaConsumer({
            "bootstrap.servers": self.settings.bootstrap, "group.id": self.settings.master_id,
            "enable.auto.commit": False, "fetch.wait.max.ms": 20, "logger": log,
            **self._extra,
        })
        assignment = []
        for topic in (self.settings.nodes_topic, self.settings.tasks_topic):
            for partition in partitions_of(consumer, topic):
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 15)
                assignment.append(TopicPartition(topic, partition, high))
        consumer.assign(assignment)
        return consumer

    def _read(self, consumer: KafkaConsumer, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while not self._reader_done.is_set():
                batch = [m.value() for m in consumer.consume(_BATCH, _POLL_S)
                         if m.error() is None]
                if batch:
                    loop.call_soon_threadsafe(self.handle_batch, batch)
        finally:
            consumer.close()

    # -- hearing -----------------------------------------------------------------------

    def handle_batch(self, batch: list[bytes | None]) -> None:
        """Apply a batch of messages, then schedule once; never raises."""
        now, wall = time.monotonic(), self.fog.now()
        for raw in batch:
            try:
                self._handle(raw, now, wall)
            except Exception:  # one bad message must not stop the master's fleet
                self.malformed["handler_error"] += 1
                log.exception("handling a fleet message failed")
        self._tick()

    def _handle(self, raw: bytes | None, now: float, wall: float) -> None:
        try:
            msg = decode_fleet(raw, self.settings.key)
        except ControlDecodeError as exc:
            self._count(exc.reason, str(exc))
            return
        if wall - msg.sent_at > self.settings.stale_after:
            self._count("stale", f"{msg.kind} from {msg.sender}")
            return
        body = msg.body
        if isinstance(body, NodeCapacity | InstanceEvent | TaskProgress | TaskResult
                      | TaskFailure | TaskRefusal) and msg.sender != body.node_id:
            self._count("sender_mismatch", f"{msg.kind} for {body.node_id} from {msg.sender}")
            return
        if isinstance(body, NodeCapacity):
            outcome, moved = self.nodes.on_report(body, now, wall)
            self.desk.on_nodes_lost(moved, wall)
            for listener in self.node_listeners:
                listener(body, outcome)
        elif isinstance(body, TaskSubmit):
            self.desk.on_submit(body, wall, wall)
        elif isinstance(body, TaskCancel):
            self.desk.on_cancel(body, wall, wall)
        elif isinstance(body, TaskProgress | TaskResult | TaskFailure | TaskRefusal):
            self.desk.on_report(body, wall, wall)
        elif isinstance(body, InstanceEvent):
            for instance_listener in self.instance_listeners:
                instance_listener(body)
        else:
            self._count("not_for_master", msg.kind)

    def _tick(self) -> None:
        now, wall = time.monotonic(), self.fog.now()
        for node_id, moved in self.nodes.expire(now, wall):
            self.desk.on_nodes_lost(moved, wall)
            for listener in self.node_listeners:
                listener(NodeCapacity(node_id=node_id, incarnation="lost"), "lost")
        self.desk.tick(wall, wall)

    def _count(self, reason: str, detail: str) -> None:
        self.malformed[reason] += 1
        count = self.malformed[reason]
        if count & (count - 1) == 0:
            log.warning("dropped fleet message #%d of this kind (%s): %s", count, reason, detail)

    # -- showing -----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """For /status: the nodes as the agents describe them and the task queue."""
        return {
            "nodes": self.nodes.status(),
            "tasks": self.desk.queue_status(),
            "nodes_lost": self.nodes.lost_total,
            "agent_restarts": self.nodes.restarts,
            "reports_rejected": dict(self.nodes.rejected),
            "reports_ignored": dict(self.desk.ignored),
            "refusals": dict(self.desk.refused),
            "malformed": dict(self.malformed),
        }
