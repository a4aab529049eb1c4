"""``topic.yaml``: topics declared once, created or updated on every cluster they name.

FogVerse's format, with ``$NAME`` standing for an environment variable::

    server:                      # or "servers": cluster names and their bootstrap
      local_kafka: $LOCAL_KAFKA
      cloud_kafka: cloud:9092
    topic:                       # or "topics"
      input:
        partitions: 2
        server: local_kafka      # one name or a list ("servers" too)
        config:                  # or "configs": Kafka topic configs
          retention.ms: 2000

Applying it creates missing topics, grows partitions (Kafka cannot shrink them)
and sets the declared configs incrementally, leaving every other config alone.
What already matches is not touched, so applying the same file twice changes
nothing the second time. ``fogverse topics apply topic.yaml`` does it from a
shell; a stage applies ``topic.yaml`` from its working directory when it starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fogverse.errors import ConfigError, MissingDependencyError

if TYPE_CHECKING:
    from confluent_kafka.admin import AdminClient

    from fogverse.admin import KafkaAdmin

__all__ = [
    "TOPIC_FILE",
    "TopicChange",
    "TopicFile",
    "TopicSpec",
    "apply_topic_file",
    "apply_topics",
    "apply_working_directory_file",
    "load_topic_file",
]

TOPIC_FILE = "topic.yaml"
"""The file a stage looks for in its working directory, as FogVerse's deployments keep it."""

log = logging.getLogger("fogverse.topics")

_ENV_RE = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    servers: tuple[str, ...]
    """Cluster names, keys of :attr:`TopicFile.servers`."""
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopicFile:
    servers: Mapping[str, str]
    """Cluster name -> bootstrap servers, with ``$ENV`` already substituted."""
    topics: tuple[TopicSpec, ...]


@dataclass(frozen=True)
class TopicChange:
    server: str
    topic: str
    action: str
    """``created``, ``partitions``, ``config`` or ``unchanged``."""
    detail: str = ""

    def __str__(self) -> str:
        tail = f" ({self.detail})" if self.detail else ""
        return f"{self.server}: {self.topic} {self.action}{tail}"


# -- reading the file ----------------------------------------------------------------


