"""A pass-through stage beside a raw confluent-kafka loop doing the same work.

Both read the same 200,000 pre-filled 1 KiB msgpack messages, decode and
re-encode each with msgpack, and produce it to an output topic; each uses its
own consumer group on the same broker in the same run. The raw loop auto-commits
(weaker than our at-least-once commits), so the ratio is conservative.

    python -m bench.passthrough [--messages N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import msgpack
from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer

from bench._common import broker, create_topics, emit, fresh, prefill
from fogverse import Consumer, StageConfig
from fogverse.runtime.consumer import fetch_batch
from fogverse.runtime.kafka_io import producer_conf


def raw_loop(servers: str, source: str, target: str, count: int, same_producer: bool) -> float:
    consumer = KafkaConsumer({
        "bootstrap.servers": servers, "group.id": fresh("raw"),
        "auto.offset.reset": "earliest", "group.protocol": "consumer",
    })
    # same_producer: the stage's own producer settings (idempotence for order
    # across retries), so the ratio shows the framework's cost, not a setting's.
    producer = KafkaProducer(
        producer_conf(StageConfig(consumer_servers=servers), "raw") if same_producer
        else {"bootstrap.servers": servers, "linger.ms": 2}
    )
    consumer.subscribe([source])
    done = 0
    started = 0.0
    while done < count:
        batch = fetch_batch(consumer, 500, 0.1)
        if batch and not started:
            started = time.monotonic()
        for msg in batch:
            if msg.error():
                continue
            data = msgpack.unpackb(msg.value(), raw=False)
            value = msgpack.packb(data, use_bin_type=True)
            while True:
                try:
                    producer.produce(target, value, msg.key(), headers=msg.headers())
                    break
                except BufferError:
                    producer.poll(0.05)
            done += 1
        producer.poll(0)
    producer.flush(60)
    elapsed = time.monotonic() - started
    consumer.close()
    return elapsed


class PassThrough(Consumer):
    """The identity stage: decode, process (nothing), encode, send."""


def stage_loop(servers: str, source: str, target: str, count: int) -> float:
    stage = PassThrough(consumer_topic=source, producer_topic=target, consumer_servers=servers,
                        group_id=fresh("stage"), max_messages=count, heartbeat=False)
    asyncio.run(stage.run())
    # From the first input to the last output delivered, as for the raw loop.
    assert stage.stats.first_input_at is not None and stage.stats.last_output_at is not None
    return stage.stats.last_output_at - stage.stats.first_input_at


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with broker() as servers:
        source = fresh("bench-pass-in")
        create_topics(servers, source)
        prefill(servers, source, args.messages)
        print(f"pre-filled {args.messages} x 1 KiB msgpack messages", flush=True)
        raw, plain, ours = [], [], []
        n = args.messages
        for round_ in range(args.rounds):
            raw.append(n / raw_loop(servers, source, fresh("raw-out"), n, same_producer=True))
            plain.append(n / raw_loop(servers, source, fresh("plain-out"), n, same_producer=False))
            ours.append(n / stage_loop(servers, source, fresh("st-out"), n))
            print(f"round {round_ + 1}: raw {raw[-1]:,.0f} msg/s (default producer "
                  f"{plain[-1]:,.0f}), stage {ours[-1]:,.0f} msg/s")
    best_raw, best_plain, best_ours = max(raw), max(plain), max(ours)
    ratio = best_ours / best_raw
    print(f"best: raw {best_raw:,.0f} msg/s, stage {best_ours:,.0f} msg/s, ratio {ratio:.2f}"
          f" (target >= 0.8); raw with a default producer {best_plain:,.0f} msg/s")
    emit({"bench": "passthrough", "messages": n, "raw_msgs_per_s": round(best_raw),
          "raw_default_producer_msgs_per_s": round(best_plain),
          "stage_msgs_per_s": round(best_ours), "ratio": round(ratio, 3),
          "ratio_vs_default_producer": round(best_ours / best_plain, 3), "target_ratio": 0.8})


if __name__ == "__main__":
    main()
