"""The master's fleet_config: checked names, turned on by AGENT services, bad policies named."""

from __future__ import annotations

import pytest

from deploy_scripts import DeployScripts
from fogverse.errors import ConfigError
from master import master_settings
from master.fleet_worker import FleetWorker, fleet_enabled

AGENT_SERVICE = {"detect": {"provider": "AGENT", "module": "app.detect"}}


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="fleet_config"):
        master_settings({"fleet_config": {"nodes_topik": "x"}})


def test_agent_services_turn_the_fleet_on_unless_told_otherwise() -> None:
    assert not fleet_enabled(master_settings({}))
    assert fleet_enabled(master_settings({"services": AGENT_SERVICE}))
    assert not fleet_enabled(master_settings({"services": AGENT_SERVICE,
                                              "fleet_config": {"enabled": False}}))
    assert fleet_enabled(master_settings({"fleet_config": {"enabled": True}}))


def test_the_agent_provider_is_registered_for_agent_services() -> None:
    scripts = DeployScripts()
    worker = FleetWorker(master_settings({"services": AGENT_SERVICE,
                                          "fleet_config": {"master_id": "m1"}}), scripts)
    assert "AGENT" in scripts.providers and worker.provider is not None
    assert worker.service.settings.master_id == "m1"


def test_bad_policies_are_named() -> None:
    settings = master_settings({"fleet_config": {"enabled": True,
                                                 "policies": {"no_such_policy": 1}}})
    with pytest.raises(ConfigError, match=r"fleet_config\.policies"):
        FleetWorker(settings, DeployScripts())
