"""Which workers a master runs and how they are connected, from its settings.

The statistic and input/output workers read the instance registry; the
auto-deployer reads both and acts through the deploy providers; the lock
service is one more worker. The built-in LOCAL provider is registered for the
declared LOCAL services unless the user registered a LOCAL deploy function of
their own (FogVerse's README does), in which case it is the user's to start them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from deploy_scripts import DeployScripts, LocalProvider, ServiceSpec
from deploy_scripts.docker import DockerProvider
from deploy_scripts.docker_spec import docker_service
from deploy_scripts.kubernetes import KubernetesProvider
from deploy_scripts.kubernetes_spec import service_spec
from fogverse.constants import (
    ENV_BOOTSTRAP,
    ENV_CONTROL_KEY,
    PROVIDER_AGENT,
    PROVIDER_DOCKER,
    PROVIDER_KUBERNETES,
    PROVIDER_LOCAL,
)
from fogverse.errors import ConfigError
from master.config import MasterSettings, Worker
from master.deployer import AutoDeployer, InstanceLedger, PartitionAdmin
from master.fleet_worker import FleetWorker, fleet_enabled
from master.fog import FogScheduler
from workers.base import BaseWorker
from workers.distributed_lock import DistributedLockWorker
from workers.input_output import InputOutputWorker, LagReader
from workers.registry import InstanceRegistry
from workers.statistic import StatisticWorker

__all__ = [
    "MasterWorkers",
    "add_docker_provider",
    "add_kubernetes_provider",
    "add_local_provider",
    "build_workers",
    "check_providers",
    "stage_env",
]

log = logging.getLogger("fogverse.master")

ENV_CONTROL_TOPIC = "CONTROL_TOPIC"
"""The stage setting naming the control topic, set on every LOCAL child."""


@dataclass
class MasterWorkers:
    """The master's workers, by role, and all of them in start order."""

    statistic: StatisticWorker | None = None
    input_output: InputOutputWorker | None = None
    deployer: AutoDeployer | None = None
    lock: DistributedLockWorker | None = None
    fleet: FleetWorker | None = None
    all: list[BaseWorker] = field(default_factory=list)


BUILTIN_PROVIDERS = (PROVIDER_LOCAL, PROVIDER_DOCKER, PROVIDER_AGENT, PROVIDER_KUBERNETES)


def build_workers(
    settings: MasterSettings,
    scripts: DeployScripts,
    registry: InstanceRegistry,
    admin: PartitionAdmin,
    lag_reader: LagReader,
    extra: Sequence[BaseWorker] = (),
    ledger: InstanceLedger | None = None,
    fog: FogScheduler | None = None,
) -> MasterWorkers:
    """The workers ``settings.workers`` names, then ``extra`` (FogVerse's observers).

    ``fog`` is the Master's scheduler; the fleet places tasks and instances with it."""
    chosen = settings.workers
    w = MasterWorkers()
    if fleet_enabled(settings):
        # First to start, last to stop: the deployer stops AGENT instances at close
        # through the fleet's link to the agents, which must still be up.
        w.fleet = FleetWorker(settings, scripts, fog)
        w.all.append(w.fleet)
    if Worker.STATISTIC_WORKER in chosen:
        w.statistic = StatisticWorker(registry, settings.statistic)
        w.all.append(w.statistic)
    if Worker.INPUT_OUTPUT_WORKER in chosen:
        w.input_output = InputOutputWorker(registry, settings.input_output, lag_reader)
        w.all.append(w.input_output)
    if Worker.AUTO_DEPLOYER in chosen:
        w.deployer = AutoDeployer(
            scripts, registry, settings.deployer, statistic=w.statistic,
            input_output=w.input_output, admin=admin, wait_for_reader=True,
            ledger=ledger, leave_running=settings.leave_running,
        )
        w.all.append(w.deployer)
    if Worker.DISTRIBUTED_LOCK_WORKER in chosen:
        # master_host (lock_host) is what clients dial; the service binds apart from it.
        w.lock = DistributedLockWorker(
            settings.lock_bind_host, settings.lock_port, control_key=settings.control_key,
            **asdict(settings.lock_limits),
        )
        w.all.append(w.lock)
    w.all.extend(extra)
    return w


