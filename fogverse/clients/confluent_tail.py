"""Reading a topic from its end on confluent-kafka, outside any group."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import TopicPartition

from fogverse.batches import take_batch
from fogverse.tasks.topics import partitions_of

__all__ = ["ConfluentTail"]

_READ_S = 0.1


class ConfluentTail:
    """Every partition of a topic assigned at its end when opened."""

    def __init__(self, consumer: KafkaConsumer) -> None:
        self._consumer = consumer
        self._pending: asyncio.Future[list[Any]] | None = None

    @classmethod
    async def open(cls, servers: str, extra: Mapping[str, Any], topic: str) -> ConfluentTail:
        return cls(await asyncio.to_thread(_assigned_at_end, servers, extra, topic))

    async def read(self) -> list[bytes | None]:
        self._pending = asyncio.get_running_loop().run_in_executor(
            None, take_batch, self._consumer, 500, _READ_S)
        # Shielded: a cancelled reader leaves the call to finish before close().
        messages = await asyncio.shield(self._pending)
        self._pending = None
        return [m.value() for m in messages if m.error() is None]

    async def close(self) -> None:
        if self._pending is not None:
            with contextlib.suppress(Exception):
                await self._pending
        await asyncio.to_thread(self._consumer.close)


def _assigned_at_end(servers: str, extra: Mapping[str, Any], topic: str) -> KafkaConsumer:
    consumer = KafkaConsumer({
        "bootstrap.servers": servers,
        # Never joins or commits: assign() only; librdkafka still wants a group id.
        "group.id": f"fogverse-tail-{topic}",
        "enable.auto.commit": False, "fetch.wait.max.ms": 50, **extra,
    })
    assignment = []
    for partition in partitions_of(consumer, topic):
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), 15)
        assignment.append(TopicPartition(topic, partition, high))
    consumer.assign(assignment)
    return consumer
