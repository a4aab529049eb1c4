"""A Master with a DOCKER service, end to end on a live engine: ``fogverse master`` runs
the stage as a container, the stage carries every message, a SIGKILL of the Master
leaves the container running, and a restarted Master counts it instead of starting
a second one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy_scripts import DeployScripts
from deploy_scripts.docker import DockerProvider
from fogverse.constants import LABEL_MASTER_ID, LABEL_SERVICE, PROVIDER_DOCKER
from fogverse.errors import ConfigError
from master import master_settings
from master.wiring import add_docker_provider
from tests.kafka_io import produce_msgpack, read

ROOT = Path(__file__).resolve().parents[2]
COUNT = 100


def _containers(client: Any, master_id: str) -> list[Any]:
    found: list[Any] = client.containers.list(
        all=True, filters={"label": [f"{LABEL_MASTER_ID}={master_id}"]}
    )
    return found


@pytest.fixture
def master_id(docker_client: Any, unique: Callable[[str], str]) -> Iterator[str]:
    name = unique("docker-master")
    yield name
    for container in _containers(docker_client, name):
        container.remove(force=True)


def _start_master(config: Path) -> tuple[subprocess.Popen[str], list[str]]:
    """Run ``fogverse master`` until it reports a heartbeating instance; its log so far."""
    master = subprocess.Popen(
        [sys.executable, "-m", "fogverse", "master", "--config", str(config), "--http-port", "0"],
        stderr=subprocess.PIPE, text=True, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert master.stderr is not None
    lines: list[str] = []
    for line in master.stderr:
        lines.append(line)
        if "appeared" in line:  # an instance of the stage is heartbeating
            return master, lines
    master.wait()
    pytest.fail("master exited early:\n" + "".join(lines))


@pytest.mark.slow
def test_the_master_runs_a_docker_service_and_a_restart_counts_its_container(
    kafka_bootstrap: str, docker_client: Any, stage_image: str, master_id: str,
    unique: Callable[[str], str], make_topic: Callable[..., str], tmp_path: Path,
) -> None:
    control, group = unique("control"), unique("slow")
    source, target = make_topic("docker-master-in"), make_topic("docker-master-out")
    config = tmp_path / "master.toml"
    config.write_text(f"""
consumer_topic = "{control}"
consumer_servers = "{kafka_bootstrap}"
consumer_group_id = "{master_id}"
included_worker = ["AUTO_DEPLOYER", "INPUT_OUTPUT_WORKER", "STATISTIC_WORKER"]

[services.slow]
provider = "DOCKER"
module = "examples.autoscale.slow_stage"
source_topic = "{source}"
target_topic = "{target}"
group_id = "{group}"
max_instance = 2

[services.slow.env]
CONSUMER_TOPIC = "{source}"
PRODUCER_TOPIC = "{target}"
GROUP_ID = "{group}"
SLOW_SECONDS = "0.001"

[services.slow.extra_configs]
image = "{stage_image}"
network = "host"
memory = "300m"
""")
    master, lines = _start_master(config)
    try:
        containers = _containers(docker_client, master_id)
        assert [c.labels[LABEL_SERVICE] for c in containers] == ["slow"], "".join(lines)
        produce_msgpack(kafka_bootstrap, source, ({"id": n} for n in range(COUNT)))
        records = read(kafka_bootstrap, target, COUNT, timeout=120)
        assert sorted(r.data["id"] for r in records) == list(range(COUNT))  # type: ignore[index]

        master.send_signal(signal.SIGKILL)
        master.wait(30)
        containers[0].reload()
        assert containers[0].status == "running", "the stage died with its master"

        master, lines = _start_master(config)
        # The restarted master heard the running container and counts it: no second one.
        assert [c.id for c in _containers(docker_client, master_id)] == [containers[0].id]
    finally:
        if master.poll() is None:
            master.kill()
            master.wait()


def test_declared_docker_services_get_the_built_in_provider() -> None:
    settings = master_settings({"consumer_group_id": "m1", "services": {"s": {
        "provider": "DOCKER", "module": "app.stage",
        "extra_configs": {"image": "stage:1", "network": "host"}}}})
    scripts = DeployScripts()
    add_docker_provider(settings, scripts)
    provider = scripts.get_deploy_functions(PROVIDER_DOCKER)
    assert isinstance(provider, DockerProvider) and provider.master_id == "m1"


def test_a_docker_service_without_an_image_is_refused_naming_the_setting() -> None:
    settings = master_settings({"services": {"s": {"provider": "DOCKER", "module": "m"}}})
    with pytest.raises(ConfigError, match=r"services\.s\.extra_configs\.image"):
        add_docker_provider(settings, DeployScripts())
