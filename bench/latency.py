"""End-to-end latency at a steady rate through source -> stage -> sink.

Each of the three runs in its own process, as in a real deployment. The same
topology built from raw confluent-kafka loops runs in the same session as the
baseline. Latency is measured at the sink from the source's creation-time
header (wall clock on one host).

    python -m bench.latency [--rate 2000] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer

from bench._common import broker, create_topics, emit, fetch_batch, fresh
from fogverse import Consumer, Producer
from fogverse.clients.confluent_conf import producer_conf
from fogverse.config import StageConfig
from fogverse.constants import H_CREATED_AT

WARMUP_S = 2.0


class Paced(Producer):
    """Emits ``rate`` messages per second in 1 ms ticks, for ``seconds``."""

    def __init__(self, rate: int, seconds: float, **settings: Any) -> None:
        super().__init__(max_messages=int(rate * seconds), **settings)
        self.interval = 1 / rate
        self.next_at = 0.0

    async def receive(self) -> dict[str, int]:
        now = time.monotonic()
        if not self.next_at:
            self.next_at = now
        self.next_at += self.interval
        if self.next_at > now:
            await asyncio.sleep(self.next_at - now)
        return {"reading": 1}


class Stage(Consumer):
    def process(self, data: dict[str, int]) -> dict[str, int]:
        data["reading"] += 1
        return data


class Sink(Consumer):
    def process(self, data: dict[str, int]) -> None:
        return None


def _run_stage(servers: str, src: str, dst: str, seconds: float, ready: Any) -> None:
    stage = Stage(consumer_topic=src, producer_topic=dst, consumer_servers=servers,
                  group_id=fresh("lat-stage"), idle_timeout=seconds + 10, heartbeat=False)
    ready.put("stage")
    asyncio.run(stage.run())


def _run_sink(servers: str, src: str, count: int, out: Any) -> None:
    sink = Sink(consumer_topic=src, consumer_servers=servers, group_id=fresh("lat-sink"),
                max_messages=count, heartbeat=False)
    out.put("sink")
    asyncio.run(sink.run())
    out.put(list(sink.stats.latency._samples))


def _raw_stage(servers: str, src: str, dst: str, count: int, ready: Any) -> None:
    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("raw-stage"),
                              "auto.offset.reset": "earliest", "group.protocol": "consumer",
                              "socket.nagle.disable": True})
    producer = KafkaProducer(producer_conf(StageConfig(consumer_servers=servers), "raw"))
    consumer.subscribe([src])
    ready.put("stage")
    import msgpack

    done = 0
    while done < count:
        for msg in fetch_batch(consumer, 500, 0.05):
            if msg.error():
                continue
            data = msgpack.unpackb(msg.value())
            data["reading"] += 1
            producer.produce(dst, msgpack.packb(data), msg.key(), headers=msg.headers())
            done += 1
        producer.poll(0)
    producer.flush(10)
    consumer.close()


def _raw_sink(servers: str, src: str, count: int, out: Any) -> None:
    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("raw-sink"),
                              "auto.offset.reset": "earliest", "group.protocol": "consumer",
                              "socket.nagle.disable": True})
    consumer.subscribe([src])
    out.put("sink")
    import msgpack

    samples: list[float] = []
    while len(samples) < count:
        for msg in fetch_batch(consumer, 500, 0.05):
            if msg.error():
                continue
            msgpack.unpackb(msg.value())
            created = dict(msg.headers() or [])[H_CREATED_AT]
            samples.append((time.time_ns() - int(created)) / 1e9)
    consumer.close()
    out.put(samples)


def _raw_source(servers: str, dst: str, rate: int, seconds: float) -> None:
    import msgpack

    producer = KafkaProducer(producer_conf(StageConfig(consumer_servers=servers), "raw-src"))
    interval, next_at = 1 / rate, time.monotonic()
    for _ in range(int(rate * seconds)):
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        producer.produce(dst, msgpack.packb({"reading": 1}), headers=[
            ("content-type", b"application/msgpack"), (H_CREATED_AT, str(time.time_ns()).encode())
        ])
        producer.poll(0)
    producer.flush(10)


def measure(servers: str, rate: int, seconds: float, raw: bool) -> dict[str, float]:
    a, b = fresh("lat-a"), fresh("lat-b")
    create_topics(servers, a, b)
    count = int(rate * seconds)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    stage_fn, sink_fn = (_raw_stage, _raw_sink) if raw else (_run_stage, _run_sink)
    stage_args = (servers, a, b, count if raw else seconds, queue)
    procs = [ctx.Process(target=stage_fn, args=stage_args),
             ctx.Process(target=sink_fn, args=(servers, b, count, queue))]
    for proc in procs:
        proc.start()
    queue.get(timeout=60), queue.get(timeout=60)
    time.sleep(3)  # both consumers join their groups before the load starts
    if raw:
        _raw_source(servers, a, rate, seconds)
    else:
        asyncio.run(Paced(rate, seconds, producer_topic=a, consumer_servers=servers,
                          heartbeat=False).run())
    samples = queue.get(timeout=seconds + 60)
    for proc in procs:
        proc.join(timeout=seconds + 30)
        if proc.is_alive():
            proc.kill()
    steady = samples[int(rate * WARMUP_S):] or samples
    steady.sort()
    return {
        "p50_ms": round(statistics.median(steady) * 1000, 2),
        "p99_ms": round(steady[int(len(steady) * 0.99) - 1] * 1000, 2),
        "max_ms": round(steady[-1] * 1000, 2),
        "samples": len(steady),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with broker() as servers:
        ours = measure(servers, args.rate, args.seconds, raw=False)
        print(f"fogverse source->stage->sink at {args.rate}/s: {ours}", flush=True)
        base = measure(servers, args.rate, args.seconds, raw=True)
        print(f"raw confluent-kafka loops at {args.rate}/s:    {base}", flush=True)
    emit({"bench": "latency", "rate": args.rate, "seconds": args.seconds,
          "p50_ms": ours["p50_ms"], "p99_ms": ours["p99_ms"], "max_ms": ours["max_ms"],
          "raw_p50_ms": base["p50_ms"], "raw_p99_ms": base["p99_ms"], "target_p99_ms": 15})


if __name__ == "__main__":
    main()
