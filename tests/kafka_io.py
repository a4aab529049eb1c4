"""Plain confluent-kafka helpers for tests: write inputs, read what a stage wrote."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import msgpack
from confluent_kafka import Consumer, Producer

MSGPACK = [("content-type", b"application/msgpack")]


@dataclass
class Record:
    value: bytes | None
    key: bytes | None
    partition: int
    offset: int
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def header(self, name: str) -> bytes | None:
        return dict(self.headers).get(name)

    @property
    def data(self) -> object:
        assert self.value is not None
        return msgpack.unpackb(self.value, raw=False)


def produce(
    servers: str,
    topic: str,
    values: Iterable[bytes],
    keys: Sequence[bytes | None] | None = None,
    headers: Sequence[list[tuple[str, bytes]]] | None = None,
) -> int:
    """Write values (with optional keys / per-message headers); return how many."""
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    count = 0
    for i, value in enumerate(values):
        key = keys[i] if keys is not None else None
        hdrs = headers[i] if headers is not None else MSGPACK
        while True:
            try:
                producer.produce(topic, value, key, headers=hdrs)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
    assert producer.flush(30) == 0, "test input not delivered"
    return count


def produce_msgpack(servers: str, topic: str, items: Iterable[object],
                    keys: Sequence[bytes | None] | None = None) -> int:
    return produce(servers, topic, (msgpack.packb(item) for item in items), keys)


def read(servers: str, topic: str, expected: int, timeout: float = 60.0,
         settle: float = 1.0) -> list[Record]:
    """Read a topic from the start until ``expected`` records came, then ``settle``
    seconds more so duplicates beyond the expected count are seen too."""
    consumer = Consumer({
        "bootstrap.servers": servers, "group.id": f"reader-{time.time_ns()}",
        "auto.offset.reset": "earliest", "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    records: list[Record] = []
    deadline = time.monotonic() + timeout
    quiet_until: float | None = None
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.2):
                if msg.error() is None:
                    records.append(Record(msg.value(), msg.key(), msg.partition(),
                                          msg.offset(), list(msg.headers() or [])))
            if len(records) >= expected:
                quiet_until = quiet_until or time.monotonic() + settle
                if time.monotonic() >= quiet_until:
                    break
    finally:
        consumer.close()
    return records
