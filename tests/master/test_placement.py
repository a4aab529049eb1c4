"""The auto-deployer's question "where does the next instance go?", answered by the scheduler."""

from __future__ import annotations

import logging

from deploy_scripts import DeployConfig, DeployResult, DeployScripts
from fogverse.constants import EXTRA_NODE_ID, PROVIDER_AGENT, PROVIDER_LOCAL
from master.deployer import AutoDeployer
from master.fog import FogScheduler
from master.placement import InstancePlacer
from master.plans import StagePlan
from master.scheduling import Capacity, ThermalState
from master.scheduling.autoscale import DeployerSettings
from workers.registry import InstanceRegistry

IDLE = Capacity(cpu_cores=8, memory_mb=8192)
BUSY = Capacity(cpu_cores=8, cpu_utilization=0.9, memory_mb=8192, memory_used_mb=6000)


def placer(**nodes: Capacity) -> tuple[InstancePlacer, FogScheduler]:
    fog = FogScheduler(clock=lambda: 1000.0)
    for node_id, capacity in nodes.items():
        fog.register_node(node_id, capacity)
    return InstancePlacer(fog), fog


def test_the_best_scoring_node_gets_the_instance() -> None:
    place, fog = placer(busy=BUSY, idle=IDLE)
    extra: dict[str, object] = {}
    assert place.place("detect", PROVIDER_AGENT, extra) == "idle"
    assert extra == {EXTRA_NODE_ID: "idle"}
    fog.update_node("idle", Capacity(cpu_cores=8, memory_mb=8192, thermal_state=ThermalState.HOT))
    assert place.place("detect", PROVIDER_AGENT, {}) == "busy"
    assert [p.reason for p in place.recent] == ["scheduled", "scheduled"]


def test_no_question_when_there_is_no_choice() -> None:
    place, _ = placer(busy=BUSY, idle=IDLE)
    extra: dict[str, object] = {}
    assert place.place("detect", PROVIDER_LOCAL, extra) is None   # runs where the master is
    assert extra == {}
    lone, _ = placer(only=IDLE)
    assert lone.place("detect", PROVIDER_AGENT, {}) is None
    pinned: dict[str, object] = {EXTRA_NODE_ID: "busy"}
    assert place.place("detect", PROVIDER_AGENT, pinned) == "busy"  # the request decided
    assert dict(place.counts) == {"single_node_provider": 1, "pinned_by_request": 1}
    assert dict(lone.counts) == {"one_node": 1}


def test_no_node_fits() -> None:
    hot = Capacity(cpu_cores=8, memory_mb=8192, thermal_state=ThermalState.CRITICAL)
    place, _ = placer(a=hot, b=hot)
    assert place.place("detect", PROVIDER_AGENT, {}) is None
    assert place.counts["no_node_fits"] == 1


async def test_the_auto_deployer_asks_before_each_new_instance() -> None:
    configs: list[DeployConfig] = []

    def record(logger: logging.Logger, config: DeployConfig) -> DeployResult:
        configs.append(config)
        return DeployResult(f"i{len(configs)}", lambda: None)

    scripts = DeployScripts()
    scripts.set_deploy_functions(PROVIDER_AGENT, record)
    place, fog = placer(first=IDLE, second=IDLE)
    now = [0.0]
    deployer = AutoDeployer(scripts, InstanceRegistry(),
                            DeployerSettings(deploy_delay=1.0, after_heartbeat_delay=0.0,
                                             startup_grace=0.0, partitions_ahead=False),
                            clock=lambda: now[0])
    deployer.actions.placer = place.place
    deployer.set_plan(StagePlan(("in", "out"), "svc", PROVIDER_AGENT, min_instance=2,
                                max_instance=2))
    await deployer.tick(0.0)
    await deployer.idle()
    assert [c["extra_configs"][EXTRA_NODE_ID] for c in configs] == ["first"]
    fog.update_node("first", BUSY)                      # its agent reports the new load
    now[0] = 5.0
    await deployer.tick(5.0)
    await deployer.idle()
    assert [c["extra_configs"][EXTRA_NODE_ID] for c in configs] == ["first", "second"]
