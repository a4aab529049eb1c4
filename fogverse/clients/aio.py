"""The aiokafka backend: pure Python, for devices where librdkafka has no wheel.

It speaks the classic group protocol with eager rebalancing only; the README's
table lists what differs from the default backend.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from fogverse.clients.aio_conf import (
    admin_options,
    consumer_options,
    producer_options,
    translate,
)
from fogverse.clients.aio_consumer import AioConsumer
from fogverse.clients.aio_producer import AioProducer
from fogverse.clients.aio_tail import AioTail
from fogverse.clients.aio_thread import ThreadedProducer
from fogverse.clients.base import ClientError
from fogverse.clients.errors import with_retries
from fogverse.config import StageConfig
from fogverse.constants import CLIENT_AIOKAFKA
from fogverse.errors import FogVerseError
from fogverse.offsets import CommitTracker

__all__ = ["BACKEND", "AioAdmin", "AioBackend"]

log = logging.getLogger("fogverse.kafka")

_TOPIC_ALREADY_EXISTS = 36
_DEFAULT_REPLICATION = -1
"""The broker's default.replication.factor (CreateTopics v4+, every Kafka 4.x)."""


class AioAdmin:
    """Topic creation for a starting stage."""

    def __init__(self, native: AIOKafkaAdminClient) -> None:
        self.native = native

    async def ensure_topics(self, topics: list[str]) -> None:
        existing = set(await self.native.list_topics())
        missing = sorted({t for t in topics if t not in existing})
        if not missing:
            return
        response = await self.native.create_topics(
            # An empty assignment is how aiokafka's NewTopic accepts the -1 default.
            [NewTopic(t, num_partitions=1, replication_factor=_DEFAULT_REPLICATION,
                      replica_assignments={}) for t in missing])
        for topic, code, *rest in response.topic_errors:
            # Another stage created it meanwhile: that is what we wanted.
            if code not in (0, _TOPIC_ALREADY_EXISTS):
                message = rest[0] if rest else ""
                raise FogVerseError(f"could not create topic {topic}: error {code} {message}")
            log.debug("created topic %s", topic)

    async def close(self) -> None:
        await self.native.close()


class AioBackend:
    name = CLIENT_AIOKAFKA

    async def connect(self, servers: str, extra: Mapping[str, Any], attempts: int,
                      backoff: float) -> AioAdmin:
        async def once(_pause: float) -> AioAdmin:
            admin = AIOKafkaAdminClient(**admin_options(servers, extra))
            try:
                await admin.start()
                await admin.list_topics()
            except (KafkaError, OSError):
                await admin.close()
                raise
            return AioAdmin(admin)

        return await with_retries(servers, attempts, backoff, once, (KafkaError, OSError))

    def consumer(self, config: StageConfig, group_id: str, client_id: str,
                 tracker: CommitTracker, size: Callable[[], int],
                 on_error: Callable[[ClientError], None], name: str) -> AioConsumer:
        if config.group_protocol == "consumer":
            log.debug("%s: aiokafka speaks the classic group protocol only", name)
        return AioConsumer(consumer_options(config, group_id, client_id), tracker,
                           config.fetch_timeout, size, on_error, name)

    async def producer(self, config: StageConfig, client_id: str) -> AioProducer:
        options = producer_options(config, client_id)
        native = AIOKafkaProducer(**options)
        await native.start()
        return AioProducer(native, int(options.get("max_request_size", 1048576)))

    def sync_producer(self, servers: str, extra: Mapping[str, Any],
                      options: Mapping[str, Any]) -> ThreadedProducer:
        limit = int(options.get("queue.buffering.max.messages", 100_000))
        give_up = float(options.get("message.timeout.ms", 300_000)) / 1000
        kwargs = {"bootstrap_servers": servers}
        kwargs.update(translate({k: v for k, v in options.items() if k not in _OURS},
                                AIOKafkaProducer))
        kwargs.update(translate(extra, AIOKafkaProducer))
        return ThreadedProducer(kwargs, limit, give_up)

    async def tail_reader(self, servers: str, extra: Mapping[str, Any],
                          topic: str) -> AioTail:
        return await AioTail.open(servers, extra, topic)


_OURS = frozenset({"queue.buffering.max.messages", "message.timeout.ms"})
"""Options the threaded producer enforces itself."""

BACKEND = AioBackend()
