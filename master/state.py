"""What the master remembers across restarts, in one compacted Kafka topic.

Plans it learned from requests (so a restarted master manages the same stages
at once, instead of waiting for each stage to repeat its request) and the
instances it deployed, with what their provider needs to find them again (so
it adopts them instead of deploying duplicates). Keys start with
``<consumer_group_id>/`` so masters of different pipelines can share the topic.
Record format and checks: :mod:`master.state_records`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka import Producer as KafkaProducer

from fogverse.admin import KafkaAdmin
from fogverse.batches import take_batch
from fogverse.errors import ConfigError
from master.plans import StagePlan
from master.rollout.model import Rollout
from master.state_records import (
    KIND_INSTANCE,
    KIND_PLAN,
    KIND_ROLLOUT,
    DeployedInstance,
    StateRecordError,
    decode_record,
    deployed_body,
    deployed_from_body,
    encode_record,
    plan_body,
    plan_from_body,
)
from workers.registry import StageKey, stage_name

__all__ = ["LoadedState", "PlanStore", "StateStore"]

log = logging.getLogger("fogverse.master.state")

_READ_TIMEOUT = 15.0
_INSTANCE = "instance/"
_ROLLOUT = "rollout/"


@dataclass
class LoadedState:
    """Every valid record of this namespace, as last written."""

    plans: list[StagePlan] = field(default_factory=list)
    instances: list[DeployedInstance] = field(default_factory=list)
    rollouts: list[Rollout] = field(default_factory=list)


class StateStore:
    """Reads and writes one master's records in the compacted state topic.

    ``rejected`` counts the records refused at load, by reason; each is logged
    with its key and skipped.
    """

    def __init__(
        self, servers: str, namespace: str, topic: str, extra: Mapping[str, Any] | None = None,
        *, control_key: bytes | None = None,
    ) -> None:
        self._servers = servers
        self._prefix = f"{namespace}/"
        self.topic = topic
        self._extra = dict(extra or {})
        self._key = control_key
        self._producer: KafkaProducer | None = None
        self.rejected: Counter[str] = Counter()

    async def load(self, admin: KafkaAdmin) -> LoadedState:
        """Every valid record stored for this namespace (creating the topic if needed)."""
        await admin.ensure_topic(self.topic, 1, {"cleanup.policy": "compact"}, replicated=True)
        latest = await asyncio.to_thread(self._read_all)
        return self.parse(latest)

    def parse(self, latest: Mapping[str, bytes]) -> LoadedState:
        """Check every record (by full key); the valid ones, the others counted and logged."""
        state = LoadedState()
        for key, raw in latest.items():
            try:
                kind, body = decode_record(key, raw, self._key)
                if key[len(self._prefix):].startswith(_ROLLOUT):
                    state.rollouts.append(_rollout(kind, body))
                elif key[len(self._prefix):].startswith(_INSTANCE):
                    if kind != KIND_INSTANCE:
                        raise StateRecordError("not_a_record", "a plan under an instance key")
                    state.instances.append(deployed_from_body(body))
                elif kind == KIND_PLAN:
                    state.plans.append(plan_from_body(body))
                else:
                    raise StateRecordError("not_a_record",
                                           f"a record of kind {kind!r} under a plan key")
            except StateRecordError as exc:
                self.reject(exc.reason, key, str(exc))
        return state

    def reject(self, reason: str, key: str, why: str) -> None:
        self.rejected[reason] += 1
        log.warning("ignoring state record %s: %s", key, why)

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
            for msg in take_batch(consumer, 500, 0.5):
                if msg.error() is not None:
                    continue
                key = (msg.key() or b"").decode(errors="replace")
                if key.startswith(self._prefix):
                    value = msg.value()
                    if value is None:  # a tombstone: the record was dropped
                        latest.pop(key, None)
                    else:
                        latest[key] = value
                partition, offset = msg.partition(), msg.offset()
                if partition is not None and offset is not None and offset + 1 >= ends[partition]:
                    pending.discard(partition)
        return latest

    # -- writing -----------------------------------------------------------------------------

    def save_plan(self, plan: StagePlan) -> None:
        """Store ``plan`` (queued, never waits for the broker)."""
        key = self._prefix + stage_name(plan.stage)
        self._write(key, encode_record(key, KIND_PLAN, plan_body(plan), self._key))

    def drop_plan(self, stage: StageKey) -> None:
        self._write(self._prefix + stage_name(stage), None)

    def save_instance(self, instance: DeployedInstance) -> None:
        key = self._prefix + _INSTANCE + instance.instance_id
        self._write(key, encode_record(key, KIND_INSTANCE, deployed_body(instance), self._key))

    def drop_instance(self, instance_id: str) -> None:
        self._write(self._prefix + _INSTANCE + instance_id, None)

    def save_rollout(self, rollout: Rollout) -> None:
        """Store the latest word on a service's rollout (one record per service)."""
        key = self._prefix + _ROLLOUT + rollout.service
        self._write(key, encode_record(key, KIND_ROLLOUT, rollout.to_body(), self._key))

    def _write(self, key: str, value: bytes | None) -> None:
        if self._producer is None:
            self._producer = KafkaProducer({"bootstrap.servers": self._servers,
                                            "linger.ms": 50, **self._extra})
        try:
            self._producer.produce(self.topic, value, key.encode())
            self._producer.poll(0)
        except BufferError:
            log.warning("state queue full; record %s not stored", key)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (blocking, bounded: run it in a thread)."""
        if self._producer is not None:
            left = self._producer.flush(timeout)
            if left:
                log.warning("%d state records not stored before shutdown", left)


def _rollout(kind: str, body: dict[str, Any]) -> Rollout:
    if kind != KIND_ROLLOUT:
        raise StateRecordError("not_a_record",
                               f"a record of kind {kind!r} under a rollout key")
    try:
        return Rollout.from_body(body)
    except ConfigError as exc:
        raise StateRecordError("bad_field", str(exc)) from None


PlanStore = StateStore
"""The earlier name, from when only plans were stored."""
