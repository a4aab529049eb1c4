"""A version of a service: what it changes, how it travels, and a provider starting it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import msgpack
import pytest
from deploy_helpers import child_spec, read_report

from deploy_scripts import DeployError, DeployScripts, LocalProvider, ServiceSpec, ServiceVersion
from deploy_scripts.docker_spec import docker_service, docker_version
from deploy_scripts.version import (
    VersionNeeds,
    instance_version,
    retagged,
    version_of,
    versioned_spec,
    with_version,
)
from fogverse.constants import ENV_VERSION, EXTRA_VERSION, INFO_VERSION
from fogverse.control import AutoScaleRequest
from fogverse.errors import ConfigError
from master.config import master_settings
from master.plans import plan_for_request


def test_apply_changes_only_what_the_version_names() -> None:
    spec = ServiceSpec("det", module="det.v1", env={"A": "1", "B": "1"}, max_instance=2,
                       extra_configs={"image": "det:1", "network": "host"})
    v2 = ServiceVersion("v2", module="det.v2", env={"B": "2"}, image="det:2")
    out = v2.apply(spec)
    assert (out.module, out.command, out.version) == ("det.v2", None, "v2")
    assert dict(out.env) == {"A": "1", "B": "2", ENV_VERSION: "v2"}
    assert dict(out.extra_configs) == {"image": "det:2", "network": "host"}
    assert out.max_instance == 2 and spec.module == "det.v1"  # the declared spec is unchanged
    by_command = ServiceVersion("v3", command=["run", "--fast"]).apply(spec)
    assert (by_command.module, by_command.command) == (None, ("run", "--fast"))


def test_a_version_travels_in_the_deploy_config_as_plain_values() -> None:
    v2 = ServiceVersion("v2", command=("a", "b"), env={"X": "1"}, image="i:2",
                        needs=VersionNeeds(cpu=0.5, memory_mb=256, gpu=True, min_battery=30,
                                           max_thermal="warm"))
    config = with_version({"provider": "LOCAL", "service_name": "s", "extra_configs": {"k": 1}},
                          v2)
    raw = msgpack.unpackb(msgpack.packb(config))  # survives the wire and the state topic
    assert version_of(raw) == v2
    assert raw["extra_configs"]["k"] == 1
    assert version_of(with_version(raw, None)) is None
    spec = ServiceSpec("s", module="m")
    assert versioned_spec(spec, {"service_name": "s"}) is spec
    assert instance_version({INFO_VERSION: "v2"}) == "v2"
    assert instance_version({}) == "declared"


@pytest.mark.parametrize(("raw", "setting"), [
    ({"module": "a", "command": ["b"]}, "services.s.versions.v2.module/command"),
    ({"modul": "a"}, "services.s.versions.v2.modul"),
    ({"needs": {"cpu": -1}}, "services.s.versions.v2.needs.cpu"),
    ({"needs": {"max_thermal": "toasty"}}, "services.s.versions.v2.needs.max_thermal"),
    ({"needs": {"min_battery": 120}}, "services.s.versions.v2.needs.min_battery"),
    ({"needs": {"ram": 1}}, "services.s.versions.v2.needs.ram"),
    ({"command": "not a list"}, "services.s.versions.v2.command"),
])
def test_bad_versions_in_the_config_name_the_setting(raw: dict[str, object],
                                                     setting: str) -> None:
    conf = {"services": {"s": {"module": "m", "versions": {"v2": raw}}}}
    with pytest.raises(ConfigError) as info:
        master_settings(conf, env={})
    assert info.value.setting == setting


def test_versions_are_declared_in_the_config_and_looked_up_by_name() -> None:
    conf = {"services": {
        "s": {"module": "m", "version": "v1",
              "versions": {"v2": {"module": "m2", "needs": {"cpu": 1}}}},
        "d": {"provider": "DOCKER", "extra_configs": {"image": "reg:5000/det:1.0"}},
    }}
    services = master_settings(conf, env={}).services
    assert services["s"].version_named("v2") == ServiceVersion("v2", module="m2",
                                                              needs=VersionNeeds(cpu=1))
    assert services["s"].version_named("v1") == ServiceVersion("v1")
    with pytest.raises(ConfigError, match="declared: v1, v2"):
        services["s"].version_named("v9")
    # An image provider reads an undeclared name as a tag of its image.
    assert services["d"].version_named("2.0").image == "reg:5000/det:2.0"
    assert retagged("det", "x") == "det:x"
    assert retagged("det:1@sha256:ab", "x") == "det:x"


def test_a_request_cannot_choose_a_version() -> None:
    svc = ServiceSpec("s", module="m", source_topic="in")
    request = AutoScaleRequest(source_topic="in", target_topic=None, service_name="s",
                               provider="LOCAL",
                               extra_configs={EXTRA_VERSION: {"name": "x", "command": ["sh"]}})
    assert EXTRA_VERSION not in plan_for_request(request, {"s": svc}).extra_configs


def test_docker_spec_of_a_version() -> None:
    spec = docker_service("d", extra_configs={"image": "d:1"}, command=("python3", "-m", "a"))
    out = docker_version(spec, ServiceVersion("v2", module="b", image="d:2", env={"E": "1"}))
    assert (out.image, out.command) == ("d:2", ("python3", "-m", "b"))
    assert dict(out.env) == {"E": "1", ENV_VERSION: "v2"}
    assert out.labels["io.fogverse.version"] == "v2"
    assert docker_version(spec, None) is spec


async def test_local_starts_a_version_records_it_and_caps_each_version_apart(
    make_provider: Callable[..., LocalProvider], report_dir: Path
) -> None:
    provider = make_provider({"child": child_spec(report_dir, max_instance=1)})
    scripts = DeployScripts()
    scripts.set_deploy_functions("LOCAL", provider)
    base = {"provider": "LOCAL", "service_name": "child"}
    old = await scripts.deploy(base)  # type: ignore[arg-type]
    new = await scripts.deploy(with_version(base,  # type: ignore[arg-type]
                                            ServiceVersion("v2", env={"FV_SPEC": "from-v2"})))
    assert old is not None and new is not None
    report = await read_report(report_dir, new.instance_id)
    assert report["env"]["FV_SPEC"] == "from-v2" and ENV_VERSION in report["env_names"]
    assert (instance_version(old.info), instance_version(new.info)) == ("declared", "v2")
    adopted = provider.adopt(new.instance_id, new.info)
    assert adopted is not None and instance_version(adopted.info) == "v2"
    with pytest.raises(DeployError, match="of version 'v2', its max_instance"):
        await scripts.deploy(with_version(base,  # type: ignore[arg-type]
                                          ServiceVersion("v2")))
