"""The DOCKER provider on a live Docker engine: real containers, a real broker, real kills.

Stage containers share the host's network (``network = "host"``), so they reach
the test broker at the address the tests use.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from deploy_scripts import DeployError, DeployScripts
from deploy_scripts.docker import DockerDeployError, DockerProvider
from deploy_scripts.docker_spec import DockerServiceSpec
from fogverse.constants import LABEL_INSTANCE_ID, LABEL_MASTER_ID, LABEL_SERVICE, PROVIDER_DOCKER
from master.deployer import AutoDeployer
from master.plans import StagePlan
from master.scheduling.autoscale import DeployerSettings
from tests.kafka_io import produce_msgpack, read
from workers.registry import InstanceRegistry

log = logging.getLogger(__name__)

# PID 1 in a container ignores SIGTERM unless it handles it: no need to wait long.
SLEEPER = ("python3", "-c", "import time; print('up', flush=True); time.sleep(600)")

MakeProvider = Callable[..., DockerProvider]


@pytest.fixture
def master_id() -> str:
    return f"test-master-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_provider(docker_client: Any, master_id: str) -> Iterator[MakeProvider]:
    """Providers for this test's master id; every container it labelled is removed after."""

    def make(services: dict[str, DockerServiceSpec], **kwargs: Any) -> DockerProvider:
        kwargs.setdefault("master_id", master_id)
        kwargs.setdefault("stop_timeout", 2.0)
        return DockerProvider(services, client=docker_client, **kwargs)

    yield make
    for container in _labelled(docker_client, {LABEL_MASTER_ID: master_id}):
        container.remove(force=True)


def _labelled(client: Any, labels: dict[str, str]) -> list[Any]:
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    found: list[Any] = client.containers.list(all=True, filters=filters)
    return found


def _ids(client: Any, master_id: str, *, running_only: bool = True) -> set[str]:
    found = _labelled(client, {LABEL_MASTER_ID: master_id})
    return {c.labels[LABEL_INSTANCE_ID] for c in found
            if not running_only or c.status == "running"}


@pytest.mark.slow
async def test_scaled_out_containers_share_the_stage_and_every_message_arrives(
    docker_client: Any, stage_image: str, make_provider: MakeProvider, master_id: str,
    kafka_bootstrap: str, make_topic: Callable[..., str], unique: Callable[[str], str],
) -> None:
    source, target = make_topic("docker-in", partitions=2), make_topic("docker-out")
    spec = DockerServiceSpec(
        "slow", stage_image, command=("python3", "-m", "examples.autoscale.slow_stage"),
        network="host", cpus=1.0, memory="300m", restart="on-failure:2", max_instance=2,
        env={"CONSUMER_TOPIC": source, "PRODUCER_TOPIC": target, "GROUP_ID": unique("dk"),
             "SLOW_SECONDS": "0.001", "CONTROL_TOPIC": unique("docker-control")},
    )  # fmt: skip
    provider = make_provider({"slow": spec}, base_env={"FOGVERSE_BOOTSTRAP": kafka_bootstrap})
    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_DOCKER, provider)

    first = await scripts.deploy({"provider": PROVIDER_DOCKER, "service_name": "slow"})
    second = await scripts.deploy({"provider": PROVIDER_DOCKER, "service_name": "slow"})
    assert first is not None and second is not None
    started = {first.instance_id, second.instance_id}

    # `docker ps` by label shows both, with the service's limits and restart policy.
    assert _ids(docker_client, master_id) == started
    container = docker_client.containers.get(first.info["container_id"])
    assert container.labels[LABEL_SERVICE] == "slow"
    assert container.attrs["HostConfig"]["NanoCpus"] == 1_000_000_000
    assert container.attrs["HostConfig"]["Memory"] == 300 * 1024 * 1024
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "on-failure"
    assert f"FOGVERSE_INSTANCE_ID={first.instance_id}" in container.attrs["Config"]["Env"]

    produce_msgpack(kafka_bootstrap, source, ({"id": n} for n in range(300)),
                    keys=[str(n).encode() for n in range(300)])  # fmt: skip
    records = read(kafka_bootstrap, target, 300, timeout=120)
    ids = sorted(r.data["id"] for r in records)  # type: ignore[index]
    assert set(ids) == set(range(300)), "messages were lost"
    workers = {r.data["by"] for r in records}  # type: ignore[index]
    assert workers <= started and workers, f"processed by {workers}, started {started}"

    # Scale in: stopping an instance stops and removes its container.
    await scripts.stop(first)
    assert _ids(docker_client, master_id, running_only=False) == {second.instance_id}
    await scripts.stop(second)
    assert _ids(docker_client, master_id, running_only=False) == set()


def test_a_sigkilled_master_leaves_its_containers_and_a_new_one_adopts_them(
    docker_client: Any, stage_image: str, make_provider: MakeProvider, master_id: str
) -> None:
    master = subprocess.Popen(
        [sys.executable, "-c", _MASTER_STAND_IN, stage_image, master_id],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ),
    )  # fmt: skip
    assert master.stdout is not None
    instance_id = master.stdout.readline().strip()
    assert instance_id, "the stand-in master started nothing"
    os.kill(master.pid, signal.SIGKILL)
    assert master.wait(30) == -signal.SIGKILL

    assert _ids(docker_client, master_id) == {instance_id}, "the container died with the master"

    spec = DockerServiceSpec("sleeper", stage_image, command=SLEEPER, network="none")
    restarted = make_provider({"sleeper": spec})
    assert restarted.running() == [instance_id]
    adopted = restarted.adopt(instance_id, {})
    assert adopted is not None and adopted.instance_id == instance_id
    # Adopted containers count against max_instance: no duplicate is started.
    with pytest.raises(DockerDeployError, match="already runs 1 container"):
        restarted(log, {"service_name": "sleeper"})
    adopted.stop()
    assert _ids(docker_client, master_id, running_only=False) == set()
    assert restarted.adopt(instance_id, {}) is None


