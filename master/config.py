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
unauthenticated. A service is a
:class:`deploy_scripts.ServiceSpec`: its keys are that dataclass's fields.
A service whose provider is a deploy function you register needs only its
provider and limits; the built-in LOCAL provider also needs ``module`` or
``command``.
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NotRequired, TypedDict

from deploy_scripts import ServiceSpec
from deploy_scripts.version import DECLARED_VERSION
from fogverse.constants import (
    DEFAULT_CONTROL_TOPIC,
    DEFAULT_LOCK_PORT,
    DEFAULT_PROVIDER,
    ENV_BOOTSTRAP,
    ENV_CONTROL_KEY,
    MASTER_STATE_TOPIC,
)
from fogverse.errors import ConfigError
from master.scheduling.autoscale import DeployerSettings
from workers.input_output import InputOutputSettings
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

DEFAULT_HTTP_PORT = 4280
"""/status and /metrics; next to the lock port so a fog node opens one small range."""


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


_TOP_KEYS = frozenset(MasterAutoScalerConfig.__annotations__)


def master_settings(
    conf: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> MasterSettings:
    """Validate a FogVerse-style mapping; a ConfigError names the first bad key."""
    env = os.environ if env is None else env
    _no_unknown("master config", conf, _TOP_KEYS)
    servers = conf.get("consumer_servers") or conf.get("consumer_server") or env.get(
        ENV_BOOTSTRAP) or "localhost:9092"
    lock = _section(conf, "distributed_worker_config", DistributedWorkerConfig)
    key = conf.get("control_key") or env.get(ENV_CONTROL_KEY) or None
    http_port = conf.get("http_port", DEFAULT_HTTP_PORT)
    if http_port is not None and (not isinstance(http_port, int) or http_port < 0):
        raise ConfigError("http_port", http_port, "expected a port number, 0 for any, or none")
    return MasterSettings(
        consumer_topic=_text(conf, "consumer_topic", DEFAULT_CONTROL_TOPIC),
        consumer_servers=str(servers),
        consumer_group_id=_text(conf, "consumer_group_id", DEFAULT_MASTER_GROUP),
        workers=_workers(conf.get("included_worker")),
        deployer=_build(DeployerSettings, "auto_deployer_config",
                        _section(conf, "auto_deployer_config", AutoDeployerConfig)),
        statistic=_build(StatisticSettings, "statistic_worker_config",
                         _section(conf, "statistic_worker_config", StatisticWorkerConfig)),
        input_output=_build(InputOutputSettings, "input_output_worker_config",
                            _io_section(conf)),
        lock_host=str(lock.get("master_host", "127.0.0.1")),
        lock_port=int(lock.get("master_port", DEFAULT_LOCK_PORT)),
        lock_bind_host=str(lock.get("bind_host", "127.0.0.1")),
        services=_services(conf.get("services") or {}),
        instance_expiry_beats=_positive_int(conf, "instance_expiry_beats",
                                            DEFAULT_EXPIRY_BEATS),
        stale_after=_positive(conf, "stale_after", 30.0),
        max_clock_skew=_positive(conf, "max_clock_skew", 5.0),
        max_plans=_positive_int(conf, "max_plans", 1000),
        plan_expiry=_positive(conf, "plan_expiry", 600.0),
        http_host=_text(conf, "http_host", "127.0.0.1"),
        http_port=http_port,
        control_key=key.encode() if isinstance(key, str) else key,
        log_dir=conf.get("log_dir"),
        kafka_extra=dict(conf.get("kafka_extra") or {}),
        state_topic=str(conf.get("state_topic", MASTER_STATE_TOPIC)),
        leave_running=_flag(conf, "leave_running", False),
        fleet=_section(conf, "fleet_config", FleetConfig) if "fleet_config" in conf else None,
    )


def load_master_config(
    path: str | os.PathLike[str], env: Mapping[str, str] | None = None
) -> MasterSettings:
    """Read ``master.toml`` (the same keys as :class:`MasterAutoScalerConfig`)."""
    with open(path, "rb") as f:
        try:
            conf = tomllib.load(f)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config file", str(path), f"not valid TOML: {exc}") from None
    settings = master_settings(conf, env)
    # Relative service directories mean "next to the config file".
    base = Path(path).resolve().parent
    services = {
        name: _with_cwd(svc, base) for name, svc in settings.services.items()
    }
    return replace(settings, services=services)


def _with_cwd(svc: ServiceSpec, base: Path) -> ServiceSpec:
    cwd = str((base / svc.cwd).resolve()) if svc.cwd else str(base)
    return replace(svc, cwd=cwd)


def _no_unknown(where: str, conf: Mapping[str, Any], known: frozenset[str]) -> None:
    if not isinstance(conf, Mapping):
        raise ConfigError(where, conf, "expected a table / mapping")
    unknown = sorted(set(conf) - known)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}", conf[unknown[0]],
                          f"unknown key; known keys: {', '.join(sorted(known))}")


