"""A stage's consumer on aiokafka: classic group protocol, eager rebalancing.

Every rebalance revokes all partitions (aiokafka has no cooperative or KIP-848
protocol). On revocation the stage commits what is finished and forgets the
rest: in-flight work of the revoked partitions is never committed from here
and is read again by whoever owns them next (at-least-once). A batch fetched
across a revocation is put back, as on the default backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from fogverse.clients.aio_producer import AioError
from fogverse.clients.base import ClientError, Fetched, Rebalance
from fogverse.context import MessageContext
from fogverse.offsets import CommitTracker, TopicPartitionKey

__all__ = ["AioConsumer"]

log = logging.getLogger("fogverse.kafka")

_ERROR_PAUSE_S = 0.2
"""After a failed fetch: the client reconnects meanwhile; do not spin on the error."""


class AioConsumer:
    """A group member on aiokafka, reading batches with ``getmany``."""

    def __init__(self, options: dict[str, Any], tracker: CommitTracker, timeout: float,
                 size: Callable[[], int], on_error: Callable[[ClientError], None],
                 name: str) -> None:
        self.native = AIOKafkaConsumer(**options)
        self._tracker = tracker
        self._timeout_ms = max(1, int(timeout * 1000))
        self._size = size
        self._on_error = on_error
        self._name = name
        self._started = False
        self._commits: set[asyncio.Task[bool]] = set()

    async def start(self) -> None:
        if not self._started:
            await self.native.start()
            self._started = True

    def subscribe(self, topics: list[str], *, listener: Rebalance,
                  read_latest: bool = False) -> None:
        self.native.subscribe(topics, listener=_Listener(self, listener, read_latest))

    async def fetch(self) -> Fetched:
        tracker = self._tracker
        born = tracker.revocations
        try:
            records = await self.native.getmany(timeout_ms=self._timeout_ms,
                                                max_records=self._size())
        except KafkaError as exc:
            self._on_error(AioError(exc))
            await asyncio.sleep(_ERROR_PAUSE_S)
            return [], tracker.revocations
        if records and tracker.revocations != born:
            # A rebalance ran while these were read: read them again instead.
            self._rewind(records)
            return [], tracker.revocations
        batch: list[MessageContext] = []
        append = batch.append
        for tp, messages in records.items():
            topic, partition = tp.topic, tp.partition
            for m in messages:
                append(MessageContext(m.value, m.key, list(m.headers), topic, partition,
                                      m.offset, m.timestamp))
        return batch, born

    def _rewind(self, records: Mapping[TopicPartition, list[Any]]) -> None:
        for tp, messages in records.items():
            if messages:
                # A partition no longer ours refuses: its new owner reads it anyway.
                with contextlib.suppress(IllegalStateError, AssertionError):
                    self.native.seek(tp, messages[0].offset)

    def commit_soon(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        task = asyncio.get_running_loop().create_task(self.commit(positions))
        self._commits.add(task)
        task.add_done_callback(self._commits.discard)
        return True

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        offsets = {TopicPartition(t, p): o for (t, p), o in positions.items()}
        try:
            await self.native.commit(offsets)
        except (KafkaError, IllegalStateError) as exc:
            # Only the commit is lost: a later one covers these positions, or
            # the new owner re-reads them (at-least-once).
            log.warning("%s: commit failed: %r", self._name, exc)
            return False
        return True

    def assignment(self) -> list[TopicPartitionKey]:
        return [(tp.topic, tp.partition) for tp in self.native.assignment()]

    async def lag(self) -> int | None:
        lag, known = 0, False
        for tp in self.native.assignment():
            # Known once a fetch of this partition came back; until then its
            # position might still need a request to the broker, so it is skipped.
            high = self.native.highwater(tp)
            if high is None:
                continue
            lag += max(0, high - await self.native.position(tp))
            known = True
        return lag if known else None

    async def close(self) -> None:
        if self._commits:
            await asyncio.gather(*self._commits, return_exceptions=True)
        if self._started:
            await self.native.stop()
            self._started = False


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: AioConsumer, stage: Rebalance, read_latest: bool) -> None:
        self._consumer = consumer
        self._stage = stage
        self._read_latest = read_latest

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        ready = self._stage.revoked(_keys(revoked))
        if ready:
            await self._consumer.commit(ready)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._stage.assigned(_keys(assigned))
        if self._read_latest and assigned:
            await latest_start(self._consumer, assigned)


async def latest_start(consumer: AioConsumer, partitions: set[TopicPartition]) -> None:
    """``read_latest`` as on the default backend (fogverse.clients.confluent_latest).

    A partition with a commit resumes there (aiokafka does that itself); one
    without starts at its end only while the group has no commit on its topic
    (that end is committed at once), else at its beginning: it was added since.
    """
    native = consumer.native
    try:
        topics = {tp.topic for tp in partitions}
        every = [TopicPartition(t, p) for t in topics
                 for p in sorted(native.partitions_for_topic(t) or ())]
        offsets = await asyncio.gather(*(native.committed(tp) for tp in every))
        committed = {tp: off for tp, off in zip(every, offsets, strict=True) if off is not None}
        seen = {tp.topic for tp in committed}
        fresh = [tp for tp in partitions if tp not in committed]
        added = [tp for tp in fresh if tp.topic in seen]
        new = [tp for tp in fresh if tp.topic not in seen]
        if added:
            await native.seek_to_beginning(*added)
        if new:
            ends = await native.end_offsets(new)
            for tp in new:
                native.seek(tp, ends[tp])
            await consumer.commit({(tp.topic, tp.partition): ends[tp] for tp in new})
    except KafkaError as exc:
        # auto_offset_reset=latest then decides, as it would for a new group.
        log.warning("read_latest: could not read the group's commits: %r", exc)


def _keys(partitions: set[TopicPartition]) -> list[TopicPartitionKey]:
    return sorted((tp.topic, tp.partition) for tp in partitions)
