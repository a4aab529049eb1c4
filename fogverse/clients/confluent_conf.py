"""confluent-kafka client settings from a StageConfig."""

from __future__ import annotations

import logging
from typing import Any

from fogverse.config import StageConfig, connection_settings

__all__ = ["admin_conf", "consumer_conf", "producer_conf"]

log = logging.getLogger("fogverse.kafka")


def consumer_conf(config: StageConfig, group_id: str, client_id: str) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": config.consumer_servers,
        "group.id": group_id,
        "client.id": client_id,
        # Commits are ours: only after the output is acknowledged.
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "latest" if config.read_latest else "earliest",
        "enable.partition.eof": False,
        # New partitions added by the master must be seen within seconds.
        "topic.metadata.refresh.interval.ms": 5000,
        "group.protocol": config.group_protocol,
        "socket.nagle.disable": True,
        "logger": log,
    }
    if config.group_protocol == "classic":
        conf["partition.assignment.strategy"] = "cooperative-sticky"
    conf.update(config.kafka_extra)
    conf.update(config.consumer_extra)
    for key in _OURS:
        if conf[key] is not False:
            # Auto-commit would commit inputs before their outputs are acked.
            log.warning("ignoring %s=%r: the stage commits only acknowledged work",
                        key, conf[key])
            conf[key] = False
    return conf


_OURS = ("enable.auto.commit", "enable.auto.offset.store")


def producer_conf(config: StageConfig, client_id: str) -> dict[str, Any]:
    conf: dict[str, Any] = {
        "bootstrap.servers": config.effective_producer_servers,
        "client.id": client_id,
        # Idempotence keeps per-partition order across internal retries.
        "enable.idempotence": True,
        "linger.ms": 2,
        "topic.metadata.refresh.interval.ms": 5000,
        # Small frames at a steady rate otherwise wait on delayed ACKs.
        "socket.nagle.disable": True,
        "logger": log,
    }
    conf.update(config.kafka_extra)
    conf.update(config.producer_extra)
    return conf


def admin_conf(servers: str, extra: dict[str, Any]) -> dict[str, Any]:
    conf: dict[str, Any] = {"bootstrap.servers": servers, "logger": log}
    # Only security and connection options make sense for the admin client.
    conf.update(connection_settings(extra))
    return conf
