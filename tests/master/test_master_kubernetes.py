"""The Master registers the KUBERNETES provider for the KUBERNETES services it declares."""

from __future__ import annotations

import pytest

from deploy_scripts import DeployScripts
from deploy_scripts.kubernetes import KubernetesProvider
from fogverse.constants import PROVIDER_KUBERNETES
from fogverse.errors import ConfigError
from master.config import master_settings
from master.wiring import add_kubernetes_provider


def test_declared_kubernetes_services_get_the_built_in_provider() -> None:
    settings = master_settings({"consumer_group_id": "m1", "services": {"s": {
        "provider": "KUBERNETES", "module": "app.stage",
        "extra_configs": {"image": "stage:1", "namespace": "edge"}}}})
    scripts = DeployScripts()
    add_kubernetes_provider(settings, scripts)
    provider = scripts.get_deploy_functions(PROVIDER_KUBERNETES)
    assert isinstance(provider, KubernetesProvider) and provider.master_id == "m1"
    spec = provider.spec("s")
    assert (spec.image, spec.namespace, spec.command) == (
        "stage:1", "edge", ("python3", "-m", "app.stage"))


def test_a_kubernetes_service_with_a_bad_setting_is_refused_naming_it() -> None:
    settings = master_settings({"services": {"s": {
        "provider": "KUBERNETES", "module": "m",
        "extra_configs": {"image": "i", "resources": {"limits": {"memory": "lots"}}}}}})
    with pytest.raises(ConfigError, match=r"services\.s\.extra_configs\.resources\.limits"):
        add_kubernetes_provider(settings, DeployScripts())
