"""The master's reading of the fleet topics, resumed where the last master left off.

The master's consumer group (its ``master_id``) commits how far it has safely
applied each topic, so a master that starts (after a crash, or for the first
time while tasks wait) picks up from there:

- submissions (``fogverse-tasks``) from the committed offset, which never passes a
  task without a final status: whatever was queued or running when the last
  master died is read again, and what was submitted while none ran is read for
  the first time. A new group starts at the earliest offset;
- agents' reports (``fogverse-nodes``) from the committed offset, so results sent
  while no master listened still count; a new group starts at the reports of the
  last ``stale_after`` seconds (older capacity is stale anyway);
- the compacted status topic is read whole before anything else: each task's last
  published word, so a finished task is never run or reported again; then the
  submissions up to where they ended at the start, before any report, so a
  result read again finds its task known.

Offsets are committed only after everything the master produced because of them
is acknowledged by the broker (see :meth:`FleetReader.commit`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from confluent_kafka import Consumer as KafkaConsumer

from fogverse.batches import take_batch
from fogverse.control import ControlDecodeError
from fogverse.tasks.topics import partitions_of
from fogverse.wire.nodes import decode_fleet
from fogverse.wire.tasks import TaskStatus

__all__ = ["FleetReader", "Record", "read_statuses"]

log = logging.getLogger("fogverse.master.fleet")

_BATCH = 1000
_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def read_statuses(bootstrap: str, topic: str, extra: Mapping[str, Any],
                  key: bytes | None = None) -> dict[str, TaskStatus]:
    """Each task's last status on the compacted status topic, read to its current end."""
    consumer = KafkaConsumer({"bootstrap.servers": bootstrap, "group.id": "fogverse-unused",
                              "enable.auto.commit": False, "fetch.wait.max.ms": 20,
                              "logger": log, **extra})
    statuses: dict[str, TaskStatus] = {}
    try:
        ends = {}
        for partition in partitions_of(consumer, topic):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                       _TIMEOUT_S)
            if high > low:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        deadline = time.monotonic() + 6 * _TIMEOUT_S
        while ends:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic!r} to its end")
            for msg in take_batch(consumer, _BATCH, 0.2):
                if msg.error() is not None:
                    continue
                partition, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= ends.get(partition, 0):
                    ends.pop(partition, None)
                try:
                    body = decode_fleet(msg.value(), key).body
                except ControlDecodeError:
                    continue
                if isinstance(body, TaskStatus):
                    statuses[body.task_id] = body
    finally:
        consumer.close()
    return statuses


class FleetReader:
    """Owns the master's consumer of the nodes and tasks topics; runs on its own thread."""

    def __init__(self, bootstrap: str, group: str, nodes_topic: str, tasks_topic: str,
                 stale_after: float, extra: Mapping[str, Any]) -> None:
        self.topics = (nodes_topic, tasks_topic)
        self._stale_after = stale_after
        self._consumer = KafkaConsumer({
            "bootstrap.servers": bootstrap, "group.id": group,
            "enable.auto.commit": False, "fetch.wait.max.ms": 100, "logger": log, **extra,
        })
        self._behind: dict[tuple[str, int], int] = {}
        """Per partition, the end it had when we started: reached, the master has caught up."""
        self._done = threading.Event()
        self._to_commit: list[TopicPartition] | None = None
        self._later: list[TopicPartition] = []
        """The reports' partitions, assigned once the submissions are caught up."""
        self._guard = threading.Lock()

    def open(self) -> None:
        """Assign every partition at its resume position (blocking)."""
        consumer = self._consumer
        parts = [TopicPartition(t, p) for t in self.topics for p in partitions_of(consumer, t)]
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in consumer.committed(parts, timeout=_TIMEOUT_S)}
        since_ms = int((time.time() - self._stale_after) * 1000)
        nodes_topic = self.topics[0]
        fresh = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in parts
                 if tp.topic == nodes_topic and committed[tp.topic, tp.partition] < 0]
        by_time = {(tp.topic, tp.partition): tp.offset
                   for tp in consumer.offsets_for_times(fresh, timeout=_TIMEOUT_S)} if fresh else {}
        assignment = []
        for tp in parts:
            key = (tp.topic, tp.partition)
            low, high = consumer.get_watermark_offsets(tp, _TIMEOUT_S)
            start = committed[key]
            if start < 0 and tp.topic == nodes_topic:
                start = by_time.get(key, -1)
                start = high if start < 0 else start  # nothing that recent: from the end
            elif start < 0:
                start = low  # a new group reads the submissions from the earliest
            if start < high:
                self._behind[key] = high
            assignment.append(TopicPartition(tp.topic, tp.partition, start))
        tasks_topic = self.topics[1]
        if any(t == tasks_topic for t, _ in self._behind):
            self._later = [tp for tp in assignment if tp.topic == nodes_topic]
            assignment = [tp for tp in assignment if tp.topic == tasks_topic]
        consumer.assign(assignment)
        log.info("fleet topics resumed at %s", ", ".join(
            f"{tp.topic}[{tp.partition}]@{tp.offset}" for tp in (*assignment, *self._later)))

    @property
    def caught_up(self) -> bool:
        """Every partition read up to where it ended when the master started."""
        return not self._behind

    def run(self, deliver: Callable[[list[Record]], None]) -> None:
        """Read until :meth:`stop`, handing each batch to ``deliver`` (from this thread)."""
        consumer = self._consumer
        try:
            while not self._done.is_set():
                batch = [Record(m.topic() or "", m.partition() or 0, m.offset() or 0, m.value())
                         for m in take_batch(consumer, _BATCH, 0.05) if m.error() is None]
                if self._behind:
                    self._note_progress(batch)
                if batch:
                    deliver(batch)
                if self._later and not any(t == self.topics[1] for t, _ in self._behind):
                    consumer.incremental_assign(self._later)
                    self._later = []
                self._commit_pending(asynchronous=True)
        finally:
            self._commit_pending(asynchronous=False)
            consumer.close()

    def _note_progress(self, batch: list[Record]) -> None:
        for record in batch:
            key = (record.topic, record.partition)
            end = self._behind.get(key)
            if end is not None and record.offset + 1 >= end:
                del self._behind[key]
        if self._behind and not batch:
            # An end may have been compacted or deleted away: ask where we are.
            waiting = {(tp.topic, tp.partition) for tp in self._later}
            positions = self._consumer.position(
                [TopicPartition(t, p) for t, p in self._behind if (t, p) not in waiting])
            for tp in positions:
                if tp.offset >= self._behind.get((tp.topic, tp.partition), 0):
                    self._behind.pop((tp.topic, tp.partition), None)

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Have ``offsets`` (next offset to read, per partition) committed; any thread.

        The reading thread commits them: a consumer's commit waits on what only its
        own polling serves."""
        with self._guard:
            self._to_commit = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]

    def _commit_pending(self, asynchronous: bool) -> None:
        with self._guard:
            offsets, self._to_commit = self._to_commit, None
        if not offsets:
            return
        try:
            if asynchronous:
                self._consumer.commit(offsets=offsets, asynchronous=True)
            else:
                self._consumer.commit(offsets=offsets, asynchronous=False)
        except Exception as exc:  # the next commit carries the same offsets or later ones
            log.warning("committing the fleet's offsets failed: %s", exc)

    def stop(self) -> None:
        self._done.set()
