"""Stage settings: constructor arguments beat environment variables beat defaults.

FogVerse users set ``self.consumer_topic`` and friends (any setting, as an
instance or class attribute) before calling ``super().__init__()``, or export
``CONSUMER_TOPIC`` and friends; both keep working. Kafka client options
(security, SASL, SSL, tuning) pass through untouched in ``kafka_extra`` /
``consumer_extra`` / ``producer_extra``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

from fogverse.constants import (
    CLIENTS,
    DEFAULT_CONTROL_TOPIC,
    ENV_BOOTSTRAP,
    ENV_CLIENT,
    ENV_METRICS_PORT,
)
from fogverse.errors import ConfigError

__all__ = [
    "ENV_NAMES",
    "SETTING_NAMES",
    "ErrorPolicy",
    "StageConfig",
    "check_setting_names",
    "connection_settings",
    "metrics_ports",
    "resolve_config",
]

ErrorPolicy = Literal["dead-letter", "skip", "stop"]
ERROR_POLICIES: tuple[str, ...] = ("dead-letter", "skip", "stop")
GROUP_PROTOCOLS: tuple[str, ...] = ("consumer", "classic")

ENV_NAMES: dict[str, str] = {
    "consumer_topic": "CONSUMER_TOPIC",
    "producer_topic": "PRODUCER_TOPIC",
    "consumer_servers": "CONSUMER_SERVERS",
    "producer_servers": "PRODUCER_SERVERS",
    "group_id": "GROUP_ID",
    "client_id": "CLIENT_ID",
    "read_latest": "READ_LATEST",
    "error_policy": "ERROR_POLICY",
    "dead_letter_topic": "DEAD_LETTER_TOPIC",
    "control_topic": "CONTROL_TOPIC",
    "profiling_csv": "PROFILING_CSV",
    "metrics_port": ENV_METRICS_PORT,
}
"""Settings that may come from the environment, by FogVerse's variable names."""

_TOPIC_RE = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_SERVER_RE = re.compile(r"^[^\s,:]+(:\d{1,5})?$")


@dataclass(frozen=True)
class StageConfig:
    """Everything a stage needs to run. Unset fields resolve from the environment."""

    consumer_topic: tuple[str, ...] = ()
    producer_topic: str | None = None
    consumer_servers: str = "localhost:9092"
    producer_servers: str | None = None
    """Defaults to consumer_servers."""
    group_id: str | None = None
    """Defaults to the stage's class name, so instances of one stage share work."""
    client_id: str | None = None
    read_latest: bool = False
    """A new group skips the backlog and reads only new messages (live video);
    where the group has committed it resumes there. Off by default because it
    drops whatever was waiting for a new group."""
    error_policy: ErrorPolicy = "dead-letter"
    dead_letter_topic: str | None = None
    """Defaults to ``fogverse-dlq-<first consumer topic>``."""
    batch_size: int = 500
    fetch_timeout: float = 0.1
    commit_interval: float = 1.0
    group_protocol: str = "consumer"
    """``consumer`` is KIP-848: the broker assigns partitions incrementally, so
    adding an instance does not pause the others. ``classic`` uses
    cooperative-sticky assignment."""
    concurrency: int = 1
    """Messages in flight at once on the stage's event loop, for an async
    ``process`` that waits on I/O (a model server, a database, an HTTP API)."""
    ordered: bool = True
    """With ``concurrency``: outputs leave in input order per partition
    (False: as they finish)."""
    max_messages: int | None = None
    """Stop after this many inputs (burst mode, for tests and batch jobs)."""
    idle_timeout: float | None = None
    """Stop after this many seconds without input."""
    connect_attempts: int = 5
    connect_backoff: float = 0.5
    shutdown_timeout: float = 30.0
    heartbeat_interval: float = 1.0
    control_topic: str = DEFAULT_CONTROL_TOPIC
    heartbeat: bool = True
    deploy_config: Mapping[str, Any] | None = None
    """FogVerse's DeployConfig (provider, service_name, max_instance,
    extra_configs): when set, the stage asks the master to scale it."""
    profiling_csv: str | None = None
    client: str | None = None
    """The Kafka client library: ``confluent`` (confluent-kafka, the default) or
    ``aiokafka`` (pure Python, for devices without a librdkafka wheel). Unset:
    ``FOGVERSE_CLIENT``, else confluent-kafka, or aiokafka when confluent-kafka
    cannot be imported."""
    metrics_port: int | str | None = None
    """Serve Prometheus metrics on this port (``/metrics`` on every address); a range
    ``"9100-9119"`` takes the first free port in it, so several instances on one
    host each get one. None or 0: no metrics, and nothing measured per message."""
    kafka_extra: Mapping[str, Any] = field(default_factory=dict)
    consumer_extra: Mapping[str, Any] = field(default_factory=dict)
    producer_extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def effective_producer_servers(self) -> str:
        return self.producer_servers or self.consumer_servers

    @property
    def effective_dead_letter_topic(self) -> str | None:
        if self.dead_letter_topic:
            return self.dead_letter_topic
        if self.consumer_topic:
            return f"fogverse-dlq-{self.consumer_topic[0]}"
        return None


SETTING_NAMES: tuple[str, ...] = tuple(f.name for f in fields(StageConfig))
"""Every stage setting, by its keyword (and FogVerse attribute) name."""
_FIELD_NAMES = frozenset(SETTING_NAMES)


def check_setting_names(
    settings: Mapping[str, Any], also_valid: Iterable[str] = ()
) -> None:
    """Raise ConfigError for the first unknown name, suggesting the closest valid one."""
    valid = sorted(_FIELD_NAMES.union(also_valid))
    for name in sorted(settings):
        if name in valid:
            continue
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(name, settings[name], f"unknown setting{hint}")

