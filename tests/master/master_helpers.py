"""Shared pieces of the master's real-broker tests: sinks and feeders."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import msgpack
from confluent_kafka import Consumer

from examples.autoscale.feeder import Feeder


class IdSink:
    """Reads a topic in a thread and remembers every ``id`` it saw (and how often)."""

    def __init__(self, servers: str, topic: str, group: str) -> None:
        self.counts: dict[int, int] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({
            "bootstrap.servers": servers, "group.id": group, "auto.offset.reset": "earliest",
            "enable.auto.commit": False, "topic.metadata.refresh.interval.ms": 1000,
        })
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.2):
                if msg.error() is None:
                    n = msgpack.unpackb(msg.value())["id"]
                    self.counts[n] = self.counts.get(n, 0) + 1
        self._consumer.close()

    def missing(self, total: int) -> list[int]:
        return [n for n in range(total) if n not in self.counts]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


class FeederThread:
    """Runs the example Feeder (a runtime Producer) on a loop of its own."""

    def __init__(self, rate: float, **settings: Any) -> None:
        self.feeder = Feeder(rate, **settings)
        self._thread = threading.Thread(target=lambda: asyncio.run(self.feeder.run()),
                                        daemon=True)
        self._thread.start()

    @property
    def sent(self) -> int:
        return self.feeder.stats.acked

    def stop(self) -> int:
        """Stop, wait for every message to be acknowledged, return how many were sent."""
        self.feeder.stop()
        self._thread.join(60)
        return self.feeder.next_id
