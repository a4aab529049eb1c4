"""Reading a topic from its end on aiokafka, outside any group."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from fogverse.clients.aio_conf import translate
from fogverse.errors import FogVerseError

__all__ = ["AioTail"]

_READ_MS = 100
_METADATA_S = 15.0


class AioTail:
    """Every partition of a topic assigned at its end when opened."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer

    @classmethod
    async def open(cls, servers: str, extra: Mapping[str, Any], topic: str) -> AioTail:
        partitions = await _partitions(servers, extra, topic)
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, enable_auto_commit=False,
                                    **translate(extra, AIOKafkaConsumer))
        await consumer.start()
        try:
            assignment = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(assignment)
            ends = await consumer.end_offsets(assignment)
            for tp in assignment:
                consumer.seek(tp, ends[tp])
        except BaseException:
            await consumer.stop()
            raise
        return cls(consumer)

    async def read(self) -> list[bytes | None]:
        records = await self._consumer.getmany(timeout_ms=_READ_MS, max_records=500)
        return [m.value for messages in records.values() for m in messages]

    async def close(self) -> None:
        await self._consumer.stop()


async def _partitions(servers: str, extra: Mapping[str, Any], topic: str) -> list[int]:
    """The topic's partitions once each has a leader (a new topic takes a moment)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers,
                                **translate(extra, AIOKafkaAdminClient))
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + _METADATA_S
        while True:
            [described] = await admin.describe_topics([topic])
            parts = described["partitions"] if described["error_code"] == 0 else []
            if parts and all(p["error_code"] == 0 and p["leader"] >= 0 for p in parts):
                return sorted(p["partition"] for p in parts)
            if asyncio.get_running_loop().time() > deadline:
                raise FogVerseError(f"topic {topic!r} has no usable partitions after "
                                    f"{_METADATA_S}s")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
