"""What a container adds to a scale-out: DOCKER against LOCAL, in the same run.

For each trial a fresh group of the example slow stage has a pre-filled input
topic waiting. At t0 the provider is asked for one instance (the scale-out
decision carried out); the figure is t0 -> the first output message that
instance wrote, as a reader on the host sees it. Everything after the start
(the Kafka client connecting, joining the group, fetching) is the same for both,
so the difference is the container's own start cost. Trials alternate LOCAL and
DOCKER so load on the machine hits both alike; medians are reported.

Target: a container adds at most 2 s.

    python -m bench.docker_scale [--trials 5]   # $FOGVERSE_BOOTSTRAP or a broker it starts
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
from confluent_kafka import Consumer

from bench._common import broker, create_topics, emit, fresh, prefill
from deploy_scripts import DeployResult, LocalProvider, ServiceSpec
from deploy_scripts.docker import DockerProvider
from deploy_scripts.docker_images import build_stage_image, engine_environment
from deploy_scripts.docker_spec import DockerServiceSpec

ROOT = Path(__file__).resolve().parents[1]
STAGE_MODULE = "examples.autoscale.slow_stage"
TARGET_OVERHEAD_S = 2.0
log = logging.getLogger("bench.docker_scale")


class FirstOutputs:
    """When (host clock) each instance's first output message arrived."""

    def __init__(self, servers: str, topic: str) -> None:
        self.first: dict[str, float] = {}
        self._stop = threading.Event()
        self._consumer = Consumer({"bootstrap.servers": servers, "group.id": fresh("bench"),
                                   "auto.offset.reset": "earliest"})  # fmt: skip
        self._consumer.subscribe([topic])
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for msg in self._consumer.consume(100, 0.05):
                if msg.error() is None:
                    by = msgpack.unpackb(msg.value()).get("by")
                    self.first.setdefault(by, time.time())

    def wait_for(self, instance_id: str, timeout: float = 120.0) -> float:
        deadline = time.monotonic() + timeout
        while instance_id not in self.first:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{instance_id} wrote nothing within {timeout}s")
            time.sleep(0.01)
        return self.first[instance_id]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._consumer.close()


def stage_env(servers: str, source: str, target: str) -> dict[str, str]:
    return {"FOGVERSE_BOOTSTRAP": servers, "CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target,
            "GROUP_ID": fresh("bench-dk"), "SLOW_SECONDS": "0.001",
            "CONTROL_TOPIC": fresh("bench-control")}  # fmt: skip


def local_provider(env: dict[str, str]) -> LocalProvider:
    spec = ServiceSpec("slow", module=STAGE_MODULE, env=env, cwd=str(ROOT))
    return LocalProvider({"slow": spec}, stop_timeout=5.0)


def docker_provider(image: str, env: dict[str, str]) -> DockerProvider:
    spec = DockerServiceSpec("slow", image, command=("python3", "-m", STAGE_MODULE),
                             env=env, network="host")  # fmt: skip
    # start_check=0: the deploy returns as soon as the container runs, as LOCAL's does.
    return DockerProvider({"slow": spec}, master_id=fresh("bench"), start_check=0.0,
                          stop_timeout=5.0)  # fmt: skip


def trial(servers: str, make: Callable[[dict[str, str]], Any]) -> float:
    """One scale-out: seconds from the deploy call to the new instance's first output."""
    source, target = fresh("bench-dk-in"), fresh("bench-dk-out")
    create_topics(servers, source, target)
    prefill(servers, source, 200, make=lambda i: msgpack.packb({"id": i}))
    provider = make(stage_env(servers, source, target))
    outputs = FirstOutputs(servers, target)
    result: DeployResult | None = None
    try:
        t0 = time.time()
        result = provider(log, {"service_name": "slow"})
        return outputs.wait_for(result.instance_id) - t0
    finally:
        outputs.close()
        if result is not None:
            result.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    engine_environment(ROOT)
    import docker

    client = docker.from_env()
    started = time.monotonic()
    image = build_stage_image(client, engine_environment(ROOT)["FOGVERSE_DOCKER_BASE"])
    print(f"stage image {image} ready in {time.monotonic() - started:.1f}s", file=sys.stderr)
    local: list[float] = []
    container: list[float] = []
    with broker() as servers:
        for n in range(args.trials):
            local.append(trial(servers, local_provider))
            container.append(trial(servers, lambda env: docker_provider(image, env)))
            print(f"trial {n + 1}: local {local[-1]:.2f}s  container {container[-1]:.2f}s",
                  file=sys.stderr)  # fmt: skip
    client.close()
    local_s, container_s = statistics.median(local), statistics.median(container)
    print(f"median reaction: local {local_s:.2f}s, container {container_s:.2f}s "
          f"(+{container_s - local_s:.2f}s; target at most +{TARGET_OVERHEAD_S:.0f}s)")
    emit({
        "bench": "docker_scale",
        "container_reaction_s": round(container_s, 3),
        "local_reaction_s": round(local_s, 3),
        "container_overhead_s": round(container_s - local_s, 3),
        "container_vs_local": round(container_s / local_s, 2),
        "overhead_target_s": TARGET_OVERHEAD_S,
        "trials": args.trials,
        "container_runs_s": [round(x, 3) for x in container],
        "local_runs_s": [round(x, 3) for x in local],
    })


if __name__ == "__main__":
    main()
