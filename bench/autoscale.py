"""How fast the Master reacts to a load step, and what a scale-out costs the running instances.

A slow stage (100 messages/s per instance) idles under a master with the
documented defaults. At t0 a paced feeder steps from 0 to 250 messages/s; the
master adds a second and a third instance through LOCAL. Measured:

* reaction: t0 -> the first message processed by the new instance, split into
  detect (t0 -> the scale-out decision) and start (decision -> first message);
* the longest gap between consecutive outputs of each instance already running
  while the group rebalances (decision -> new instance's first message + 3 s),
  against the longest gap of the single instance under load before any scaling.

Run with the defaults (KIP-848, ``group.protocol=consumer``; partitions added
ahead of need while the stage is idle), then with partitions added at each
scale-out, then with the classic protocol and cooperative-sticky assignment. Reference points, not
measured here: KEDA polls every 30 s by default; FogVerse's README defaults wait
30 s after each deploy and judge ratios every 60 s.

    python -m bench.autoscale        # uses $FOGVERSE_BOOTSTRAP or starts a broker
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sys
import threading
import time
from pathlib import Path
from typing import Any

import msgpack
from confluent_kafka import Consumer

from bench._common import broker, create_topics, emit, fresh
from examples.autoscale.feeder import Feeder
from master import Master, master_settings

ROOT = Path(__file__).resolve().parents[1]
LOAD = 250.0
IDLE_BEFORE_STEP = 12.0  # a full statistics window of steady zero
SCENARIOS = (
    ("kip848", "consumer", True),                    # the defaults
    ("kip848_partitions_on_demand", "consumer", False),
    ("classic_cooperative", "classic", True),
)


class Outputs:
    """Every output of the stage: (instance, processed-at) per message id."""

    def __init__(self, servers: str, topic: str) -> None:
        self.rows: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": servers, "group.id": fresh("bench"),
                                   "auto.offset.reset": "earliest",
                                   "topic.metadata.refresh.interval.ms": 1000})
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(500, 0.2):
                if msg.error() is None:
                    row = msgpack.unpackb(msg.value())
                    self.rows.append((row["by"], row["at"]))
        self._consumer.close()

    def by_instance(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for by, at in list(self.rows):
            out.setdefault(by, []).append(at)
        return {k: sorted(v) for k, v in out.items()}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def max_gap(times: list[float], start: float, end: float) -> float:
    return longest_gap(times, start, end)[0]


def longest_gap(times: list[float], start: float, end: float) -> tuple[float, float]:
    """The longest stretch without output in [start, end], and where it began."""
    inside = [t for t in times if start <= t <= end]
    edges = [start, *inside, end]
    return max((b - a, a) for a, b in itertools.pairwise(edges))


async def wait_for(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)


async def scenario(servers: str, protocol: str, ahead: bool = True) -> dict[str, Any]:
    control, source, target, group = (fresh(p) for p in ("control", "in", "out", "slow"))
    create_topics(servers, source, target)
    env = {"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": group,
           "CONTROL_TOPIC": control, "SLOW_SECONDS": "0.01", "GROUP_PROTOCOL": protocol}
    master = Master(master_settings({  # every timing setting at its documented default
        "consumer_topic": control, "consumer_servers": servers, "http_port": None,
        "included_worker": ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"],
        "auto_deployer_config": {"partitions_ahead": ahead},
        "services": {"slow": {"module": "examples.autoscale.slow_stage", "cwd": str(ROOT),
                              "min_instance": 1, "max_instance": 3, "source_topic": source,
                              "target_topic": target, "group_id": group, "env": env}},
    }))
    stage = (source, target)
    outputs = Outputs(servers, target)
    feeder = Feeder(0.0, producer_topic=source, consumer_servers=servers, control_topic=control)
    feeding = threading.Thread(target=lambda: asyncio.run(feeder.run()), daemon=True)
    await master.start()
    try:
        await wait_for(lambda: master.registry.live_count(stage) == 1, 60, "first instance")
        feeding.start()
        await asyncio.sleep(IDLE_BEFORE_STEP)
        t0 = time.time()
        feeder.rate = LOAD
        await wait_for(lambda: master.registry.live_count(stage) == 3, 120, "third instance")
        await asyncio.sleep(5)
        assert master.deployer is not None
        decisions = [d for d in master.deployer.decisions if d.action == "scale_out"
                     and d.code == "needs_more"]
        return measure(outputs.by_instance(), t0, [d.at for d in decisions])
    finally:
        feeder.stop()
        feeding.join(30)
        await master.close()
        outputs.close()


def measure(streams: dict[str, list[float]], t0: float, decided: list[float]) -> dict[str, Any]:
    first = {i: times[0] for i, times in streams.items()}
    order = sorted(first, key=first.__getitem__)
    original, newcomers = order[0], order[1:]
    reaction = first[newcomers[0]] - t0
    gaps: list[tuple[float, float]] = []
    for k, newcomer in enumerate(newcomers):
        start, end = decided[k], first[newcomer] + 3.0
        gaps += [longest_gap(streams[i], start, end) for i in order[: k + 1]]
    worst, worst_at = max(gaps)
    return {
        "reaction_s": round(reaction, 3),
        "detect_s": round(decided[0] - t0, 3),
        "start_s": round(first[newcomers[0]] - decided[0], 3),
        "second_scale_out_s": round(first[newcomers[1]] - t0, 3) if len(newcomers) > 1 else None,
        "rebalance_max_gap_s": round(worst, 3),
        "gap_began_after_t0_s": round(worst_at - t0, 3),
        "scale_out_decisions_after_t0_s": [round(d - t0, 3) for d in decided],
        "new_instance_first_output_after_t0_s": [round(first[n] - t0, 3) for n in newcomers],
        "steady_max_gap_s": round(max_gap(streams[original], t0 + 0.5, decided[0]), 3),
    }


async def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    results: dict[str, Any] = {}
    with broker() as servers:
        for name, protocol, ahead in SCENARIOS:
            result = await scenario(servers, protocol, ahead)
            results[name] = result
            print(f"{name:>20}: reaction {result['reaction_s']:.2f}s "
                  f"(detect {result['detect_s']:.2f}s + start {result['start_s']:.2f}s), "
                  f"longest output gap during rebalance {result['rebalance_max_gap_s']:.3f}s "
                  f"vs {result['steady_max_gap_s']:.3f}s steady", flush=True)
    best = results["kip848"]
    emit({
        "bench": "autoscale",
        "reaction_s": best["reaction_s"],
        "reaction_target_s": 10.0,
        "rebalance_max_gap_s": best["rebalance_max_gap_s"],
        "rebalance_gap_target_s": 1.0,
        "gap_vs_steady": round(best["rebalance_max_gap_s"] / best["steady_max_gap_s"], 2),
        "reaction_vs_keda_poll": round(best["reaction_s"] / 30.0, 3),
        "protocols": results,
    })


if __name__ == "__main__":
    asyncio.run(main())
