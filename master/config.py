"""The Master's settings: FogVerse's ``MasterAutoScalerConfig`` keys, from Python or TOML.

Defaults, chosen for a reaction within seconds that does not flap
----------------------------------------------------------------

Stage side: a heartbeat every **1 s** (``StageConfig.heartbeat_interval``).

``instance_expiry_beats = 3``
    An instance missing 3 beats in a row (3 s) is gone. One late beat is noise.
``statistic_worker_config``: ``refresh_rate = 1``, ``maximum_seconds = 10``, ``z_value = 2.0``
    One sample per second in a 10 s window. A load step from idle has z = 3 in its
    first second and 2 in its second, so it is a spike for one second and a level
    from then on; a burst must last 2 s before anything reacts to it. FogVerse's
    README used a 600 s window, which makes a new level look like a spike for
    minutes.
``input_output_worker_config``: ``refresh_rate_second = 1``, ``input_output_ratio_threshold = 0.7``,
``window_seconds = 10``
    Ratios and lag growth are judged over at most 10 s, and only over samples
    taken since the stage's instance count last changed, so a scale-out is
    judged on the new set-up, not on the seconds before it. Scale-in needs
    ``scale_in_hold = 10`` s of lag <= ``idle_lag = 10`` messages with
    output/input >= ``scale_in_ratio = 0.95`` (window-edge noise keeps a
    keeping-up stage slightly under 1), and the remaining instances at most
    ``scale_in_utilization = 0.6`` busy.
``auto_deployer_config``: ``deploy_delay = 5``, ``after_heartbeat_delay = 3``
    5 s after each action before the next; 3 s after a new instance's first
    heartbeat, enough for the group to hand it partitions. ``start_timeout = 30``
    s for a started instance to heartbeat before it is stopped as failed;
    ``startup_grace = 3`` s after the master starts to hear from running instances.
    ``partitions_ahead = true``: a planned stage's source topic gets
    ``max_instance`` partitions while it is idle, so a scale-out under load is
    only a member joining and the newcomer's partitions already hold data (a
    partition added then stays empty until producers refresh metadata, 5 s by
    default). ``false`` adds one partition per scale-out instead.

Put together: load step -> first beat showing it (<= 1 s) -> one second of
spike -> deploy (child start ~1-2 s) -> the new member's first message about a
second after it joins: typically 4-5 s (bench/autoscale.py measures it). FogVerse's README defaults
(30 s delays, 60 s ratio refresh) need over a minute.

State: plans learned from requests and the instances the master deployed are
kept in the compacted ``state_topic`` (``fogverse-master-state``), so a
restarted master manages the same stages at once and adopts the instances that
still run instead of deploying them again. A graceful stop stops the
instances, unless ``leave_running`` (``fogverse master --leave-running``).

Safety: only services declared under ``services`` are ever deployed; a request's
``max_instance`` is capped by the service's, and its ``extra_configs`` cannot
override the declared ones (nor ``env``/``args`` at all). Partitions are added
only to a source topic a service declares. At most ``max_plans = 1000``
requested stages are managed at once, and one none of whose instances was seen
for ``plan_expiry = 600`` s is forgotten. Control messages dated over
``max_clock_skew = 5`` s ahead, or over ``stale_after = 30`` s ago, are dropped,
as is a replay of one seen in that window. With a control key
(``FOGVERSE_CONTROL_KEY``) control messages and state records must be signed;
without one the master warns at start and /status says the control plane is
unauthenticated. The lock service (``distributed_worker_config``) grants
``default_lease = 10`` s leases, at most ``max_lease = 600`` s, to at most
``max_connections = 256`` connections holding or awaiting ``max_keys_per_client = 64``
keys each, and closes one silent for ``idle_timeout = 60`` s that awaits nothing.
A service is a
:class:`deploy_scripts.ServiceSpec`: its keys are that dataclass's fields.
A service whose provider is a deploy function you register needs only its
provider and limits; the built-in LOCAL provider also needs ``module`` or
``command``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from deploy_scripts import ServiceSpec
from fogverse.constants import (
    DEFAULT_CONTROL_TOPIC,
    DEFAULT_LOCK_PORT,
    DEFAULT_MASTER_HTTP_PORT,
    ENV_BOOTSTRAP,
    ENV_CONTROL_KEY,
    MASTER_STATE_TOPIC,
)
from fogverse.errors import ConfigError
from master.config_keys import (
    AutoDeployerConfig,
    DistributedWorkerConfig,
    FleetConfig,
    InputOutputWorkerConfig,
    MasterAutoScalerConfig,
    StatisticWorkerConfig,
    Worker,
)
from master.config_values import (
    build,
    flag,
    no_unknown,
    positive,
    positive_int,
    renamed,
    section,
    text,
)
from master.rollout.model import RolloutSettings
from master.scheduling.autoscale import DeployerSettings
from master.service_config import services, with_cwd
from workers.input_output import InputOutputSettings
from workers.lock_limits import LockLimits
from workers.registry import DEFAULT_EXPIRY_BEATS
from workers.statistic import StatisticSettings

__all__ = [
    "DEFAULT_HTTP_PORT",
    "DEFAULT_MASTER_GROUP",
    "AutoDeployerConfig",
    "DistributedWorkerConfig",
    "FleetConfig",
    "InputOutputWorkerConfig",
    "MasterAutoScalerConfig",
    "MasterSettings",
    "StatisticWorkerConfig",
    "Worker",
    "load_master_config",
    "master_settings",
]

DEFAULT_MASTER_GROUP = "fogverse-master"
"""The master's consumer group, and the namespace of its state records."""

