"""Submit tasks and follow them from any process that can reach the brokers.

The master owns the tasks; this client only talks to it over Kafka: submissions
go to ``fogverse-tasks``, and the master's word on each task comes back on the
compacted ``fogverse-task-status`` topic, which the client reads from the start
in a background thread. :meth:`TaskClient.get_task_status` first reads up to the
topic's current end, so it never answers with something older than what the
master had published when it was called::

    with TaskClient("127.0.0.1:9092") as client:
        task_id = client.submit_task("resize", {"width": 64}, priority=7)
        status = client.wait(task_id, timeout=30)        # or: await client.result(task_id)
        print(status.state, status.node_id, status.result)
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer

from fogverse.batches import take_batch
from fogverse.config import connection_settings
from fogverse.constants import TASK_STATUS_TOPIC, TASKS_TOPIC
from fogverse.control import ControlDecodeError
from fogverse.tasks.topics import ensure_task_topics, partitions_of
from fogverse.wire.nodes import decode_fleet, encode_fleet
from fogverse.wire.tasks import FINAL_STATES, TaskCancel, TaskStatus, TaskSubmit

__all__ = ["TaskClient"]

log = logging.getLogger("fogverse.tasks")

_Waiter = tuple[asyncio.AbstractEventLoop, "asyncio.Future[TaskStatus]"]


class TaskClient:
    """Submits tasks to the master and tracks their status. Thread-safe."""

    def __init__(
        self,
        bootstrap: str,
        *,
        tasks_topic: str = TASKS_TOPIC,
        status_topic: str = TASK_STATUS_TOPIC,
        key: bytes | None = None,
        kafka_extra: Mapping[str, Any] | None = None,
        sender: str | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.tasks_topic = tasks_topic
        self.status_topic = status_topic
        self._key = key
        self._extra = connection_settings(kafka_extra or {})
        self.sender = sender or f"task-client-{uuid.uuid4().hex[:8]}"
        self._statuses: dict[str, TaskStatus] = {}
        self._positions: dict[int, int] = {}
        self._changed = threading.Condition()
        self._waiters: dict[str, list[_Waiter]] = {}
        self._stop = threading.Event()
        self._producer: KafkaProducer | None = None
        self._consumer: KafkaConsumer | None = None
        self._reader: threading.Thread | None = None
        self._probe: KafkaConsumer | None = None
        self._probe_lock = threading.Lock()
        self.malformed = 0

    # -- life --------------------------------------------------------------------------

    def start(self) -> TaskClient:
        """Make sure the topics exist and start following the status topic (idempotent)."""
        if self._reader is not None:
            return self
        ensure_task_topics(self.bootstrap, self.tasks_topic, self.status_topic, self._extra)
        self._producer = KafkaProducer({"bootstrap.servers": self.bootstrap, "linger.ms": 1,
                                        "logger": log, **self._extra})
        consumer = KafkaConsumer({
            "bootstrap.servers": self.bootstrap, "group.id": self.sender,
            "enable.auto.commit": False, "fetch.wait.max.ms": 50, "logger": log,
            **self._extra,
        })
        parts = partitions_of(consumer, self.status_topic)
        consumer.assign([TopicPartition(self.status_topic, p, OFFSET_BEGINNING) for p in parts])
        self._positions = dict.fromkeys(parts, 0)
        self._consumer = consumer
        # The reader thread owns the consumer; watermarks are asked of a second one.
        self._probe = KafkaConsumer({"bootstrap.servers": self.bootstrap,
                                     "group.id": self.sender, "enable.auto.commit": False,
                                     "logger": log, **self._extra})
        self._reader = threading.Thread(target=self._read, name="task-status", daemon=True)
        self._reader.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._reader is not None:
            self._reader.join(5.0)
            self._reader = None
        if self._producer is not None:
            self._producer.flush(5.0)
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def __enter__(self) -> TaskClient:
        return self.start()

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    # -- asking ------------------------------------------------------------------------

    def submit_task(
        self,
        task_type: str,
        payload: Any = None,
        *,
        priority: int = 3,
        cpu: float = 0.1,
        memory_mb: float = 0.0,
        gpu: bool = False,
        estimated_duration_s: float | None = None,
        input_size_mb: float | None = None,
        deadline: float | None = None,
        retry_limit: int = 3,
        strategy: str | None = None,
        task_id: str | None = None,
    ) -> str:
        """Send one task to the master; returns its id at once (delivery is in the background)."""
        task_id = task_id or uuid.uuid4().hex
        self._send(task_id, TaskSubmit(
            task_id=task_id, task_type=task_type, payload=payload, priority=priority, cpu=cpu,
            memory_mb=memory_mb, gpu=gpu, estimated_duration_s=estimated_duration_s,
            input_size_mb=input_size_mb, deadline=deadline, retry_limit=retry_limit,
            strategy=strategy,
        ))
        return task_id

    def cancel_task(self, task_id: str, reason: str = "") -> None:
        self._send(task_id, TaskCancel(task_id, reason))

    def _send(self, task_id: str, msg: TaskSubmit | TaskCancel) -> None:
        producer = self._started()
        producer.produce(self.tasks_topic, encode_fleet(msg, self.sender, self._key),
                         task_id.encode())
        producer.poll(0)

    def flush(self, timeout: float = 10.0) -> int:
        """Wait until submissions are delivered; returns how many are still queued."""
        left: int = self._started().flush(timeout)
        return left

    def get_task_status(self, task_id: str, timeout: float = 10.0) -> TaskStatus | None:
        """The master's latest word on ``task_id`` (None: it has said nothing about it)."""
        self._catch_up(timeout)
        with self._changed:
            return self._statuses.get(task_id)

    def list_tasks(self, state: str | None = None, timeout: float = 10.0) -> list[TaskStatus]:
        """Every task the master has published, oldest submission first."""
        self._catch_up(timeout)
        with self._changed:
            found = [s for s in self._statuses.values() if state is None or s.state == state]
        return sorted(found, key=lambda s: (s.submitted_at or 0.0, s.task_id))

    def wait(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        """Block until ``task_id`` reaches a final state; TimeoutError past ``timeout``."""
        self._started()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                status = self._statuses.get(task_id)
                if status is not None and status.state in FINAL_STATES:
                    return status
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(f"task {task_id} not finished after {timeout}s "
                                       f"(last state: {status.state if status else 'unknown'})")
                self._changed.wait(left)

    async def result(self, task_id: str, timeout: float | None = None) -> TaskStatus:
        """Await ``task_id``'s final status (completed, failed, expired or cancelled)."""
        self._started()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[TaskStatus] = loop.create_future()
        with self._changed:
            status = self._statuses.get(task_id)
            if status is not None and status.state in FINAL_STATES:
                return status
            self._waiters.setdefault(task_id, []).append((loop, future))
        return await asyncio.wait_for(future, timeout)

    # -- the status topic --------------------------------------------------------------

    def _started(self) -> KafkaProducer:
        if self._producer is None:
            raise RuntimeError("TaskClient not started: use start() or a with block")
        return self._producer

    def _catch_up(self, timeout: float) -> None:
        probe = self._probe
        if probe is None:
            raise RuntimeError("TaskClient not started: use start() or a with block")
        deadline = time.monotonic() + timeout
        targets = {p: self._high_watermark(probe, p, deadline) for p in list(self._positions)}
        with self._changed:
            while any(self._positions.get(p, 0) < high for p, high in targets.items()):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"could not read {self.status_topic} to its end "
                                       f"in {timeout}s")
                self._changed.wait(left)

    def _high_watermark(self, probe: KafkaConsumer, partition: int, deadline: float) -> int:
        # A new topic's leader can move once more after its metadata showed one:
        # NOT_LEADER and friends are retried until the caller's deadline.
        tp = TopicPartition(self.status_topic, partition)
        while True:
            try:
                with self._probe_lock:
                    return int(probe.get_watermark_offsets(tp, max(0.1, deadline -
                                                                   time.monotonic()))[1])
            except KafkaException as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"no end offset for {self.status_topic}: {exc}") from None
                time.sleep(0.1)

    def _read(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        try:
            while not self._stop.is_set():
                batch = take_batch(consumer, 500, 0.1)
                if batch:
                    self._apply(batch)
        finally:
            consumer.close()

    def _apply(self, batch: list[Any]) -> None:
        finished: list[tuple[TaskStatus, list[_Waiter]]] = []
        with self._changed:
            for msg in batch:
                if msg.error() is not None:
                    continue
                self._positions[msg.partition()] = msg.offset() + 1
                status = self._decode(msg.value())
                if status is None:
                    continue
                self._statuses[status.task_id] = status
                if status.state in FINAL_STATES and status.task_id in self._waiters:
                    finished.append((status, self._waiters.pop(status.task_id)))
            self._changed.notify_all()
        for status, waiters in finished:
            for loop, future in waiters:
                loop.call_soon_threadsafe(_settle, future, status)

    def _decode(self, raw: bytes | None) -> TaskStatus | None:
        if raw is None:
            return None  # a tombstone: the master forgot the task
        try:
            body = decode_fleet(raw, self._key).body
        except ControlDecodeError as exc:
            self.malformed += 1
            log.debug("dropped a status record: %s", exc)
            return None
        return body if isinstance(body, TaskStatus) else None


def _settle(future: asyncio.Future[TaskStatus], status: TaskStatus) -> None:
    if not future.done():
        future.set_result(status)

