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


def test_one_scheduler_places_tasks_agent_instances_and_deploys() -> None:
    from master import Master
    from tests.master.test_fleet_desk import report

    master = Master(master_settings({
        "services": AGENT_SERVICE, "http_port": 0,
        "fleet_config": {"policies": {"battery_minimum_percent": 20}}}))
    assert master.fleet is not None
    fleet = master.fleet.service
    assert fleet.scheduler is master.scheduler.core  # no second scheduler to disagree
    assert master.scheduler.policies["battery_minimum_percent"] == 20
    # The master's machine runs no agent: nothing there could carry out a placement.
    assert master.scheduler.core.nodes == {}
    fleet.nodes.on_report(report("phone-low", battery_powered=True, battery_percent=15.0,
                                 charging=False), 0.0, 100.0)
    fleet.nodes.on_report(report("desktop", cpu_percent=80.0), 0.0, 100.0)
    # The deployer's placer and the fleet see the same nodes under the same policies.
    extra: dict[str, object] = {}
    assert master.placer.place("detect", "AGENT", extra) == "desktop"
    assert master.scheduler.place(avoid=("desktop",)) is None