DEFAULT_HTTP_PORT = DEFAULT_MASTER_HTTP_PORT
"""/status and /metrics; next to the lock port so a fog node opens one small range."""


@dataclass(frozen=True)
class MasterSettings:
    """Resolved, validated settings; build with :func:`master_settings`."""

    consumer_topic: str = DEFAULT_CONTROL_TOPIC
    consumer_servers: str = "localhost:9092"
    consumer_group_id: str = DEFAULT_MASTER_GROUP
    workers: frozenset[Worker] = frozenset(Worker)
    deployer: DeployerSettings = field(default_factory=DeployerSettings)
    statistic: StatisticSettings = field(default_factory=StatisticSettings)
    input_output: InputOutputSettings = field(default_factory=InputOutputSettings)
    lock_host: str = "127.0.0.1"
    lock_port: int = DEFAULT_LOCK_PORT
    lock_bind_host: str = "127.0.0.1"
    lock_limits: LockLimits = field(default_factory=LockLimits)
    """``distributed_worker_config``'s leases and per-client caps."""
    services: Mapping[str, ServiceSpec] = field(default_factory=dict)
    instance_expiry_beats: int = DEFAULT_EXPIRY_BEATS
    stale_after: float = 30.0
    """Control messages sent longer ago than this (wall clock) are dropped as stale;
    within it a message seen before (same sender, kind and send time) is a replay."""
    max_clock_skew: float = 5.0
    """Control messages dated further ahead than this (wall clock) are refused."""
    max_plans: int = 1000
    """Requested stages managed at once (declared ones do not count)."""
    plan_expiry: float = 600.0
    """A requested stage none of whose instances was seen this long is forgotten."""
    http_host: str = "127.0.0.1"
    http_port: int | None = DEFAULT_HTTP_PORT
    """None turns the status server off; 0 picks a free port."""
    control_key: bytes | None = None
    log_dir: str | None = None
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    state_topic: str = MASTER_STATE_TOPIC
    """Compacted topic keeping plans and deployed instances across restarts; empty: off."""
    leave_running: bool = False
    """On a graceful stop, leave the instances running for the next master to adopt."""
    fleet: Mapping[str, Any] | None = None
    """``fleet_config`` as given (checked names); None when absent."""
    rollout: RolloutSettings = field(default_factory=RolloutSettings)
    """``rollout_config``: windows, thresholds and pauses of rollouts."""


_TOP_KEYS = frozenset(MasterAutoScalerConfig.__annotations__)


