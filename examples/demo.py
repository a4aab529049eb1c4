"""The main job: source -> stage -> sink on a real Kafka broker.

A camera-like source emits numbered readings, a stage enriches them, a sink
checks that every reading arrived once and in order per sensor. It prints what
flowed and its throughput, then ends by itself.

    python -m examples.demo [--messages N]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
import uuid
from typing import Any

from fogverse import Consumer, Producer
from fogverse.broker import kafka_bootstrap

SENSORS = 8


class Sensors(Producer):
    """Readings from eight sensors, keyed by sensor so each keeps its order."""

    def __init__(self, topic: str, servers: str, count: int) -> None:
        super().__init__(producer_topic=topic, consumer_servers=servers, max_messages=count,
                         heartbeat=False)
        self.sequence = 0

    def receive(self) -> dict[str, Any]:
        self.sequence += 1
        self.message.key = f"sensor-{self.sequence % SENSORS}".encode()  # type: ignore[union-attr]
        return {"sensor": self.sequence % SENSORS, "seq": self.sequence,
                "celsius": 20 + (self.sequence % 17) / 2}


class Enrich(Consumer):
    """Adds Fahrenheit: the stage in the middle."""

    def process(self, reading: dict[str, Any]) -> dict[str, Any]:
        reading["fahrenheit"] = reading["celsius"] * 9 / 5 + 32
        return reading


class Audit(Consumer):
    """The sink: remembers what arrived to check order and completeness."""

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.last_seq: dict[int, int] = {}
        self.seen = 0
        self.out_of_order = 0

    def process(self, reading: dict[str, Any]) -> None:
        sensor, seq = reading["sensor"], reading["seq"]
        if seq <= self.last_seq.get(sensor, 0):
            self.out_of_order += 1
        self.last_seq[sensor] = seq
        self.seen += 1
        return None


async def run_pipeline(servers: str, count: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    raw, enriched = f"demo-readings-{run}", f"demo-enriched-{run}"
    common: dict[str, Any] = {"consumer_servers": servers, "heartbeat": False,
                              "max_messages": count}
    source = Sensors(raw, servers, count)
    stage = Enrich(consumer_topic=raw, producer_topic=enriched, group_id=f"demo-enrich-{run}",
                   **common)
    sink = Audit(consumer_topic=enriched, group_id=f"demo-audit-{run}", **common)
    started = time.perf_counter()
    await asyncio.gather(source.run(), stage.run(), sink.run())
    elapsed = time.perf_counter() - started
    return {
        "sent": source.stats.produced, "enriched": stage.stats.produced,
        "arrived": sink.seen, "out_of_order": sink.out_of_order,
        "seconds": round(elapsed, 2), "msgs_per_s": round(count / elapsed),
        # The source runs flat out, so these include time queued behind it;
        # bench/latency.py measures latency at a steady rate.
        "latency_p50_ms": _ms(sink.stats.latency.percentile(50)),
        "latency_p99_ms": _ms(sink.stats.latency.percentile(99)),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    print("starting Kafka (or using FOGVERSE_BOOTSTRAP)...", flush=True)
    with kafka_bootstrap() as servers:
        print(f"broker at {servers}; running source -> enrich -> audit", flush=True)
        result = asyncio.run(run_pipeline(servers, args.messages))
    for name, value in result.items():
        print(f"  {name:>15}: {value}")
    ok = result["arrived"] == args.messages and result["out_of_order"] == 0
    print("all readings arrived, in order per sensor" if ok else "MISSING OR DISORDERED READINGS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
