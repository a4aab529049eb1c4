"""KUBERNETES service settings: what a config says, and the names it gives the cluster."""

from __future__ import annotations

import pytest

from deploy_scripts import ServiceSpec
from deploy_scripts.kubernetes_spec import (
    KubernetesServiceSpec,
    deployment_name,
    image_version,
    kubernetes_service,
    kubernetes_version,
    service_spec,
)
from deploy_scripts.version import ServiceVersion
from fogverse.errors import ConfigError


def test_a_declared_service_becomes_a_spec_with_its_module_run_by_python3() -> None:
    svc = ServiceSpec("detector", provider="KUBERNETES", module="app.stage", env={"A": "1"},
                      version="1.4", min_instance=0, max_instance=4, extra_configs={
                          "image": "reg/stage:1.4", "namespace": "vision",
                          "labels": {"team": "vision"}, "stop_timeout": 60,
                          "resources": {"limits": {"cpu": "1", "memory": "256Mi"}},
                          "node_selector": {"kubernetes.io/arch": "arm64"},
                          "keda": {"lag_threshold": 5}})  # fmt: skip
    spec = service_spec(svc)
    assert spec.command == ("python3", "-m", "app.stage")
    assert (spec.namespace, spec.stop_timeout, spec.min_instance, spec.max_instance) == (
        "vision", 60, 0, 4)
    assert dict(spec.resources["limits"]) == {"cpu": "1", "memory": "256Mi"}
    assert dict(spec.node_selector) == {"kubernetes.io/arch": "arm64"}
    assert deployment_name(spec) == "detector-1-4"


@pytest.mark.parametrize(
    ("image", "version"),
    [("reg/stage:1.4", "1-4"), ("stage", "latest"), ("localhost:5000/stage", "latest"),
     ("localhost:5000/stage:V2_rc", "v2-rc"), ("stage@sha256:" + "ab" * 32, "sha-abababababab")],
)
def test_a_version_is_named_from_the_image_tag(image: str, version: str) -> None:
    assert image_version(image) == version


def test_long_names_are_cut_to_fit_and_stay_distinct() -> None:
    long_a = KubernetesServiceSpec("s" * 40, "img", version="release-candidate-1")
    long_b = KubernetesServiceSpec("s" * 40, "img", version="release-candidate-2")
    names = {deployment_name(long_a), deployment_name(long_b)}
    assert len(names) == 2 and all(len(n) <= 47 for n in names)
    assert deployment_name(KubernetesServiceSpec("Det_1", "img", version="v2.0")) == (
        "det-1-v2-0")


def test_a_version_changes_the_image_command_and_env_of_the_declared_spec() -> None:
    declared = KubernetesServiceSpec("d", "reg/d:1", version="declared", command=("run",),
                                     env={"A": "1", "B": "1"})  # fmt: skip
    assert kubernetes_version(declared, None) is declared
    v2 = kubernetes_version(declared, ServiceVersion("v2", image="reg/d:2", module="d.v2",
                                                     env={"B": "2"}))  # fmt: skip
    assert (v2.image, v2.version, v2.command) == ("reg/d:2", "v2", ("python3", "-m", "d.v2"))
    assert dict(v2.env) == {"A": "1", "B": "2"}
    assert deployment_name(v2) == "d-v2"
    env_only = kubernetes_version(declared, ServiceVersion("tuned", env={"B": "3"}))
    assert (env_only.image, env_only.command, deployment_name(env_only)) == (
        "reg/d:1", ("run",), "d-tuned")


@pytest.mark.parametrize(
    ("extra", "setting"),
    [({}, "services.s.extra_configs.image"),
     ({"image": "i", "replicas": 3}, "services.s.extra_configs.replicas"),
     ({"image": "i", "namespace": "Vision"}, "services.s.extra_configs.namespace"),
     ({"image": "i", "labels": {"team": "a b"}}, "services.s.extra_configs.labels"),
     ({"image": "i", "resources": {"limits": {"cpu": "lots"}}},
      "services.s.extra_configs.resources.limits.cpu"),
     ({"image": "i", "resources": {"wants": {}}}, "services.s.extra_configs.resources.wants"),
     ({"image": "i", "image_pull_policy": "Sometimes"},
      "services.s.extra_configs.image_pull_policy"),
     ({"image": "i", "stop_timeout": -1}, "services.s.extra_configs.stop_timeout")],
)
def test_a_bad_setting_is_named_as_the_user_wrote_it(extra: dict[str, object],
                                                     setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        kubernetes_service("s", extra_configs=extra)
    assert caught.value.setting == setting
    assert setting in str(caught.value)


def test_a_service_name_kubernetes_cannot_label_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        kubernetes_service("my stage", extra_configs={"image": "i"})
    assert caught.value.setting == "services.my stage"
    assert "label value" in str(caught.value)
