"""The master's link to its node agents and task clients, over Kafka.

Reads agents' reports (``fogverse-nodes``) and clients' submissions
(``fogverse-tasks``); writes orders to agents (``fogverse-node-orders``, keyed by
node id) and each task's status (``fogverse-task-status``, compacted, keyed by
task id). Decisions belong to :class:`~master.tasks.TaskDesk` and the scheduler;
this module only carries messages, on one asyncio loop, with the reading done in a
thread so a slow broker never stalls a scheduling pass.

It resumes where the last master with its id left off (:mod:`master.fleet_reader`):
tasks submitted while no master ran are picked up, tasks it had queued or placed
are carried on (:mod:`master.task_recovery`), results sent meanwhile count. Until
it has caught up and heard its nodes for ``settle_s``, it judges no submission.
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

from confluent_kafka import Producer as KafkaProducer

from fogverse.admin import KafkaAdmin
from fogverse.config import connection_settings
from fogverse.constants import NODE_ORDERS_TOPIC, NODES_TOPIC, TASK_STATUS_TOPIC, TASKS_TOPIC
from fogverse.control import ControlDecodeError
from fogverse.tasks.topics import STATUS_TOPIC_CONFIG
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
from master.fleet_reader import FleetReader, Record, read_statuses
from master.fog import FogScheduler
from master.nodes import DEFAULT_MISSES, NodeBook
from master.tasks import TaskDesk

__all__ = ["DEFAULT_MASTER_ID", "FleetService", "FleetSettings"]

log = logging.getLogger("fogverse.master.fleet")

DEFAULT_MASTER_ID = "fogverse-master"
"""The sender id on the master's orders; agents started with ``--master`` check it."""

