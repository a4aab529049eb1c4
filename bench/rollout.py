"""What a rollout costs a busy pipeline: a canary and a blue-green rollout under 2,000 msg/s.

A pass-through stage (examples/rollout/stage.py, two LOCAL instances) runs under
a master with the documented rollout defaults while a paced producer feeds it a
steady 2,000 messages/s. The stage is first watched at steady state; then it is
rolled out to v2 by canary and to v3 by blue-green. Measured, per rollout:

* ``rollout_s``: the request -> the rollout done (old instances stopped);
* ``max_output_gap_s``: the longest pause between two consecutive outputs from the
  request until 3 s after the rollout is done, against ``steady_max_gap_s``, the
  longest pause in an equally long window at steady state just before (the baseline:
  the same pipeline doing the same work without a rollout);
* ``lost``: inputs that never came out (must be 0; duplicates are allowed, at
  least once).

    python -m bench.rollout        # uses $FOGVERSE_BOOTSTRAP or starts a broker
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
from confluent_kafka import Consumer, Producer

from bench._common import broker, create_topics, emit, fresh
from master import Master, master_settings

ROOT = Path(__file__).resolve().parents[1]
RATE = 2000
TICK = 0.01
STEADY_S = 10.0
AFTER_S = 3.0


class PacedFeed:
    """``RATE`` msgpack messages a second, ``{"id": n, "sent": t}``, in 10 ms slices."""

    def __init__(self, servers: str, topic: str) -> None:
        self.sent = 0
        self._producer = Producer({"bootstrap.servers": servers, "linger.ms": 5,
                                   "topic.metadata.refresh.interval.ms": 1000})
        self._topic = topic
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        per_tick = int(RATE * TICK)
        due = time.monotonic()
        while not self._stop.is_set():
            now = time.time()
            for _ in range(per_tick):
                value = msgpack.packb({"id": self.sent, "sent": now})
                while True:
                    try:
                        self._producer.produce(self._topic, value, headers=[
                            ("content-type", b"application/msgpack")])
                        break
                    except BufferError:
                        self._producer.poll(0.01)
                self.sent += 1
            self._producer.poll(0)
            due += TICK
            time.sleep(max(0.0, due - time.monotonic()))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join(10)
        self._producer.flush(60)
        return self.sent


class Outputs:
    """Every output: its id and when it arrived (wall clock)."""

    def __init__(self, servers: str, topic: str) -> None:
        self.ids: set[int] = set()
        self.arrivals: list[float] = []
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": servers, "group.id": fresh("bench"),
                                   "auto.offset.reset": "earliest",
                                   "topic.metadata.refresh.interval.ms": 1000})
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(1000, 0.05):
                if msg.error() is None:
                    self.ids.add(msgpack.unpackb(msg.value())["id"])
                    self.arrivals.append(time.time())

    def max_gap(self, start: float, end: float) -> float:
        times = [t for t in list(self.arrivals) if start <= t <= end]
        edges = [start, *times, end]
        return max(b - a for a, b in itertools.pairwise(edges))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout:g}s")
        await asyncio.sleep(0.1)


async def run(servers: str) -> dict[str, Any]:
    control, source, target, group = (fresh(p) for p in ("control", "in", "out", "pass"))
    create_topics(servers, source, target, partitions=4)
    settings = master_settings({
        "consumer_topic": control, "consumer_servers": servers,
        "consumer_group_id": f"{control}-master", "http_port": None, "state_topic": "",
        "included_worker": ["AUTO_DEPLOYER"],
        "services": {"pass": {
            "module": "examples.rollout.stage", "cwd": str(ROOT), "min_instance": 2,
            "max_instance": 2, "source_topic": source, "target_topic": target,
            "group_id": group, "versions": {"v2": {}, "v3": {}},
            "env": {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
                    "CONTROL_TOPIC": control},
        }},
    })
    master = Master(settings)
    out = Outputs(servers, target)
    feed: PacedFeed | None = None
    result: dict[str, Any] = {}
    try:
        await master.start()
        await wait_for(lambda: master.registry.live_count((source, target)) == 2, 120,
                       "two instances")
        feed = PacedFeed(servers, source)
        await asyncio.sleep(5.0)  # past the first rebalance and warm-up
        steady_from = time.time()
        await asyncio.sleep(STEADY_S)
        steady = out.max_gap(steady_from, time.time())
        print(f"steady state: longest output gap {steady * 1000:.0f} ms over {STEADY_S:g}s")
        assert master.rollouts is not None
        for name, version, strategy in (("canary", "v2", "canary"),
                                        ("blue_green", "v3", "blue-green")):
            began, wall = time.monotonic(), time.time()
            master.rollout("pass", version, strategy)
            await wait_for(lambda: not master.rollouts.rollouts["pass"].active,  # type: ignore[union-attr]
                           300, f"the {strategy} rollout")
            took = time.monotonic() - began
            phase = master.rollouts.rollouts["pass"].phase.value
            await asyncio.sleep(AFTER_S)
            gap = out.max_gap(wall, time.time())
            result[name] = {"rollout_s": round(took, 2), "max_output_gap_s": round(gap, 3),
                            "outcome": phase}
            print(f"{name}: {phase} in {took:.1f}s; longest output gap {gap * 1000:.0f} ms")
        total = feed.stop()
        feed = None
        with contextlib.suppress(TimeoutError):  # what is missing then is counted as lost
            await wait_for(lambda: len(out.ids) >= total, 120, "every message out")
        lost = sum(1 for n in range(total) if n not in out.ids)
        print(f"{total} messages fed at {RATE}/s, {lost} lost")
        result.update(steady_max_gap_s=round(steady, 3), lost=lost, messages=total, rate=RATE)
        for name in ("canary", "blue_green"):
            result[name]["gap_vs_steady"] = round(
                result[name]["max_output_gap_s"] / max(steady, 1e-3), 2)
    finally:
        if feed is not None:
            feed.stop()
        await master.close()
        out.close()
    return result


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    with broker() as servers:
        emit({"bench": "rollout", **asyncio.run(run(servers))})


if __name__ == "__main__":
    main()
