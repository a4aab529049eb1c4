"""DOCKER service settings: what a config says becomes the Docker API's arguments."""

from __future__ import annotations

import pytest

from deploy_scripts.docker_spec import DockerServiceSpec, docker_service
from fogverse.errors import ConfigError


def test_a_full_service_entry_becomes_the_container_options() -> None:
    spec = docker_service(
        "detector", command=["python3", "-m", "app"], env={"A": "1"}, max_instance=3,
        extra_configs={"image": "stage:1", "network": "host", "cpus": 0.5, "memory": "256m",
                       "restart": "on-failure:3", "labels": {"team": "vision"}},
    )
    assert spec.command == ("python3", "-m", "app")
    assert spec.network_options() == {"network_mode": "host"}
    assert spec.limits() == {"nano_cpus": 500_000_000, "mem_limit": "256m"}
    assert spec.restart_policy() == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert dict(spec.labels) == {"team": "vision"}


@pytest.mark.parametrize(
    ("network", "options"),
    [(None, {}), ("bridge", {"network_mode": "bridge"}), ("none", {"network_mode": "none"}),
     ("pipeline", {"network": "pipeline"})],
)
def test_named_networks_and_network_modes(network: str | None, options: dict[str, str]) -> None:
    assert DockerServiceSpec("s", "img", network=network).network_options() == options


def test_no_restart_is_the_default() -> None:
    assert DockerServiceSpec("s", "img").restart_policy() == {"Name": ""}


@pytest.mark.parametrize(
    ("extra", "setting"),
    [({}, "services.s.extra_configs.image"),
     ({"image": "i", "memory": "lots"}, "services.s.extra_configs.memory"),
     ({"image": "i", "cpus": 0}, "services.s.extra_configs.cpus"),
     ({"image": "i", "cpus": "two"}, "services.s.extra_configs.cpus"),
     ({"image": "i", "restart": "sometimes"}, "services.s.extra_configs.restart"),
     ({"image": "i", "labels": ["a"]}, "services.s.extra_configs.labels")],
)
def test_a_bad_setting_is_named_as_the_user_wrote_it(extra: dict[str, object],
                                                     setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        docker_service("s", extra_configs=extra)
    assert caught.value.setting == setting
    assert setting in str(caught.value)
