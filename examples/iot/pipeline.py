"""IoT sensors -> anomaly detection -> alerts, on a real broker.

Sensors send temperature readings keyed by sensor id, so each sensor's readings
stay in order on one partition and reach one detector instance: per-sensor
state in a stage is safe however many instances the master runs. The detector
keeps a running mean and variance per sensor (Welford) and sends an alert only
for a reading far from its sensor's normal (a z-score); normal readings go no
further. A few faults are injected on purpose, so the run can check that
exactly those were caught.

    python -m examples.iot.pipeline [--readings N]

Under a master, run the detector alone (``python -m examples.iot.pipeline
detector``) as a service with CONSUMER_TOPIC, PRODUCER_TOPIC and GROUP_ID set.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import uuid
from dataclasses import dataclass
from typing import Any

from fogverse import Consumer, Producer
from fogverse.broker import kafka_bootstrap

__all__ = ["AlertSink", "AnomalyDetector", "Sensors", "is_fault", "run_pipeline"]

SENSORS = 6
FAULT_EVERY = 97
"""Every 97th reading is a fault (+15 degrees): 97 is prime, so faults visit every sensor."""


def is_fault(seq: int) -> bool:
    return seq % FAULT_EVERY == 0 and seq >= 4 * FAULT_EVERY  # after every sensor warmed up


class Sensors(Producer):
    """Readings ``{"sensor", "seq", "celsius"}``; normal noise is bounded (+-1 degree)."""

    topic_file = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.seq = 0
        self._rng = random.Random(42)

    def receive(self) -> dict[str, Any]:
        self.seq += 1
        sensor = self.seq % SENSORS
        self.message.key = f"sensor-{sensor}".encode()  # type: ignore[union-attr]
        celsius = 20.0 + sensor + self._rng.uniform(-1.0, 1.0)
        if is_fault(self.seq):
            celsius += 15.0
        return {"sensor": sensor, "seq": self.seq, "celsius": round(celsius, 3)}


@dataclass
class RunningStats:
    """Welford's running mean and variance: one pass, no history kept."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        delta = value - self.mean
        self.mean += delta / self.count
        self.m2 += delta * (value - self.mean)

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0


class AnomalyDetector(Consumer):
    """Alerts for readings more than ``z_limit`` deviations from their sensor's mean."""

    topic_file = None

    def __init__(self, z_limit: float = 4.0, warm_up: int = 20, **settings: Any) -> None:
        super().__init__(**settings)
        self.z_limit = z_limit
        self.warm_up = warm_up
        self.baselines: dict[int, RunningStats] = {}

    def process(self, reading: dict[str, Any]) -> dict[str, Any] | None:
        stats = self.baselines.setdefault(int(reading["sensor"]), RunningStats())
        value = float(reading["celsius"])
        if stats.count >= self.warm_up and stats.std > 0:
            z = (value - stats.mean) / stats.std
            if abs(z) > self.z_limit:
                # A fault must not teach the detector that faults are normal.
                return {**reading, "z": round(z, 1), "expected": round(stats.mean, 2)}
        stats.add(value)
        return None


class AlertSink(Consumer):
    topic_file = None

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        self.alerts: list[dict[str, Any]] = []

    def process(self, alert: dict[str, Any]) -> None:
        self.alerts.append(alert)
        print(f"ALERT sensor {alert['sensor']} reading #{alert['seq']}: {alert['celsius']} C "
              f"(expected ~{alert['expected']}, z={alert['z']})", flush=True)
        return None


async def run_pipeline(servers: str, readings: int) -> dict[str, Any]:
    run = uuid.uuid4().hex[:8]
    raw, alerts = f"iot-{run}-readings", f"iot-{run}-alerts"
    faults = [n for n in range(1, readings + 1) if is_fault(n)]
    common: dict[str, Any] = {"consumer_servers": servers, "heartbeat": False}
    sensors = Sensors(producer_topic=raw, max_messages=readings, **common)
    detector = AnomalyDetector(consumer_topic=raw, producer_topic=alerts,
                               group_id=f"iot-{run}-detector", max_messages=readings,
                               **common)
    sink = AlertSink(consumer_topic=alerts, group_id=f"iot-{run}-sink",
                     max_messages=max(1, len(faults)), **common)
    runs = [sensors.run(), detector.run()] + ([sink.run()] if faults else [])
    await asyncio.gather(*runs)
    caught = sorted(a["seq"] for a in sink.alerts)
    return {"readings": readings, "faults": faults, "caught": caught,
            "missed": sorted(set(faults) - set(caught)),
            "false_alarms": sorted(set(caught) - set(faults))}


def detector_main() -> None:
    """One detector instance with its settings from the environment (for a master)."""
    asyncio.run(AnomalyDetector().run())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", nargs="?", choices=["all", "detector"], default="all")
    parser.add_argument("--readings", type=int, default=3000)
    args = parser.parse_args()
    if args.role == "detector":
        detector_main()
        return 0
    with kafka_bootstrap() as servers:
        result = asyncio.run(run_pipeline(servers, args.readings))
    print(f"{len(result['caught'])} of {len(result['faults'])} faults caught, "
          f"{len(result['false_alarms'])} false alarms")
    return 0 if not result["missed"] and not result["false_alarms"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
