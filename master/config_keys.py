"""The keys of the Master's config file (FogVerse's ``MasterAutoScalerConfig``), as types.

A key not declared here is refused by name when the file is read.
"""

from __future__ import annotations

import enum
from typing import Any, NotRequired, TypedDict

__all__ = [
    "AutoDeployerConfig",
    "DistributedWorkerConfig",
    "FleetConfig",
    "InputOutputWorkerConfig",
    "MasterAutoScalerConfig",
    "StatisticWorkerConfig",
    "Worker",
]


class Worker(enum.StrEnum):
    """FogVerse's worker names, for ``included_worker``."""

    AUTO_DEPLOYER = "AUTO_DEPLOYER"
    STATISTIC_WORKER = "STATISTIC_WORKER"
    INPUT_OUTPUT_WORKER = "INPUT_OUTPUT_WORKER"
    DISTRIBUTED_LOCK_WORKER = "DISTRIBUTED_LOCK_WORKER"


class AutoDeployerConfig(TypedDict, total=False):
    deploy_delay: float
    after_heartbeat_delay: float
    start_timeout: float
    startup_grace: float
    partitions_ahead: bool


class StatisticWorkerConfig(TypedDict, total=False):
    z_value: float
    refresh_rate: float
    maximum_seconds: float


class InputOutputWorkerConfig(TypedDict, total=False):
    refresh_rate_second: float
    input_output_ratio_threshold: float
    window_seconds: float
    min_samples: int
    idle_lag: int
    scale_in_ratio: float
    scale_in_hold: float
    scale_in_utilization: float
    lag_growth_min: float


class DistributedWorkerConfig(TypedDict, total=False):
    master_host: str
    """The address clients (``ConsumerStart``) connect to; never the bind address."""
    master_port: int
    bind_host: str
    """Where the lock service listens; beyond loopback it needs the control key."""
    default_lease: float
    max_lease: float
    max_connections: int
    max_keys_per_client: int
    idle_timeout: float


class FleetConfig(TypedDict, total=False):
    """Node agents and tasks (see :mod:`master.fleet_worker`)."""

    enabled: bool
    master_id: str
    misses: int
    nodes_topic: str
    orders_topic: str
    tasks_topic: str
    status_topic: str
    policies: dict[str, Any]


class MasterAutoScalerConfig(TypedDict, total=False):
    """FogVerse's master configuration, plus ``services`` and the status server."""

    consumer_topic: str
    consumer_servers: str
    consumer_server: NotRequired[str]  # FogVerse README's spelling
    consumer_group_id: str
    auto_deployer_config: AutoDeployerConfig
    statistic_worker_config: StatisticWorkerConfig
    input_output_worker_config: InputOutputWorkerConfig
    distributed_worker_config: DistributedWorkerConfig
    included_worker: list[Worker | str]
    services: dict[str, dict[str, Any]]
    """Service name -> the fields of :class:`deploy_scripts.ServiceSpec` but ``name``."""
    instance_expiry_beats: int
    stale_after: float
    max_clock_skew: float
    max_plans: int
    plan_expiry: float
    http_host: str
    http_port: int | None
    control_key: str
    log_dir: str
    kafka_extra: dict[str, Any]
    state_topic: str
    leave_running: bool
    fleet_config: FleetConfig
    rollout_config: dict[str, Any]
    """master.rollout.RolloutSettings: windows, thresholds and pauses of rollouts."""
