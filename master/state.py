"""What the master remembers across restarts: the stage plans it learned from requests.

One compacted topic, one record per stage, keyed ``<consumer_group_id>/<stage>``
so masters of different pipelines can share the topic without mixing. On start
the master reads it to the end and manages those stages again at once, instead
of waiting for each stage to repeat its request (stages repeat every 15 s).

Running instances are not stored: LOCAL children die with their master, and a
provider's stop handle is code, which is never serialized (no pickle).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import msgpack
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from fogverse.admin import KafkaAdmin
from master.plans import StagePlan
from workers.registry import stage_name

__all__ = ["PlanStore", "decode_plan", "encode_plan"]

log = logging.getLogger("fogverse.master.state")

_VERSION = 1
_READ_TIMEOUT = 15.0


def encode_plan(plan: StagePlan) -> bytes:
    packed: bytes = msgpack.packb({
        "v": _VERSION, "source": plan.stage[0], "target": plan.stage[1],
        "service": plan.service_name, "provider": plan.provider,
        "min": plan.min_instance, "max": plan.max_instance, "group": plan.group_id,
        "extra": dict(plan.extra_configs),
    }, use_bin_type=True)
    return packed


def decode_plan(raw: bytes) -> StagePlan:
    """The stored plan; ValueError for a record that is not one."""
    try:
        d = msgpack.unpackb(raw, raw=False)
        return StagePlan(
            stage=(d["source"], d["target"]), service_name=str(d["service"]),
            provider=str(d["provider"]), min_instance=int(d["min"]),
            max_instance=int(d["max"]), group_id=d.get("group"),
            extra_configs=dict(d.get("extra") or {}),
        )
    except Exception as exc:
        raise ValueError(f"not a stored plan: {exc!r}") from None


class PlanStore:
    """Reads and writes one master's plans in the compacted state topic."""

    def __init__(
        self, servers: str, namespace: str, topic: str, extra: Mapping[str, Any] | None = None
    ) -> None:
        self._servers = servers
        self._prefix = f"{namespace}/"
        self.topic = topic
        self._extra = dict(extra or {})
        self._producer: KafkaProducer | None = None

    async def load(self, admin: KafkaAdmin) -> list[StagePlan]:
        """Every plan stored for this namespace (creating the topic if needed)."""
        await admin.ensure_topic(self.topic, 1, {"cleanup.policy": "compact"})
        latest = await asyncio.to_thread(self._read_all)
        plans = []
        for key, raw in latest.items():
            try:
                plans.append(decode_plan(raw))
            except ValueError as exc:
                log.warning("ignoring state record %s: %s", key, exc)
        return plans

    def _read_all(self) -> dict[str, bytes]:
        consumer = Consumer({"bootstrap.servers": self._servers, "group.id": "unused",
                             "enable.auto.commit": False, **self._extra})
        try:
            meta = consumer.list_topics(self.topic, timeout=10).topics[self.topic]
            ends = {}
            for p in meta.partitions:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                         timeout=10)
                ends[p] = high
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in ends])
            return self._consume_until(consumer, ends)
        except KafkaException as exc:
            log.warning("could not read master state from %s: %s", self.topic, exc)
            return {}
        finally:
            consumer.close()

    def _consume_until(self, consumer: Consumer, ends: dict[int, int]) -> dict[str, bytes]:
        latest: dict[str, bytes] = {}
        pending = {p for p, high in ends.items() if high > 0}
        deadline = time.monotonic() + _READ_TIMEOUT
        while pending and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error() is not None:
                    continue
                key = (msg.key() or b"").decode(errors="replace")
                if key.startswith(self._prefix):
                    value = msg.value()
                    if value is None:  # a tombstone: the plan was dropped
                        latest.pop(key, None)
                    else:
                        latest[key] = value
                partition, offset = msg.partition(), msg.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    pending.discard(partition)
        return latest

    def save(self, plan: StagePlan) -> None:
        """Store ``plan`` (queued, never waits for the broker)."""
        if self._producer is None:
            self._producer = KafkaProducer({"bootstrap.servers": self._servers,
                                            "linger.ms": 50, **self._extra})
        key = self._prefix + stage_name(plan.stage)
        try:
            self._producer.produce(self.topic, encode_plan(plan), key.encode())
            self._producer.poll(0)
        except BufferError:
            log.warning("state queue full; plan for %s not stored", stage_name(plan.stage))

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (blocking, bounded: run it in a thread)."""
        if self._producer is not None:
            left = self._producer.flush(timeout)
            if left:
                log.warning("%d state records not stored before shutdown", left)
