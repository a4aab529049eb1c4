"""Building confluent-kafka clients from a StageConfig, and reaching the broker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from fogverse.config import StageConfig, connection_settings
from fogverse.errors import BrokerUnavailableError

__all__ = ["admin_conf", "consumer_conf", "ensure_topics", "producer_conf", "wait_for_broker"]

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


async def wait_for_broker(
    servers: str, extra: dict[str, Any], attempts: int, backoff: float
) -> AdminClient:
    """Return an admin client once the cluster answers; retry with backoff."""
    admin = AdminClient(admin_conf(servers, extra))
    delay = backoff
    for attempt in range(1, attempts + 1):
        try:
            await asyncio.to_thread(admin.list_topics, timeout=max(delay, 2.0))
            return admin
        except KafkaException as exc:
            log.warning(
                "broker %s unreachable (attempt %d/%d): %s", servers, attempt, attempts, exc
            )
            if attempt < attempts:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
    raise BrokerUnavailableError(
        f"no Kafka broker answered at {servers} after {attempts} attempts; "
        "check consumer_servers / producer_servers (CONSUMER_SERVERS, PRODUCER_SERVERS) "
        "or start one with `fogverse broker`"
    )


async def ensure_topics(admin: AdminClient, topics: Iterable[str]) -> None:
    """Create missing topics with one partition; the master adds more when it scales."""
    metadata = await asyncio.to_thread(admin.list_topics, timeout=10)
    missing = sorted({t for t in topics if t not in metadata.topics})
    if not missing:
        return
    futures = admin.create_topics([NewTopic(t, num_partitions=1) for t in missing])
    for topic, future in futures.items():
        try:
            await asyncio.wrap_future(future)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            # Another stage created it meanwhile: that is what we wanted.
            if not (isinstance(error, KafkaError) and
                    error.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
        log.debug("created topic %s", topic)

