"""Tasks from one process to three agents through the master, against one raw Kafka hop.

The master's fleet service runs in its own process, three ``fogverse agent``
processes beside it (trivial ``echo`` handler), and this process submits with a
:class:`~fogverse.TaskClient`. A task's round trip is four Kafka hops (client ->
master -> agent -> master -> client) plus a scheduling pass, so the baseline is
one raw produce -> consume hop on the same broker in the same run
(``kafka_hop_p99_ms``).

- ``tasks_per_s``: a burst of trivial tasks submitted at once, until the last
  completes (target >= 1,000).
- ``roundtrip_p50_ms`` / ``roundtrip_p99_ms``: submit -> completed status seen by
  the client, tasks paced at 200 per second (target p99 <= 50 ms).

    python -m bench.tasks [--burst 5000] [--rate 200] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import Producer as KafkaProducer
from confluent_kafka import TopicPartition

from bench._common import broker, create_topics, emit, fetch_batch, fresh
from fogverse.tasks.client import TaskClient

REPO = Path(__file__).resolve().parents[1]
AGENTS = 3
SLOTS = 64
"""Tasks each agent runs at once (and the scheduler's per-node limit here)."""


def run_master(settings: dict[str, Any]) -> None:
    """The master's fleet service, alone in a process."""
    from master.fleet import FleetService, FleetSettings
    from master.fog import FogScheduler
    from master.scheduling import Policies

    fog = FogScheduler(Policies(max_concurrent_tasks_per_node=SLOTS))
    service = FleetService(FleetSettings(**settings), fog)
    asyncio.run(service.run())


def start_agents(servers: str, settings: dict[str, Any], logs: Path) -> list[Any]:
    procs = []
    for n in range(AGENTS):
        argv = [sys.executable, "-m", "fogverse", "agent", "--bootstrap", servers,
                "--node-id", f"bench-node-{n}", "--master", settings["master_id"],
                "--nodes-topic", settings["nodes_topic"],
                "--orders-topic", settings["orders_topic"], "--max-tasks", str(SLOTS),
                "--interval", "1", "--handlers", "bench.tasks:HANDLERS"]
        log = open(logs / f"agent-{n}.log", "wb")  # noqa: SIM115 - the child owns it
        procs.append(subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, "THERMAL": "normal"}))
    return procs


def echo(payload: Any, task: Any) -> Any:
    return payload


HANDLERS = {"echo": echo}


def raw_hop_p99(servers: str, count: int = 2000, rate: int = 200) -> float:
    """One produce -> consume hop, paced like the round-trip run."""
    topic = fresh("bench-hop")
    create_topics(servers, topic)
    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("hop"),
                              "enable.auto.commit": False, "fetch.wait.max.ms": 20})
    consumer.assign([TopicPartition(topic, 0, 0)])
    producer = KafkaProducer({"bootstrap.servers": servers, "linger.ms": 1})
    sent: dict[int, float] = {}
    hops: list[float] = []
    done = threading.Event()

    def read() -> None:
        while len(hops) < count:
            for msg in fetch_batch(consumer, 100, 0.1):
                if msg.error() is None:
                    hops.append(time.perf_counter() - sent[int(msg.value())])
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    time.sleep(0.5)  # the consumer's first fetch is under way
    start = time.perf_counter()
    for i in range(count):
        while time.perf_counter() < start + i / rate:
            time.sleep(0.0005)
        sent[i] = time.perf_counter()
        producer.produce(topic, str(i).encode())
        producer.poll(0)
    producer.flush(30)
    done.wait(60)
    consumer.close()
    return _pct(hops, 0.99) * 1000


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def burst(client: TaskClient, count: int) -> float:
    start = time.perf_counter()
    ids = [client.submit_task("echo", i, cpu=0.0) for i in range(count)]
    results = await asyncio.gather(*(client.result(i, timeout=300) for i in ids))
    elapsed = time.perf_counter() - start
    failed = [r for r in results if r.state != "completed"]
    if failed:
        raise SystemExit(f"{len(failed)} tasks did not complete: {failed[0]}")
    return count / elapsed