# Runs as the "master": starts one container through the provider, reports its id,
# then waits to be killed.
_MASTER_STAND_IN = """
import logging, sys, time
from deploy_scripts.docker import DockerProvider
from deploy_scripts.docker_spec import DockerServiceSpec
command = ("python3", "-c", "import time; time.sleep(600)")
spec = DockerServiceSpec("sleeper", sys.argv[1], command=command, network="none")
provider = DockerProvider({"sleeper": spec}, master_id=sys.argv[2])
print(provider(logging.getLogger(), {"service_name": "sleeper"}).instance_id, flush=True)
time.sleep(600)
"""


async def test_adoption_goes_through_the_registry(
    docker_client: Any, stage_image: str, make_provider: MakeProvider, master_id: str
) -> None:
    spec = DockerServiceSpec("sleeper", stage_image, command=SLEEPER, network="none")
    before = make_provider({"sleeper": spec})
    started = before(log, {"service_name": "sleeper"})
    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_DOCKER, make_provider({"sleeper": spec}))
    scripts.set_adopt_function(PROVIDER_DOCKER, make_provider({"sleeper": spec}).adopt)

    adopted = await scripts.adopt(PROVIDER_DOCKER, started.instance_id, started.info)
    assert adopted is not None and adopted.info["container_id"] == started.info["container_id"]
    await scripts.close()  # a restarted master's shutdown stops what it adopted
    assert _ids(docker_client, master_id, running_only=False) == set()


def test_a_missing_image_is_a_clear_counted_error(make_provider: MakeProvider,
                                                  master_id: str, docker_client: Any) -> None:
    spec = DockerServiceSpec("ghost", "fogverse-no-such-image:0", command=SLEEPER)
    provider = make_provider({"ghost": spec})
    for _ in range(2):
        with pytest.raises(DockerDeployError) as caught:
            provider(log, {"service_name": "ghost"})
        assert caught.value.reason == "image-missing"
        assert "'fogverse-no-such-image:0'" in str(caught.value)
        assert "docker_images stage" in str(caught.value)
    assert provider.failures["image-missing"] == 2
    assert _ids(docker_client, master_id, running_only=False) == set()


def test_a_container_that_exits_at_once_is_reported_with_its_output(
    make_provider: MakeProvider, stage_image: str, master_id: str, docker_client: Any
) -> None:
    crash = ("python3", "-c", "import sys; print('no config here'); sys.exit(3)")
    spec = DockerServiceSpec("crashy", stage_image, command=crash, network="none",
                             restart="on-failure:5")  # fmt: skip
    provider = make_provider({"crashy": spec}, start_check=3.0)
    with pytest.raises(DockerDeployError) as caught:
        provider(log, {"service_name": "crashy"})
    assert caught.value.reason == "exited-at-once"
    assert "code 3" in str(caught.value) and "no config here" in str(caught.value)
    assert provider.failures == {"exited-at-once": 1}
    assert _ids(docker_client, master_id, running_only=False) == set(), "the corpse was kept"


@pytest.mark.parametrize("when", ["before the master started", "after the client was made"])
def test_an_engine_that_does_not_answer_is_a_clear_counted_error(
    when: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import docker

    # A stopped daemon, as a client sees it: a socket nobody serves.
    socket = f"unix://{tmp_path}/stopped.sock"
    spec = DockerServiceSpec("s", "fogverse-stage:any", command=SLEEPER)
    if when == "before the master started":
        monkeypatch.setenv("DOCKER_HOST", socket)
        provider = DockerProvider({"s": spec})  # finds the engine through DOCKER_HOST
    else:
        client = docker.DockerClient(base_url=socket, version="1.41", timeout=5)
        provider = DockerProvider({"s": spec}, client=client)
    with pytest.raises(DockerDeployError) as caught:
        provider(log, {"service_name": "s"})
    assert caught.value.reason == "daemon-unreachable"
    assert "does not answer" in str(caught.value) and "docker-env.sh" in str(caught.value)
    assert provider.failures == {"daemon-unreachable": 1}


def test_an_undeclared_service_names_the_declared_ones(make_provider: MakeProvider,
                                                       stage_image: str) -> None:
    provider = make_provider({"a": DockerServiceSpec("a", stage_image)})
    with pytest.raises(DeployError, match="declared services: a"):
        provider(log, {"service_name": "b"})


async def test_the_deployer_backs_off_a_service_whose_image_is_missing(
    make_provider: MakeProvider,
) -> None:
    provider = make_provider({"ghost": DockerServiceSpec("ghost", "fogverse-no-such-image:0")})
    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_DOCKER, provider)
    now = [0.0]
    deployer = AutoDeployer(scripts, InstanceRegistry(),
                            DeployerSettings(deploy_delay=1.0, startup_grace=0.0),
                            clock=lambda: now[0])  # fmt: skip
    deployer.set_plan(StagePlan(("in", "out"), "ghost", PROVIDER_DOCKER, min_instance=1))
    for second in range(16):
        now[0] = float(second)
        await deployer.tick(now[0])
        await deployer.idle()
    # Without backoff that is a try every second; with it, at 0, 1, 3, 7 and 15.
    assert provider.failures == {"image-missing": 5}
    held = [d for d in deployer.decisions if d.code == "start_backoff"]
    assert held and "image 'fogverse-no-such-image:0'" in held[-1].reason