def load_topic_file(path: str | Path, env: Mapping[str, str] | None = None) -> TopicFile:
    """Parse ``path``; ConfigError names the first bad entry."""
    import yaml

    env = os.environ if env is None else env
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(where, None, f"cannot read the topic file: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(where, None, f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(where, raw, "expected a mapping with 'server' and 'topic'")
    servers = _servers(where, _either(raw, "server", "servers", where), env)
    topics = _either(raw, "topic", "topics", where)
    if not isinstance(topics, dict):
        raise ConfigError(f"{where}: topic", topics, "expected a mapping of topic names")
    return TopicFile(servers, tuple(_topic(where, name, body, servers)
                                    for name, body in topics.items()))


def _either(raw: Mapping[str, Any], one: str, many: str, where: str) -> Any:
    if one in raw and many in raw:
        raise ConfigError(f"{where}: {one}", raw[one], f"give '{one}' or '{many}', not both")
    if one not in raw and many not in raw:
        raise ConfigError(f"{where}: {one}", None, "missing")
    return raw.get(one, raw.get(many))


def _servers(where: str, raw: Any, env: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(raw, dict) or not raw:
        raise ConfigError(f"{where}: server", raw, "expected cluster names and their bootstrap")
    servers: dict[str, str] = {}
    for name, value in raw.items():
        text = str(value).strip() if value is not None else ""
        match = _ENV_RE.match(text)
        if match:
            text = env.get(match.group(1), "").strip()
            if not text:
                raise ConfigError(f"{where}: server.{name}", value,
                                  f"environment variable {match.group(1)} is not set")
        if not text:
            raise ConfigError(f"{where}: server.{name}", value, "expected host:port")
        servers[str(name)] = text
    return servers


def _topic(where: str, name: Any, body: Any, servers: Mapping[str, str]) -> TopicSpec:
    key = f"{where}: topic.{name}"
    if not isinstance(body, dict):
        raise ConfigError(key, body, "expected partitions, server and config")
    partitions = body.get("partitions", 1)
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ConfigError(f"{key}.partitions", partitions, "must be a positive whole number")
    names = _either(body, "server", "servers", key)
    names = [names] if isinstance(names, str) else names
    if not isinstance(names, list) or not names:
        raise ConfigError(f"{key}.server", names, "expected a cluster name or a list of them")
    for server in names:
        if server not in servers:
            raise ConfigError(f"{key}.server", server,
                              f"not a cluster named under 'server' ({', '.join(servers)})")
    config = body.get("config", body.get("configs")) or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{key}.config", config, "expected Kafka topic configs")
    return TopicSpec(str(name), partitions, tuple(names),
                     {str(k): _config_text(v) for k, v in config.items()})


def _config_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- applying it ---------------------------------------------------------------------


async def apply_topics(spec: TopicFile, extra: Mapping[str, Any] | None = None,
                       ) -> list[TopicChange]:
    """Bring every cluster in line with ``spec``; return what was done, topic by topic."""
    try:
        # Only here: a stage on the aiokafka backend imports this module too.
        from confluent_kafka.admin import AdminClient

        from fogverse.admin import KafkaAdmin
    except ImportError as exc:
        raise MissingDependencyError(
            "applying topic.yaml needs confluent-kafka (aiokafka cannot set topic configs "
            "incrementally): pip install 'fogverse[confluent]'") from exc
    changes: list[TopicChange] = []
    for server_name, bootstrap in spec.servers.items():
        wanted = [t for t in spec.topics if server_name in t.servers]
        if not wanted:
            continue
        client = AdminClient({"bootstrap.servers": bootstrap, **(extra or {})})
        admin = KafkaAdmin.wrap(client)
        for topic in wanted:
            changes.append(await _apply_one(server_name, client, admin, topic))
    return changes


async def apply_topic_file(path: str | Path, extra: Mapping[str, Any] | None = None,
                           ) -> list[TopicChange]:
    return await apply_topics(load_topic_file(path), extra)


async def _apply_one(server: str, client: AdminClient, admin: KafkaAdmin,
                     topic: TopicSpec) -> TopicChange:
    current = await admin.partition_count(topic.name)
    if current is None:
        await admin.ensure_topic(topic.name, topic.partitions, topic.config)
        now = await admin.partition_count(topic.name)
        # Someone may have created it first (a producer's auto-create, another
        # stage's apply); then it is brought in line below like any existing topic.
        if now == topic.partitions and not await _differing_configs(client, topic):
            return TopicChange(server, topic.name, "created",
                               f"{topic.partitions} partition(s)")
        current = now or 0
    done: list[str] = []
    if current < topic.partitions:
        await admin.ensure_partitions(topic.name, topic.partitions)
        done.append(f"partitions {current} -> {topic.partitions}")
    elif current > topic.partitions:
        log.warning("%s: %s has %d partitions, more than the %d declared; Kafka cannot "
                    "shrink a topic", server, topic.name, current, topic.partitions)
    differing = await _differing_configs(client, topic)
    if differing:
        await _set_configs(client, topic.name, differing)
        done.append("config " + ", ".join(f"{k}={v}" for k, v in sorted(differing.items())))
    if not done:
        return TopicChange(server, topic.name, "unchanged")
    action = "partitions" if done[0].startswith("partitions") else "config"
    return TopicChange(server, topic.name, action, "; ".join(done))


async def _differing_configs(client: AdminClient, topic: TopicSpec) -> dict[str, str]:
    if not topic.config:
        return {}
    from confluent_kafka.admin import ConfigResource  # type: ignore[attr-defined]

    resource = ConfigResource(ConfigResource.Type.TOPIC, topic.name)
    future = client.describe_configs([resource])[resource]
    entries: Mapping[str, Any] = await asyncio.wrap_future(future)
    return {key: value for key, value in topic.config.items()
            if key not in entries or entries[key].value != value}


async def _set_configs(client: AdminClient, name: str, values: Mapping[str, str]) -> None:
    # Incremental: FogVerse's alter_configs reset every config it did not name.
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import (  # type: ignore[attr-defined]
        AlterConfigOpType,
        ConfigEntry,
        ConfigResource,
    )

    resource = ConfigResource(ConfigResource.Type.TOPIC, name, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
        for key, value in values.items()
    ])
    future = client.incremental_alter_configs([resource])[resource]
    try:
        await asyncio.wrap_future(future)
    except KafkaException as exc:
        raise ConfigError(f"topic {name} config", dict(values), str(exc)) from exc


async def apply_working_directory_file(name: str | None = TOPIC_FILE,
                                       extra: Mapping[str, Any] | None = None,
                                       ) -> list[TopicChange]:
    """Apply ``name`` from the working directory if it is there (what a stage does at
    start, as FogVerse deployments expect); nothing when it is absent or ``name`` is None."""
    if not name or not Path(name).is_file():
        return []
    changes = await apply_topic_file(name, extra)
    for change in changes:
        if change.action != "unchanged":
            log.info("%s: %s", name, change)
    return changes