_COMMIT_S = 1.0


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
    """Capacity reports and instance events older than this are dropped (tasks never are)."""
    settle_s: float = 3.0
    """After starting, how long submissions wait for the nodes to be heard."""
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
        self._reader: FleetReader | None = None
        self._applied: dict[tuple[str, int], int] = {}
        self._committed: dict[tuple[str, int], int] = {}
        self._committing: asyncio.Task[None] | None = None
        self._started = 0.0
        self.ready = asyncio.Event()
        """Set once the topics are positioned: submissions and reports sent after this are heard."""

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
        s = self.settings
        await self._ensure_topics()
        self._producer = KafkaProducer({"bootstrap.servers": s.bootstrap,
                                        "linger.ms": 1, "logger": log, **self._extra})
        self.desk.recovery.settling = True
        self.desk.recovery.earlier = await asyncio.to_thread(
            read_statuses, s.bootstrap, s.status_topic, self._extra, s.key)
        reader = self._reader = FleetReader(s.bootstrap, s.master_id, s.nodes_topic,
                                            s.tasks_topic, s.stale_after, self._extra)
        await asyncio.to_thread(reader.open)
        loop = self._loop = asyncio.get_running_loop()
        thread = threading.Thread(
            target=reader.run, args=(lambda b: loop.call_soon_threadsafe(self.handle_batch, b),),
            daemon=True, name="master-fleet")
        thread.start()
        self._started = time.monotonic()
        self.ready.set()
        next_commit = self._started + _COMMIT_S
        try:
            while not self._stopping.is_set():
                self._tick()
                if time.monotonic() >= next_commit and self._committing is None:
                    next_commit = time.monotonic() + _COMMIT_S
                    self._commit_soon()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), s.tick_s)
        finally:
            if self._committing is not None:
                await asyncio.gather(self._committing, return_exceptions=True)
            self._commit_soon()
            if self._committing is not None:
                await asyncio.gather(self._committing, return_exceptions=True)
            reader.stop()
            await asyncio.to_thread(thread.join, 5.0)
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

    # -- committing --------------------------------------------------------------------

    def _commit_soon(self) -> None:
        """Commit how far every topic is safely applied, in a thread (it waits for the broker)."""
        offsets = self._safe_offsets()
        if offsets == self._committed or self._reader is None or self._producer is None:
            return
        self._committing = asyncio.get_running_loop().create_task(self._commit(offsets))

    def _safe_offsets(self) -> dict[tuple[str, int], int]:
        offsets = {key: offset + 1 for key, offset in self._applied.items()}
        tasks_topic = self.settings.tasks_topic
        for partition, offset in self.desk.unfinished.values():
            key = (tasks_topic, partition)
            if offset < offsets.get(key, offset + 1):
                offsets[key] = offset  # a task not finished: read it again after a restart
        return offsets

    async def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        assert self._reader is not None and self._producer is not None
        try:
            # What these messages made us say must be on the broker before we say
            # we are past them.
            left = await asyncio.to_thread(self._producer.flush, 10.0)
            if left == 0:
                self._reader.commit(offsets)
                self._committed = offsets
        except Exception as exc:  # the next round tries again
            log.warning("committing the fleet's offsets failed: %s", exc)
        finally:
            self._committing = None

    # -- hearing -----------------------------------------------------------------------

    def handle_batch(self, batch: list[Record]) -> None:
        """Apply a batch of messages, then schedule once; never raises."""
        now, wall = time.monotonic(), self.fog.now()
        applied = self._applied
        for record in batch:
            try:
                self._handle(record, now, wall)
            except Exception:  # one bad message must not stop the master's fleet
                self.malformed["handler_error"] += 1
                log.exception("handling a fleet message failed")
            applied[record.topic, record.partition] = record.offset
        self._tick()

    def _handle(self, record: Record, now: float, wall: float) -> None:
        try:
            msg = decode_fleet(record.value, self.settings.key)
        except ControlDecodeError as exc:
            self._count(exc.reason, str(exc))
            return
        body = msg.body
        age = max(0.0, time.time() - msg.sent_at)
        if isinstance(body, NodeCapacity | InstanceEvent) and age > self.settings.stale_after:
            self._count("stale", f"{msg.kind} from {msg.sender}")
            return
        if isinstance(body, NodeCapacity | InstanceEvent | TaskProgress | TaskResult
                      | TaskFailure | TaskRefusal) and msg.sender != body.node_id:
            self._count("sender_mismatch", f"{msg.kind} for {body.node_id} from {msg.sender}")
            return
        if isinstance(body, NodeCapacity):
            self._on_capacity(body, msg.sent_at, now - age, wall)
        elif isinstance(body, TaskSubmit):
            self.desk.on_submit(body, wall, wall, (record.partition, record.offset))
        elif isinstance(body, TaskCancel):
            self.desk.on_cancel(body, wall, wall)
        elif isinstance(body, TaskProgress | TaskResult | TaskFailure | TaskRefusal):
            self.desk.on_report(body, wall, wall)
        elif isinstance(body, InstanceEvent):
            for instance_listener in self.instance_listeners:
                instance_listener(body)
        else:
            self._count("not_for_master", msg.kind)

    def _on_capacity(self, report: NodeCapacity, sent_at: float, heard_at: float,
                     wall: float) -> None:
        outcome, moved = self.nodes.on_report(report, heard_at, wall, sent_at)
        self.desk.on_nodes_lost(moved, wall)
        if outcome == "restarted":
            self.desk.recovery.on_node_gone(report.node_id, wall, wall)
        if outcome != "rejected":
            self.desk.recovery.reconcile(report, sent_at, wall, wall)
        for listener in self.node_listeners:
            listener(report, outcome)

    def _tick(self) -> None:
        now, wall = time.monotonic(), self.fog.now()
        for node_id, moved in self.nodes.expire(now, wall):
            self.desk.on_nodes_lost(moved, wall)
            self.desk.recovery.on_node_gone(node_id, wall, wall)
            for listener in self.node_listeners:
                listener(NodeCapacity(node_id=node_id, incarnation="lost"), "lost")
        recovery = self.desk.recovery
        if (recovery.settling and self._reader is not None and self._reader.caught_up
                and now - self._started >= self.settings.settle_s):
            recovery.settle(wall, wall)
            log.info("fleet settled: %d node(s) heard, %d task(s) adopted, %d lost attempt(s)",
                     len(self.nodes.entries), recovery.adopted, recovery.lost_attempts)
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
            "revoked": dict(self.desk.recovery.revoked),
            "tasks_adopted": self.desk.recovery.adopted,
            "attempts_lost": self.desk.recovery.lost_attempts,
            "malformed": dict(self.malformed),
        }
