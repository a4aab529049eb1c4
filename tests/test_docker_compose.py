"""docker-compose.yml, run for real: up -> messages flow end to end -> down leaves nothing.

The images are the locally built ones (the file's image names come from the
environment); compose is whichever implementation is installed: the ``docker
compose`` plugin, else Debian's or PyPI's ``docker-compose``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from fogverse.broker.kafka_node import free_ports
from fogverse.constants import NODES_TOPIC
from fogverse.control import open_envelope
from tests.docker_engine import ROOT, skip_or_fail_docker
from tests.kafka_io import read

COUNT = 300
PROJECT_LABEL = "com.docker.compose.project"


def _compose_command() -> list[str]:
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        return [standalone]
    skip_or_fail_docker("no compose: apt-get install docker-compose (scripts/docker-env.sh does)")


@pytest.fixture
def compose(docker_client: Any, stage_image: str, kafka_image: str) -> Iterator[Any]:
    """Run ``compose <args>`` on this test's project; the project is taken down after."""
    project = f"fv{uuid.uuid4().hex[:8]}"
    (port,) = free_ports(1)
    env = {**os.environ, "FOGVERSE_STAGE_IMAGE": stage_image, "FOGVERSE_KAFKA_IMAGE": kafka_image,
           "FOGVERSE_KAFKA_PORT": str(port), "FEEDER_RATE": "100", "FEEDER_COUNT": str(COUNT)}
    base = [*_compose_command(), "-f", str(ROOT / "docker-compose.yml"), "-p", project]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*base, *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"compose {' '.join(args)} failed:\n{done.stderr[-3000:]}"
        return done

    run.project = project  # type: ignore[attr-defined]
    run.bootstrap = f"127.0.0.1:{port}"  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        subprocess.run([*base, "down", "-v", "-t", "5"], env=env, capture_output=True,
                       timeout=300, check=False)  # fmt: skip


@pytest.mark.slow
def test_compose_up_runs_the_pipeline_and_down_leaves_nothing(
    compose: Any, docker_client: Any
) -> None:
    compose("up", "-d")
    records = read(compose.bootstrap, "autoscale-out", COUNT, timeout=180)
    ids = sorted(r.data["id"] for r in records)  # type: ignore[index]
    assert set(ids) == set(range(COUNT)), "messages were lost on the way through the pipeline"
    running = {c.labels["com.docker.compose.service"] for c in _project(docker_client, compose)}
    assert {"kafka", "master", "agent"} <= running
    # The node agent in its container reports its capacity over Kafka.
    reports = read(compose.bootstrap, NODES_TOPIC, 1, timeout=60, settle=0)
    assert reports[0].key == b"compose-agent-1"
    assert open_envelope(reports[0].value).sender

    compose("down", "-v", "-t", "10")
    assert _project(docker_client, compose, include_stopped=True) == []
    networks = docker_client.networks.list(filters={"label": f"{PROJECT_LABEL}={compose.project}"})
    assert networks == []


def _project(client: Any, compose: Any, *, include_stopped: bool = False) -> list[Any]:
    filters = {"label": f"{PROJECT_LABEL}={compose.project}"}
    found: list[Any] = client.containers.list(all=include_stopped, filters=filters)
    return found
