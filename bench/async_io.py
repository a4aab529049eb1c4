"""An I/O-bound stage: ``process`` awaits a 10 ms remote call.

With ``concurrency=32`` up to 32 calls wait at once in one event loop, so the
ideal is 32 / 10 ms = 3,200 msg/s. Baselines in the same run: that ideal; the
same waits on a bare event loop without Kafka (what this machine's timers allow:
sleeps overshoot under load); and the same stage at ``concurrency=1`` (one round
trip at a time, ~100 msg/s), which is what it replaces. Outputs must still
leave in input order per partition (``ordered``).

    python -m bench.async_io [--messages N] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import defaultdict

import msgpack
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer

from bench._common import broker, create_topics, emit, fresh
from fogverse import Consumer

CALL_S = 0.010
KEYS = 64


class RemoteCall(Consumer):
    """Stands in for a model server or an HTTP API: 10 ms per call."""

    async def process(self, data: dict[str, int]) -> dict[str, int]:
        await asyncio.sleep(CALL_S)
        return data


def fill(servers: str, topic: str, count: int) -> None:
    producer = KafkaProducer({"bootstrap.servers": servers, "linger.ms": 5})
    for i in range(count):
        producer.produce(topic, msgpack.packb({"seq": i}), f"k{i % KEYS}".encode(),
                         headers=[("content-type", b"application/msgpack")])
        if i % 1000 == 0:
            producer.poll(0)
    producer.flush(60)


async def _waits_only(count: int, width: int) -> float:
    """The same waiting without Kafka: ``count`` 10 ms calls, ``width`` at a time."""
    room = asyncio.Semaphore(width)

    async def call() -> None:
        try:
            await asyncio.sleep(CALL_S)
        finally:
            room.release()

    started = time.monotonic()
    tasks = []
    for _ in range(count):
        await room.acquire()
        tasks.append(asyncio.create_task(call()))
    await asyncio.gather(*tasks)
    return count / (time.monotonic() - started)


def run_stage(servers: str, source: str, target: str, count: int, concurrency: int) -> float:
    stage = RemoteCall(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                       group_id=fresh("io"), max_messages=count, concurrency=concurrency,
                       heartbeat=False)
    asyncio.run(stage.run())
    assert stage.stats.first_input_at is not None and stage.stats.last_output_at is not None
    return count / (stage.stats.last_output_at - stage.stats.first_input_at)


def in_order(servers: str, topic: str, count: int) -> bool:
    """Every key's outputs in the order of their inputs, none lost."""
    reader = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("check"),
                            "auto.offset.reset": "earliest"})
    reader.subscribe([topic])
    by_key: dict[bytes, list[int]] = defaultdict(list)
    seen, deadline = 0, time.monotonic() + 60
    while seen < count and time.monotonic() < deadline:
        for msg in reader.consume(500, 0.5):
            if msg.error() is None:
                by_key[msg.key() or b""].append(msgpack.unpackb(msg.value())["seq"])
                seen += 1
    reader.close()
    return seen == count and all(seqs == sorted(seqs) for seqs in by_key.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    n, width = args.messages, args.concurrency
    ideal = width / CALL_S
    one_n = max(100, n // width)  # about as long a run at concurrency 1
    with broker() as servers:
        source, out, out_one = fresh("io-in"), fresh("io-out"), fresh("io-out1")
        create_topics(servers, source, out, out_one, partitions=4)
        fill(servers, source, n)
        rate = run_stage(servers, source, out, n, width)
        ordered = in_order(servers, out, n)
        rate_one = run_stage(servers, source, out_one, one_n, 1)
        loop_only = asyncio.run(_waits_only(n, width))
    print(f"concurrency {width}: {rate:,.0f} msg/s of an ideal {ideal:,.0f} "
          f"({rate / ideal:.2f}), ordered per partition: {ordered}; "
          f"concurrency 1: {rate_one:,.0f} msg/s of an ideal {1 / CALL_S:,.0f}; the same "
          f"waits without Kafka: {loop_only:,.0f}/s")
    emit({"bench": "async_io", "messages": n, "call_ms": CALL_S * 1000,
          "concurrency": width, "msgs_per_s": round(rate), "ideal_msgs_per_s": round(ideal),
          "efficiency": round(rate / ideal, 3), "target_efficiency": 0.9, "ordered": ordered,
          "concurrency_1_msgs_per_s": round(rate_one),
          "concurrency_1_efficiency": round(rate_one * CALL_S, 3),
          "waits_only_per_s": round(loop_only), "ratio_vs_waits_only": round(rate / loop_only, 3)})


if __name__ == "__main__":
    main()