async def paced(client: TaskClient, rate: int, seconds: float) -> list[float]:
    loop = asyncio.get_running_loop()
    trips: list[float] = []

    async def one(n: int) -> None:
        sent = time.perf_counter()
        task_id = client.submit_task("echo", n, cpu=0.0)
        status = await client.result(task_id, timeout=120)
        if status.state == "completed":
            trips.append(time.perf_counter() - sent)

    pending = []
    start = loop.time()
    for n in range(int(rate * seconds)):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        pending.append(asyncio.create_task(one(n)))
    await asyncio.gather(*pending)
    return trips


async def measure(client: TaskClient, burst_count: int, rate: int, seconds: float
                  ) -> dict[str, float]:
    await burst(client, 200)  # warm-up: every agent has run tasks, every path is hot
    tasks_per_s = await burst(client, burst_count)
    trips = await paced(client, rate, seconds)
    return {
        "tasks_per_s": round(tasks_per_s, 1),
        "roundtrip_p50_ms": round(statistics.median(trips) * 1000, 2),
        "roundtrip_p99_ms": round(_pct(trips, 0.99) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=5000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with broker() as servers:
        hop_p99 = raw_hop_p99(servers)
        print(f"raw Kafka hop p99: {hop_p99:.2f} ms", flush=True)
        settings = {"bootstrap": servers, "master_id": fresh("bench-master"),
                    "nodes_topic": fresh("bench-nodes"), "orders_topic": fresh("bench-orders"),
                    "tasks_topic": fresh("bench-tasks"), "status_topic": fresh("bench-status"),
                    "tick_s": 0.05}
        master = mp.get_context("spawn").Process(target=run_master, args=(settings,))
        master.start()
        logs = Path(fresh("/tmp/fogverse-bench-tasks"))
        logs.mkdir(parents=True)
        agents = start_agents(servers, settings, logs)
        client = TaskClient(servers, tasks_topic=settings["tasks_topic"],
                            status_topic=settings["status_topic"])
        try:
            client.start()
            _wait_for_agents(servers, settings, client)
            result = asyncio.run(measure(client, args.burst, args.rate, args.seconds))
        finally:
            client.close()
            for proc in agents:
                proc.terminate()
                proc.wait(30)
            master.terminate()
            master.join(30)
    print(f"tasks/s (burst of {args.burst}): {result['tasks_per_s']}")
    print(f"round trip at {args.rate}/s: p50 {result['roundtrip_p50_ms']} ms, "
          f"p99 {result['roundtrip_p99_ms']} ms (4 hops + scheduling; one raw hop p99 "
          f"{hop_p99:.2f} ms)")
    emit({**result, "kafka_hop_p99_ms": round(hop_p99, 2), "agents": AGENTS,
          "rate": args.rate})


def _wait_for_agents(servers: str, settings: dict[str, Any], client: TaskClient) -> None:
    """Until every agent has reported, then one task round trip so every path is open."""
    from fogverse.wire.nodes import NodeCapacity, decode_fleet

    consumer = KafkaConsumer({"bootstrap.servers": servers, "group.id": fresh("wait"),
                              "enable.auto.commit": False})
    consumer.assign([TopicPartition(settings["nodes_topic"], 0, 0)])
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while len(seen) < AGENTS:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {sorted(seen)} of {AGENTS} agents reported")
        for msg in consumer.consume(100, 0.2):
            if msg.error() is None:
                body = decode_fleet(msg.value()).body
                if isinstance(body, NodeCapacity):
                    seen.add(body.node_id)
    consumer.close()
    time.sleep(2 * 1.0)  # one more report interval: the master has heard them too
    status = client.wait(client.submit_task("echo", 0, cpu=0.0), timeout=120)
    if status.state != "completed":
        raise SystemExit(f"the first task did not complete: {status}")


if __name__ == "__main__":
    main()
