"""KUBERNETES service settings: what a config says, and the names it gives the cluster."""

from __future__ import annotations

import pytest

from deploy_scripts import ServiceSpec
from deploy_scripts.kubernetes_spec import (
    KubernetesServiceSpec,
    deployment_name,
    image_version,
    kubernetes_service,
    service_spec,
)
from fogverse.errors import ConfigError


def test_a_declared_service_becomes_a_spec_with_its_module_run_by_python3() -> None:
    svc = ServiceSpec("detector", provider="KUBERNETES", module="app.stage", env={"A": "1"},
                      min_instance=0, max_instance=4, extra_configs={
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


def test_names_stay_valid_and_distinct_when_long_or_mangled() -> None:
    long_a = KubernetesServiceSpec("s" * 40, "img", version="release-candidate-1")
    long_b = KubernetesServiceSpec("s" * 40, "img", version="release-candidate-2")
    names = {deployment_name(long_a), deployment_name(long_b)}
    assert len(names) == 2 and all(len(n) <= 47 for n in names)
    assert deployment_name(KubernetesServiceSpec("Det_1", "img", version="2.0")) != (
        deployment_name(KubernetesServiceSpec("det-1", "img", version="2.0")))


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
