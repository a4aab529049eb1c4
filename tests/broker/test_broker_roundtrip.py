"""The session broker is a real Kafka: what is produced can be consumed by a group."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.kafka

DELIVERY_TIMEOUT_S = 30.0
CONSUME_TIMEOUT_S = 60.0


def _produce(bootstrap: str, topic: str, value: bytes) -> None:
    errors: list[Any] = []
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    producer.produce(topic, value=value, on_delivery=lambda err, _msg: errors.append(err))
    assert producer.flush(DELIVERY_TIMEOUT_S) == 0, "message not delivered in time"
    assert errors == [None]


def _consume_one(bootstrap: str, topic: str, group: str, protocol: str) -> bytes:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "group.protocol": protocol,
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CONSUME_TIMEOUT_S
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            assert msg.error() is None, msg.error()
            value = msg.value()
            assert value is not None
            return value
        raise AssertionError(f"nothing consumed from {topic} within {CONSUME_TIMEOUT_S}s")
    finally:
        consumer.close()


@pytest.mark.parametrize("protocol", ["consumer", "classic"])
def test_a_produced_message_reaches_a_consumer_group(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    unique: Callable[[str], str],
    protocol: str,
) -> None:
    topic = make_topic("roundtrip")
    _produce(kafka_bootstrap, topic, b"hello fog")
    assert _consume_one(kafka_bootstrap, topic, unique("group"), protocol) == b"hello fog"


def test_make_topic_creates_the_asked_partitions(
    admin: Any, make_topic: Callable[..., str]
) -> None:
    topic = make_topic("parts", partitions=3)
    metadata = admin.list_topics(topic=topic, timeout=10).topics[topic]
    assert sorted(metadata.partitions) == [0, 1, 2]


def test_unique_names_use_dashes_and_differ(unique: Callable[[str], str]) -> None:
    names = {unique("orders") for _ in range(100)}
    assert len(names) == 100
    assert all(name.startswith("orders-") and "." not in name for name in names)