def master_settings(
    conf: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> MasterSettings:
    """Validate a FogVerse-style mapping; a ConfigError names the first bad key."""
    env = os.environ if env is None else env
    no_unknown("master config", conf, _TOP_KEYS)
    servers = conf.get("consumer_servers") or conf.get("consumer_server") or env.get(
        ENV_BOOTSTRAP) or "localhost:9092"
    lock = section(conf, "distributed_worker_config", DistributedWorkerConfig)
    key = conf.get("control_key") or env.get(ENV_CONTROL_KEY) or None
    http_port = conf.get("http_port", DEFAULT_HTTP_PORT)
    if http_port is not None and (not isinstance(http_port, int) or http_port < 0):
        raise ConfigError("http_port", http_port, "expected a port number, 0 for any, or none")
    return MasterSettings(
        consumer_topic=text(conf, "consumer_topic", DEFAULT_CONTROL_TOPIC),
        consumer_servers=str(servers),
        consumer_group_id=text(conf, "consumer_group_id", DEFAULT_MASTER_GROUP),
        workers=_workers(conf.get("included_worker")),
        deployer=build(DeployerSettings, "auto_deployer_config",
                       section(conf, "auto_deployer_config", AutoDeployerConfig)),
        statistic=build(StatisticSettings, "statistic_worker_config",
                        section(conf, "statistic_worker_config", StatisticWorkerConfig)),
        input_output=build(InputOutputSettings, "input_output_worker_config",
                           _io_section(conf)),
        lock_host=str(lock.get("master_host", "127.0.0.1")),
        lock_port=int(lock.get("master_port", DEFAULT_LOCK_PORT)),
        lock_bind_host=str(lock.get("bind_host", "127.0.0.1")),
        lock_limits=_lock_limits(lock),
        services=services(conf.get("services") or {}),
        instance_expiry_beats=positive_int(conf, "instance_expiry_beats",
                                           DEFAULT_EXPIRY_BEATS),
        stale_after=positive(conf, "stale_after", 30.0),
        max_clock_skew=positive(conf, "max_clock_skew", 5.0),
        max_plans=positive_int(conf, "max_plans", 1000),
        plan_expiry=positive(conf, "plan_expiry", 600.0),
        http_host=text(conf, "http_host", "127.0.0.1"),
        http_port=http_port,
        control_key=key.encode() if isinstance(key, str) else key,
        log_dir=conf.get("log_dir"),
        kafka_extra=dict(conf.get("kafka_extra") or {}),
        state_topic=str(conf.get("state_topic", MASTER_STATE_TOPIC)),
        leave_running=flag(conf, "leave_running", False),
        fleet=section(conf, "fleet_config", FleetConfig) if "fleet_config" in conf else None,
        rollout=RolloutSettings.from_config(conf.get("rollout_config")),
    )


def load_master_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> MasterSettings:
    """Read ``master.toml`` (the same keys as :class:`MasterAutoScalerConfig`)."""
    try:
        with open(path, "rb") as f:
            conf = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("config file", str(path), f"not valid TOML: {exc}",
                          hint="fix the line it names; examples/autoscale/master.toml is a "
                          "working example") from None
    except OSError as exc:
        raise ConfigError("config file", str(path), f"cannot be read ({exc.strerror})",
                          hint="check the --config path") from None
    settings = master_settings(conf, env)
    # Relative service directories mean "next to the config file".
    base = Path(path).resolve().parent
    placed = {name: with_cwd(svc, base) for name, svc in settings.services.items()}
    return replace(settings, services=placed)


def _io_section(conf: Mapping[str, Any]) -> dict[str, Any]:
    values = section(conf, "input_output_worker_config", InputOutputWorkerConfig)
    refresh = values.get("refresh_rate_second")
    if refresh is not None and "window_seconds" not in values:
        # FogVerse configs set only the refresh (its README: 60 s); the window
        # must still hold a few samples.
        values["window_seconds"] = max(10.0, 3 * float(refresh))
    return values


_LOCK_ADDRESS_KEYS = ("master_host", "master_port", "bind_host")


def _lock_limits(lock: dict[str, Any]) -> LockLimits:
    limits = {k: v for k, v in lock.items() if k not in _LOCK_ADDRESS_KEYS}
    try:
        return LockLimits(**limits)
    except ConfigError as exc:
        raise renamed("distributed_worker_config", exc) from None


def _workers(raw: object) -> frozenset[Worker]:
    if raw is None:
        return frozenset(Worker)
    if not isinstance(raw, list | tuple | set | frozenset):
        raise ConfigError("included_worker", raw, "expected a list of worker names")
    chosen = set()
    for item in raw:
        try:
            chosen.add(Worker(str(item.value if isinstance(item, Worker) else item)))
        except ValueError:
            raise ConfigError("included_worker", item,
                              f"unknown worker; known: {', '.join(Worker)}") from None
    return frozenset(chosen)
