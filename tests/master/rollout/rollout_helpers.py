"""What the rollout tests read: every output with the version that produced it."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import msgpack
from confluent_kafka import Consumer

from fogverse.constants import DEAD_LETTER_PREFIX

__all__ = ["Output", "VersionSink", "accounted", "dead_letter_topic"]


@dataclass(frozen=True, slots=True)
class Output:
    id: int
    version: str
    sent: float
    """When the feeder made the input (epoch seconds)."""


class VersionSink:
    """Reads a topic in a thread; keeps every message's id, version and send time."""

    def __init__(self, servers: str, topic: str, group: str) -> None:
        self.outputs: list[Output] = []
        self.ids: set[int] = set()
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
                    data = msgpack.unpackb(msg.value())
                    self.outputs.append(Output(data["id"], str(data.get("version", "")),
                                               float(data["sent"])))
                    self.ids.add(data["id"])

    def versions_sent_after(self, wall: float) -> set[str]:
        return {o.version for o in list(self.outputs) if o.sent > wall}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


def dead_letter_topic(source: str) -> str:
    return DEAD_LETTER_PREFIX + source


def accounted(total: int, *sinks: VersionSink) -> list[int]:
    """Ids of the ``total`` inputs found in none of the sinks (the lost ones)."""
    seen = set().union(*(s.ids for s in sinks))
    return [n for n in range(total) if n not in seen]
