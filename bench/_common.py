"""Shared set-up for benchmarks: a broker, topics, and a pre-filled input."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msgpack
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fogverse.broker import kafka_bootstrap


@contextmanager
def broker() -> Iterator[str]:
    with kafka_bootstrap() as servers:
        yield servers


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_topics(servers: str, *topics: str, partitions: int = 1) -> None:
    admin = AdminClient({"bootstrap.servers": servers})
    futures = admin.create_topics([NewTopic(t, num_partitions=partitions) for t in topics])
    for future in futures.values():
        future.result(30)


def payload_1k(i: int) -> bytes:
    body: dict[str, Any] = {"id": i, "blob": os.urandom(16).hex() * 30}
    return msgpack.packb(body)


def prefill(servers: str, topic: str, count: int, make: Any = payload_1k) -> None:
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 20})
    sample = make(0)
    for i in range(count):
        while True:
            try:
                producer.produce(topic, sample if make is payload_1k else make(i),
                                 headers=[("content-type", b"application/msgpack")])
                break
            except BufferError:
                producer.poll(0.05)
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)


def fetch_batch(consumer: Any, size: int, timeout: float) -> list[Any]:
    """Up to ``size`` messages, returning as soon as one is there.

    ``consume(size, timeout)`` alone waits for ``size`` messages or the timeout,
    which would put the whole timeout on each message at moderate rates; the
    raw baselines read the way the stages do.
    """
    first: list[Any] = consumer.consume(1, timeout)
    if not first or size == 1:
        return first
    return first + consumer.consume(size - 1, 0)


def emit(result: dict[str, Any]) -> None:
    """Benchmarks end with exactly one JSON line."""
    print(json.dumps(result, sort_keys=True), flush=True)