_CONNECTION_PREFIXES = ("security.", "sasl.", "ssl.")


def connection_settings(extra: Mapping[str, Any]) -> dict[str, Any]:
    """Only the security options of a client settings map.

    What an auxiliary client (admin, heartbeats, the master's readers) shares
    with a stage: how to reach the cluster, not the stage's tuning.
    """
    return {k: v for k, v in extra.items() if k.startswith(_CONNECTION_PREFIXES)}


def _setting_name(name: str) -> str:
    env = ENV_NAMES.get(name)
    return f"{name} ({env})" if env else name


def _coerce(name: str, value: Any) -> Any:
    """Bring env strings and FogVerse shapes to the field's type."""
    if name == "consumer_topic":
        if isinstance(value, str):
            return tuple(t.strip() for t in value.split(",") if t.strip())
        if isinstance(value, list | tuple):
            return tuple(value)
        raise ConfigError(_setting_name(name), value, "expected a topic name or a list of them")
    if name in ("consumer_servers", "producer_servers") and isinstance(value, list | tuple):
        return ",".join(value)
    if name == "read_latest" and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if name == "producer_topic" and value == "":
        return None
    if name == "metrics_port" and isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def resolve_config(
    explicit: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    base: StageConfig | None = None,
) -> StageConfig:
    """Layer explicit settings over the environment over ``base`` (or defaults).

    Raises ConfigError naming the first bad setting.
    """
    env = os.environ if env is None else env
    check_setting_names(explicit)
    values: dict[str, Any] = {}
    for name, env_name in ENV_NAMES.items():
        if env.get(env_name):
            values[name] = env[env_name]
    if "consumer_servers" not in values and env.get(ENV_BOOTSTRAP):
        values["consumer_servers"] = env[ENV_BOOTSTRAP]
    values.update({k: v for k, v in explicit.items() if v is not None})
    coerced = {name: _coerce(name, value) for name, value in values.items()}
    config = replace(base or StageConfig(), **coerced)
    validate(config)
    return config


def validate(config: StageConfig) -> None:
    """Raise ConfigError for the first setting that cannot work."""
    for topic in config.consumer_topic:
        _check_topic("consumer_topic", topic)
    if config.producer_topic is not None:
        _check_topic("producer_topic", config.producer_topic)
    if config.dead_letter_topic is not None:
        _check_topic("dead_letter_topic", config.dead_letter_topic)
        if config.dead_letter_topic in config.consumer_topic:
            raise ConfigError(_setting_name("dead_letter_topic"), config.dead_letter_topic,
                              "must differ from the consumer topic (bad input would loop)")
    _check_topic("control_topic", config.control_topic)
    _check_servers("consumer_servers", config.consumer_servers)
    if config.producer_servers is not None:
        _check_servers("producer_servers", config.producer_servers)
    if config.error_policy not in ERROR_POLICIES:
        raise ConfigError(
            _setting_name("error_policy"), config.error_policy, f"expected one of {ERROR_POLICIES}"
        )
    if config.group_protocol not in GROUP_PROTOCOLS:
        raise ConfigError("group_protocol", config.group_protocol, f"expected {GROUP_PROTOCOLS}")
    if config.client is not None and config.client not in CLIENTS:
        raise ConfigError(f"client ({ENV_CLIENT})", config.client, f"expected one of {CLIENTS}")
    _check_positive(config)
    metrics_ports(config)


def metrics_ports(config: StageConfig) -> range | None:
    """The ports ``metrics_port`` allows, in the order to try them; None when off."""
    value = config.metrics_port
    if value is None or value == 0:
        return None
    low = high = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str):
        first, dash, last = value.partition("-")
        if dash and first.strip().isdigit() and last.strip().isdigit():
            low, high = int(first), int(last)
    if low is None or high is None or not 0 < low <= high <= 65535:
        raise ConfigError(_setting_name("metrics_port"), value,
                          "expected a port (1-65535), a range like '9100-9119', or 0 for off")
    return range(low, high + 1)


_COUNTS = ("batch_size", "connect_attempts", "concurrency")
_SECONDS = ("fetch_timeout", "commit_interval", "connect_backoff", "heartbeat_interval",
            "shutdown_timeout")


def _check_positive(config: StageConfig) -> None:
    for name in _COUNTS:
        _check_number(name, getattr(config, name), int, "a positive whole number")
    for name in _SECONDS:
        _check_number(name, getattr(config, name), int | float, "a positive number")
    if config.max_messages is not None:
        _check_number("max_messages", config.max_messages, int, "a positive whole number")
    if config.idle_timeout is not None:
        _check_number("idle_timeout", config.idle_timeout, int | float, "a positive number")


def _check_number(name: str, value: object, kind: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        raise ConfigError(name, value, f"must be {what}")


def _check_topic(name: str, topic: object) -> None:
    if not isinstance(topic, str) or not _TOPIC_RE.match(topic) or topic in (".", ".."):
        raise ConfigError(
            _setting_name(name), topic, "a Kafka topic name is 1-249 of [A-Za-z0-9._-]"
        )


def _check_servers(name: str, servers: object) -> None:
    if not isinstance(servers, str) or not servers:
        raise ConfigError(_setting_name(name), servers, "expected 'host:port[,host:port...]'")
    for server in servers.split(","):
        if not _SERVER_RE.match(server.strip()):
            raise ConfigError(_setting_name(name), servers, "expected 'host:port[,host:port...]'")
