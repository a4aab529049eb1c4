"""The fleet as one of the Master's workers: node agents, tasks and the AGENT provider.

Enabled by ``fleet_config`` in the master's config (``enabled = true``), or by any
service declared with ``provider = "AGENT"``. It runs the master's
:class:`~master.fleet.FleetService` beside the other workers (its status shows
under ``fleet`` in /status, its metrics in /metrics), registers the built-in
AGENT provider for the declared AGENT services (unless the user registered an
AGENT deploy function), and moves AGENT instances off nodes that turn hot or run
low (:mod:`master.instance_moves`).

``fleet_config`` keys: ``enabled``; ``master_id`` (agents started with
``--master`` obey only it; default ``fogverse-master``); ``misses`` (reports a
node may miss before it is lost, default 3); ``nodes_topic``, ``orders_topic``,
``tasks_topic``, ``status_topic``; ``policies`` (the scheduler's, e.g.
``battery_minimum_percent = 30``, ``max_concurrent_tasks_per_node = 2``).

Tasks, AGENT instances and the deployer's placements are decided by one
scheduler, the Master's (:class:`~master.fog.FogScheduler`), whose nodes are then
the agents: the Master's own machine counts as a node only when an agent runs on
it, since nothing else there could carry out a placement.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from deploy_scripts import DeployScripts
from deploy_scripts.agent import AgentProvider
from fogverse.constants import ENV_BOOTSTRAP, ENV_CONTROL_KEY, PROVIDER_AGENT
from fogverse.errors import ConfigError
from master.config import MasterSettings
from master.fleet import FleetService, FleetSettings
from master.fog import FogScheduler
from master.instance_moves import InstanceMover
from master.scheduling import PolicyError
from workers.base import BaseWorker

__all__ = ["FleetWorker", "apply_policies", "fleet_enabled"]

log = logging.getLogger("fogverse.master.fleet")

ENV_CONTROL_TOPIC = "CONTROL_TOPIC"

_TOPIC_KEYS = ("nodes_topic", "orders_topic", "tasks_topic", "status_topic")


def fleet_enabled(settings: MasterSettings) -> bool:
    options = settings.fleet or {}
    if "enabled" in options:
        return bool(options["enabled"])
    return any(s.provider == PROVIDER_AGENT for s in settings.services.values())


def apply_policies(fog: FogScheduler, options: Mapping[str, Any]) -> None:
    """``fleet_config.policies`` onto the Master's scheduler; a bad one is named."""
    policies = options.get("policies") or {}
    try:
        fog.policies.update(dict(policies))
    except (TypeError, ValueError, PolicyError) as exc:
        raise ConfigError("fleet_config.policies", policies, str(exc)) from None


class FleetWorker(BaseWorker):
    name = "fleet"

    def __init__(self, settings: MasterSettings, scripts: DeployScripts,
                 fog: FogScheduler | None = None) -> None:
        options = dict(settings.fleet or {})
        fog = fog or FogScheduler(coordinator_id=f"master-{settings.consumer_group_id}")
        apply_policies(fog, options)
        topics = {k: str(options[k]) for k in _TOPIC_KEYS if k in options}
        fleet_settings = FleetSettings(
            bootstrap=settings.consumer_servers,
            master_id=str(options.get("master_id") or "fogverse-master"),
            key=settings.control_key, misses=int(options.get("misses", 3)),
            kafka_extra=settings.kafka_extra,
        )
        if topics:
            fleet_settings = dataclasses.replace(fleet_settings, **topics)  # type: ignore[arg-type]
        self.service = FleetService(fleet_settings, fog)
        self.provider: AgentProvider | None = None
        self.mover: InstanceMover | None = None
        agent_services = {n: s for n, s in settings.services.items()
                          if s.provider == PROVIDER_AGENT}
        if agent_services and PROVIDER_AGENT not in scripts.providers:
            base_env = {ENV_BOOTSTRAP: settings.consumer_servers,
                        ENV_CONTROL_TOPIC: settings.consumer_topic}
            if settings.control_key:
                base_env[ENV_CONTROL_KEY] = settings.control_key.decode()
            self.provider = AgentProvider(agent_services, self.service, base_env)
            scripts.set_deploy_functions(PROVIDER_AGENT, self.provider)
            self.mover = InstanceMover(self.service, self.provider)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self.service.run(), name="master-fleet")
        ready = asyncio.create_task(self.service.ready.wait())
        done, _ = await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()  # the fleet could not start: say why now

    def status(self) -> object:
        return self.service.status()

    async def stop(self) -> None:
        self.service.stop()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