def _section(conf: Mapping[str, Any], name: str, schema: type) -> dict[str, Any]:
    section = conf.get(name) or {}
    _no_unknown(name, section, frozenset(schema.__annotations__))
    return dict(section)


def _io_section(conf: Mapping[str, Any]) -> dict[str, Any]:
    section = _section(conf, "input_output_worker_config", InputOutputWorkerConfig)
    refresh = section.get("refresh_rate_second")
    if refresh is not None and "window_seconds" not in section:
        # FogVerse configs set only the refresh (its README: 60 s); the window
        # must still hold a few samples.
        section["window_seconds"] = max(10.0, 3 * float(refresh))
    return section


def _build(cls: type[Any], name: str, values: dict[str, Any]) -> Any:
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(name, values, str(exc)) from None


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


def _text(conf: Mapping[str, Any], name: str, default: str) -> str:
    value = conf.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(name, value, "expected a non-empty string")
    return value


def _flag(conf: Mapping[str, Any], name: str, default: bool) -> bool:
    value = conf.get(name, default)
    if not isinstance(value, bool):
        raise ConfigError(name, value, "expected true or false")
    return value


def _positive(conf: Mapping[str, Any], name: str, default: float) -> float:
    value = conf.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(name, value, "expected a positive number of seconds")
    return float(value)


def _positive_int(conf: Mapping[str, Any], name: str, default: int) -> int:
    value = conf.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(name, value, "expected a positive integer")
    return value


def _services(raw: Mapping[str, Any]) -> dict[str, ServiceSpec]:
    if not isinstance(raw, Mapping):
        raise ConfigError("services", raw, "expected a table of services")
    return {str(name): _service(str(name), conf) for name, conf in raw.items()}


_SERVICE_KEYS = frozenset(f.name for f in fields(ServiceSpec)) - {"name"}


def _service(name: str, conf: Mapping[str, Any]) -> ServiceSpec:
    where = f"services.{name}"
    _no_unknown(where, conf, _SERVICE_KEYS)
    command = conf.get("command")
    if command is not None and (not isinstance(command, list | tuple) or not command):
        raise ConfigError(f"{where}.command", command, "expected a non-empty list of strings")
    for key in ("env", "extra_configs", "versions"):
        if not isinstance(conf.get(key) or {}, Mapping):
            raise ConfigError(f"{where}.{key}", conf[key], "expected a table / mapping")
    for key in ("provider", "module", "cwd", "source_topic", "target_topic", "group_id"):
        value = conf.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigError(f"{where}.{key}", value, "expected a non-empty string")
    try:
        return ServiceSpec(
            name=name, provider=conf.get("provider", DEFAULT_PROVIDER), module=conf.get("module"),
            command=None if command is None else tuple(str(c) for c in command),
            env={str(k): str(v) for k, v in (conf.get("env") or {}).items()},
            cwd=conf.get("cwd"), min_instance=conf.get("min_instance", 1),
            max_instance=conf.get("max_instance", 1), source_topic=conf.get("source_topic"),
            target_topic=conf.get("target_topic"), group_id=conf.get("group_id"),
            extra_configs=dict(conf.get("extra_configs") or {}),
            version=conf.get("version", DECLARED_VERSION), versions=conf.get("versions") or {},
        )
    except ConfigError as exc:
        # Name the key as the user wrote it, not the dataclass.
        why = str(exc)[len(f"invalid setting {exc.setting}={exc.value!r}: "):]
        raise ConfigError(f"{where}.{exc.setting.split(').', 1)[-1]}", exc.value, why) from None