def add_local_provider(settings: MasterSettings, scripts: DeployScripts) -> None:
    """Register the built-in LOCAL provider for the declared LOCAL services, if needed.

    Called when the master starts, so a LOCAL deploy function the user registers
    any time before that is the one used."""
    local = {n: s for n, s in settings.services.items() if s.provider == PROVIDER_LOCAL}
    if not local or PROVIDER_LOCAL in scripts.providers:
        return
    for name, svc in local.items():
        if not svc.launchable:
            raise ConfigError(
                f"services.{name}.module/command", None,
                "the built-in LOCAL provider needs module or command; or register your own "
                "deploy function with deploy_scripts.set_deploy_functions('LOCAL', fn)")
    scripts.set_deploy_functions(
        PROVIDER_LOCAL, LocalProvider(local, stage_env(settings), log_dir=settings.log_dir))


def add_docker_provider(settings: MasterSettings, scripts: DeployScripts) -> None:
    """Register the built-in DOCKER provider for the declared DOCKER services, if needed.

    Each service's container settings are under its ``extra_configs``
    (deploy_scripts/docker_spec.py); ``module`` runs as ``python3 -m module`` in the
    image, ``command`` as given, neither the image's own command. Containers carry
    the master's consumer group as its id, so a restarted master with the same
    config finds and adopts them. The docker SDK is needed only when one is declared.
    """
    declared = {n: s for n, s in settings.services.items() if s.provider == PROVIDER_DOCKER}
    if not declared or PROVIDER_DOCKER in scripts.providers:
        return
    specs = {
        name: docker_service(
            name, extra_configs=svc.extra_configs, env=svc.env,
            command=("python3", "-m", svc.module) if svc.module else svc.command,
            min_instance=svc.min_instance, max_instance=svc.max_instance,
        )
        for name, svc in declared.items()
    }  # fmt: skip
    scripts.set_deploy_functions(
        PROVIDER_DOCKER,
        DockerProvider(specs, stage_env(settings), master_id=settings.consumer_group_id),
    )


def add_kubernetes_provider(settings: MasterSettings, scripts: DeployScripts) -> None:
    """Register the built-in KUBERNETES provider for the declared KUBERNETES services.

    Each service's cluster settings are under its ``extra_configs``
    (deploy_scripts/kubernetes_spec.py). Deployments carry the master's consumer
    group as its id, so a restarted master with the same config adopts them. The
    kubernetes client is needed (and the cluster reached) only once one is started.
    """
    declared = {n: s for n, s in settings.services.items() if s.provider == PROVIDER_KUBERNETES}
    if not declared or PROVIDER_KUBERNETES in scripts.providers:
        return
    specs = {name: service_spec(svc) for name, svc in declared.items()}
    scripts.set_deploy_functions(
        PROVIDER_KUBERNETES,
        KubernetesProvider(specs, stage_env(settings), master_id=settings.consumer_group_id),
    )


def check_providers(services: Mapping[str, ServiceSpec], known: Sequence[str]) -> None:
    """A declared service whose provider nobody registered could never start: say so now."""
    for name, svc in sorted(services.items()):
        if svc.provider not in known:
            builtin = ", ".join(BUILTIN_PROVIDERS)
            raise ConfigError(
                f"services.{name}.provider", svc.provider,
                f"unknown provider; registered: {', '.join(known) or 'none'}",
                hint=f"use a built-in provider ({builtin}) or register a deploy function "
                f"with deploy_scripts.set_deploy_functions({svc.provider!r}, fn)")


def stage_env(settings: MasterSettings) -> dict[str, str]:
    """What every instance the master starts is told: where Kafka and the control topic are."""
    env = {ENV_BOOTSTRAP: settings.consumer_servers, ENV_CONTROL_TOPIC: settings.consumer_topic}
    if settings.control_key:
        env[ENV_CONTROL_KEY] = settings.control_key.decode()
    return env
