"""The confluent-kafka (librdkafka) backend: the default, and the fastest.

The producer hands librdkafka's own bound methods through, so the hot path
calls C directly as it did before there was a second backend.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fogverse.clients.base import ClientError, Fetched, Rebalance
from fogverse.clients.confluent_conf import admin_conf, consumer_conf, producer_conf
from fogverse.clients.confluent_fetch import Fetcher
from fogverse.clients.confluent_latest import latest_start
from fogverse.clients.confluent_tail import ConfluentTail
from fogverse.clients.errors import with_retries
from fogverse.config import StageConfig
from fogverse.constants import CLIENT_CONFLUENT
from fogverse.offsets import CommitTracker, TopicPartitionKey

__all__ = ["BACKEND", "ConfluentAdmin", "ConfluentBackend", "ConfluentConsumer",
           "ConfluentProducer"]

log = logging.getLogger("fogverse.kafka")


class ConfluentProducer:
    """A stage's producer: librdkafka queues, its thread sends, ``poll`` reports."""

    def __init__(self, native: KafkaProducer) -> None:
        self.native = native
        # The bound methods themselves: no Python frame between the stage and C.
        self.produce: Callable[..., None] = native.produce
        self.poll: Callable[..., int] = native.poll

    async def room(self) -> None:
        # produce() raises BufferError when full; the runtime polls then.
        return None

    async def flush(self, timeout: float) -> int:
        left: int = await asyncio.to_thread(self.native.flush, timeout)
        return left

    async def close(self) -> None:
        return None


class ConfluentConsumer:
    """A stage's consumer; rebalance callbacks run on the fetch thread."""

    def __init__(self, native: KafkaConsumer, config: StageConfig, fetcher: Fetcher,
                 name: str) -> None:
        self.native = native
        self._config = config
        self._fetcher = fetcher
        self._name = name
        self._listener: Rebalance | None = None
        self._read_latest = False

    async def start(self) -> None:
        return None

    def subscribe(self, topics: list[str], *, listener: Rebalance,
                  read_latest: bool = False) -> None:
        self._listener, self._read_latest = listener, read_latest
        self.native.subscribe(topics, on_assign=self._on_assign, on_revoke=self._on_revoke,
                              on_lost=self._on_lost)

    def memberid(self) -> str | None:
        """The group member id once joined (ConsumerStart waits for it)."""
        member: str | None = self.native.memberid()
        return member

    async def fetch(self) -> Fetched:
        return await self._fetcher.next()

    def commit_soon(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        return self._commit(positions, asynchronous=True)

    async def commit(self, positions: Mapping[TopicPartitionKey, int]) -> bool:
        return self._commit(positions, asynchronous=False)

    def _commit(self, positions: Mapping[TopicPartitionKey, int], asynchronous: bool) -> bool:
        offsets = [TopicPartition(t, p, o) for (t, p), o in positions.items()]
        try:
            self.native.commit(offsets=offsets, asynchronous=asynchronous)  # type: ignore[call-overload]
        except KafkaException as exc:
            # Only the commit is lost: a later commit covers these positions, or
            # the new owner re-reads them (at-least-once).
            log.warning("%s: commit failed: %s", self._name, exc)
            return False
        return True

    def assignment(self) -> list[TopicPartitionKey]:
        return [(tp.topic, tp.partition) for tp in self.native.assignment()]

    async def lag(self) -> int | None:
        # Both calls read librdkafka's local state: no request to the broker.
        lag, known = 0, False
        for tp in self.native.position(self.native.assignment()):
            _low, high = self.native.get_watermark_offsets(tp, cached=True)
            if tp.offset >= 0 and high >= 0:
                lag += max(0, high - tp.offset)
                known = True
        return lag if known else None

    async def close(self) -> None:
        await self._fetcher.close()
        await asyncio.to_thread(self.native.close)

    def _on_assign(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        assert self._listener is not None
        self._listener.assigned(_keys(partitions))
        if not self._read_latest or not latest_start(consumer, partitions):
            return
        if self._config.group_protocol == "consumer" or _cooperative(self._config):
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _on_revoke(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        assert self._listener is not None
        ready = self._listener.revoked(_keys(partitions))
        if ready:
            self._commit(ready, asynchronous=False)

    def _on_lost(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        assert self._listener is not None
        self._listener.lost(_keys(partitions))


class ConfluentAdmin:
    """Topic creation for a starting stage."""

    def __init__(self, native: AdminClient) -> None:
        self.native = native

    async def ensure_topics(self, topics: list[str]) -> None:
        admin = self.native
        metadata = await asyncio.to_thread(admin.list_topics, timeout=10)
        missing = sorted({t for t in topics if t not in metadata.topics})
        if not missing:
            return
        futures = admin.create_topics([NewTopic(t, num_partitions=1) for t in missing])
        for topic, future in futures.items():
            try:
                await asyncio.wrap_future(future)
            except KafkaException as exc:
                error = exc.args[0] if exc.args else None
                # Another stage created it meanwhile: that is what we wanted.
                if not (isinstance(error, KafkaError) and
                        error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                    raise
            log.debug("created topic %s", topic)

    async def close(self) -> None:
        return None


class ConfluentBackend:
    name = CLIENT_CONFLUENT

    async def connect(self, servers: str, extra: Mapping[str, Any], attempts: int,
                      backoff: float) -> ConfluentAdmin:
        admin = AdminClient(admin_conf(servers, dict(extra)))
        async def once(pause: float) -> ConfluentAdmin:
            await asyncio.to_thread(admin.list_topics, timeout=max(pause, 2.0))
            return ConfluentAdmin(admin)

        return await with_retries(servers, attempts, backoff, once, (KafkaException,))

    def consumer(self, config: StageConfig, group_id: str, client_id: str,
                 tracker: CommitTracker, size: Callable[[], int],
                 on_error: Callable[[ClientError], None], name: str) -> ConfluentConsumer:
        conf = consumer_conf(config, group_id, client_id)
        conf.setdefault("on_commit", _commit_logger(name))
        native = KafkaConsumer(conf)
        fetcher = Fetcher(native, tracker, config.fetch_timeout, size, on_error, name)
        return ConfluentConsumer(native, config, fetcher, name)

    async def producer(self, config: StageConfig, client_id: str) -> ConfluentProducer:
        return ConfluentProducer(KafkaProducer(producer_conf(config, client_id)))

    def sync_producer(self, servers: str, extra: Mapping[str, Any],
                      options: Mapping[str, Any]) -> KafkaProducer:
        conf: dict[str, Any] = {"bootstrap.servers": servers, "logger": log, **options}
        conf.update(extra)
        return KafkaProducer(conf)

    async def tail_reader(self, servers: str, extra: Mapping[str, Any],
                          topic: str) -> ConfluentTail:
        return await ConfluentTail.open(servers, extra, topic)


def _commit_logger(name: str) -> Callable[[KafkaError | None, list[TopicPartition]], None]:
    def on_commit(err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("%s: commit failed: %s", name, err)
    return on_commit


def _keys(partitions: list[TopicPartition]) -> list[TopicPartitionKey]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _cooperative(config: StageConfig) -> bool:
    strategy = {**config.kafka_extra, **config.consumer_extra}.get(
        "partition.assignment.strategy", "cooperative-sticky"
    )
    return "cooperative" in str(strategy)


BACKEND = ConfluentBackend()
