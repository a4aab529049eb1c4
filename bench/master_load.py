"""Master CPU with 1,000, then 10,000 simulated instances heartbeating once a second.

Three processes on one broker: a simulator sending one heartbeat per instance
per second (100 stages; every source topic exists, so the master reads 100
groups' lag from the broker every second), the master as ``fogverse master``,
and a raw confluent-kafka consumer reading the same control topic without
decoding anything: the floor for merely receiving the stream. CPU is
user+system time of each process over the same window, in percent of one core.
Targets: under 20% of a core for 1,000 instances, under 100% for 10,000.

    python -m bench.master_load          # uses $FOGVERSE_BOOTSTRAP or starts a broker
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from confluent_kafka import Consumer, Producer

from bench._common import broker, create_topics, emit, fresh
from fogverse.control import Heartbeat, encode_control

ROOT = Path(__file__).resolve().parents[1]
STAGES = 100
WARMUP_S = 10.0
MEASURE_S = 30.0


def simulate(servers: str, control: str, prefix: str, instances: int, seconds: float) -> None:
    """Send one heartbeat per instance per second, spread evenly over the second."""
    producer = Producer({"bootstrap.servers": servers, "linger.ms": 5})
    payloads = [_beat(prefix, i) for i in range(instances)]
    start = time.monotonic()
    n = 0
    while (elapsed := time.monotonic() - start) < seconds:
        # Everything due by now, in one burst every few milliseconds: a sleep per
        # beat cannot keep 10,000 a second.
        due = int(elapsed * instances)
        while n < due:
            i = n % instances
            # Fresh timestamps: the master drops beats sent over 30 s ago.
            beat = payloads[i]
            producer.produce(control, encode_control(beat, beat.instance_id), beat.instance_id)
            n += 1
        producer.poll(0)
        time.sleep(0.005)
    producer.flush(10)


def _beat(prefix: str, i: int) -> Heartbeat:
    stage = i % STAGES
    return Heartbeat(
        instance_id=f"sim-{i}", service_name=f"svc-{stage}",
        source_topic=f"{prefix}-in-{stage}", target_topic=f"{prefix}-out-{stage}",
        consumed=100, produced=100, interval=1.0, processing_seconds=0.5,
        group_id=f"{prefix}-g-{stage}", node_id=f"node-{i % 20}",
    )


def raw_consume(servers: str, control: str, seconds: float) -> None:
    consumer = Consumer({"bootstrap.servers": servers, "group.id": fresh("raw"),
                         "auto.offset.reset": "latest", "enable.auto.commit": False})
    consumer.subscribe([control])
    end = time.monotonic() + seconds
    count = 0
    while time.monotonic() < end:
        count += len(consumer.consume(1000, 0.2))
    consumer.close()
    print(f"raw consumer read {count}", file=sys.stderr)


def cpu_seconds(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def start_master(
    servers: str, control: str, workdir: Path
) -> tuple[subprocess.Popen[str], int]:
    config = workdir / "master.toml"
    config.write_text(
        f'consumer_topic = "{control}"\nconsumer_servers = "{servers}"\n'
        'included_worker = ["AUTO_DEPLOYER", "STATISTIC_WORKER", "INPUT_OUTPUT_WORKER"]\n'
    )
    log = workdir / "master.log"
    # A file, not a pipe: a pipe nobody reads fills up and blocks the master.
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fogverse", "master", "--config", str(config),
             "--http-port", "0"],
            stderr=out, text=True, cwd=ROOT,
        )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        found = re.search(r"status on http://[\d.]+:(\d+)/status", log.read_text())
        if found:
            return proc, int(found.group(1))
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the master did not serve /status:\n" + log.read_text()[-2000:])


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=10) as r:
        result: dict[str, Any] = json.load(r)
        return result


def helper(args: list[str]) -> list[str]:
    return [sys.executable, "-m", "bench.master_load", *args]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--simulate", nargs=5,
                        metavar=("SERVERS", "TOPIC", "PREFIX", "INSTANCES", "SECS"))
    parser.add_argument("--raw", nargs=3, metavar=("SERVERS", "TOPIC", "SECS"))
    args = parser.parse_args()
    if args.simulate:
        servers, topic, prefix, instances, secs = args.simulate
        simulate(servers, topic, prefix, int(instances), float(secs))
        return
    if args.raw:
        servers, topic, secs = args.raw
        raw_consume(servers, topic, float(secs))
        return
    with broker() as servers, tempfile.TemporaryDirectory() as tmp:
        small = run(servers, Path(tmp), 1000)
        large = run(servers, Path(tmp), 10000)
    emit({
        "bench": "master_load",
        **small,
        **{f"{k}_10k": v for k, v in large.items()},
        "target_cpu_pct": 20.0,
        "target_cpu_pct_10k": 100.0,
        "cores": os.cpu_count(),
    })


def run(servers: str, workdir: Path, instances: int) -> dict[str, Any]:
    control, prefix = fresh("control"), fresh("load")
    create_topics(servers, control, *(f"{prefix}-in-{s}" for s in range(STAGES)))
    master, port = start_master(servers, control, workdir)
    total = WARMUP_S + MEASURE_S + 5
    sim = subprocess.Popen(
        helper(["--simulate", servers, control, prefix, str(instances), str(total)]), cwd=ROOT)
    raw = subprocess.Popen(helper(["--raw", servers, control, str(total)]), cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while status(port)["master"]["instances"] < instances:
            if time.monotonic() > deadline:
                raise RuntimeError(f"master sees {status(port)['master']['instances']} instances")
            time.sleep(0.5)
        time.sleep(max(0.0, WARMUP_S - 5))
        procs = {"master": psutil.Process(master.pid), "raw": psutil.Process(raw.pid),
                 "simulator": psutil.Process(sim.pid)}
        before = {k: cpu_seconds(p) for k, p in procs.items()}
        beats_before = status(port)["master"]["messages"].get("heartbeat", 0)
        started = time.monotonic()
        time.sleep(MEASURE_S)
        wall = time.monotonic() - started
        after = {k: cpu_seconds(p) for k, p in procs.items()}
        snapshot = status(port)
    finally:
        for p in (sim, raw):
            p.wait(timeout=60)
        master.terminate()
        master.communicate(timeout=60)
    pct = {k: 100 * (after[k] - before[k]) / wall for k in procs}
    beats = (snapshot["master"]["messages"]["heartbeat"] - beats_before) / wall
    print(f"master: {pct['master']:.1f}% of a core for {beats:.0f} heartbeats/s from "
          f"{snapshot['master']['instances']} instances in {len(snapshot['stages'])} stages; "
          f"raw consumer of the same stream: {pct['raw']:.1f}%; simulator {pct['simulator']:.1f}%",
          flush=True)
    return {
        "instances": snapshot["master"]["instances"],
        "stages": len(snapshot["stages"]),
        "heartbeats_per_s": round(beats, 1),
        "master_cpu_pct": round(pct["master"], 2),
        "raw_consumer_cpu_pct": round(pct["raw"], 2),
        "master_vs_raw": round(pct["master"] / max(pct["raw"], 0.01), 2),
        "dropped": snapshot["master"]["malformed"],
    }


if __name__ == "__main__":
    main()
