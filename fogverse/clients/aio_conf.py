"""aiokafka constructor arguments from a StageConfig and librdkafka-style extras.

Users write client options once, in librdkafka's names (``security.protocol``,
``sasl.username``, ``linger.ms``...), whichever backend runs them. The common
ones are translated here; options written in aiokafka's own names
(``sasl_plain_username``) pass through as they are. An option that means
nothing to aiokafka is logged once and left out rather than failing a device
that shares its settings with a librdkafka one.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.helpers import create_ssl_context

from fogverse.config import StageConfig, connection_settings

__all__ = ["admin_options", "consumer_options", "producer_options", "translate"]

log = logging.getLogger("fogverse.kafka")

_RENAMED = {
    "security.protocol": "security_protocol",
    "sasl.mechanism": "sasl_mechanism",
    "sasl.mechanisms": "sasl_mechanism",
    "sasl.username": "sasl_plain_username",
    "sasl.password": "sasl_plain_password",
    "client.id": "client_id",
    "group.id": "group_id",
    "linger.ms": "linger_ms",
    "acks": "acks",
    "compression.type": "compression_type",
    "enable.idempotence": "enable_idempotence",
    "message.max.bytes": "max_request_size",
    "batch.size": "max_batch_size",
    "request.timeout.ms": "request_timeout_ms",
    "metadata.max.age.ms": "metadata_max_age_ms",
    "topic.metadata.refresh.interval.ms": "metadata_max_age_ms",
    "auto.offset.reset": "auto_offset_reset",
    "session.timeout.ms": "session_timeout_ms",
    "heartbeat.interval.ms": "heartbeat_interval_ms",
    "max.poll.interval.ms": "max_poll_interval_ms",
    "fetch.wait.max.ms": "fetch_max_wait_ms",
    "fetch.max.bytes": "fetch_max_bytes",
    "max.partition.fetch.bytes": "max_partition_fetch_bytes",
    "fetch.min.bytes": "fetch_min_bytes",
    "isolation.level": "isolation_level",
    "enable.auto.commit": "enable_auto_commit",
}
_SSL_FILES = {
    "ssl.ca.location": "cafile",
    "ssl.certificate.location": "certfile",
    "ssl.key.location": "keyfile",
    "ssl.key.password": "password",
}
_IGNORED_SILENTLY = frozenset({"logger", "group.protocol", "partition.assignment.strategy",
                               "socket.nagle.disable", "enable.partition.eof",
                               "enable.auto.offset.store"})
"""librdkafka options with no aiokafka counterpart that fogverse sets itself."""
_warned: set[str] = set()


def translate(extra: Mapping[str, Any], target: type) -> dict[str, Any]:
    """``extra`` as keyword arguments ``target``'s constructor accepts."""
    accepted = set(inspect.signature(target).parameters)
    out: dict[str, Any] = {}
    ssl_files: dict[str, Any] = {}
    for key, value in extra.items():
        if key in _SSL_FILES:
            ssl_files[_SSL_FILES[key]] = value
            continue
        name = _RENAMED.get(key, key)
        if name in accepted:
            out[name] = _value(name, value)
        elif key not in _IGNORED_SILENTLY and key not in _warned:
            _warned.add(key)
            log.warning("client option %s=%r means nothing to aiokafka's %s; ignored",
                        key, value, target.__name__)
    if ssl_files or str(out.get("security_protocol", "")).endswith("SSL"):
        out["ssl_context"] = create_ssl_context(**ssl_files)
    return out


def _value(name: str, value: Any) -> Any:
    # librdkafka takes strings for everything; aiokafka wants numbers and booleans.
    if isinstance(value, str):
        if name.endswith(("_ms", "_bytes", "_size")) and value.isdigit():
            return int(value)
        if value.lower() in ("true", "false") and name.startswith("enable_"):
            return value.lower() == "true"
        if name == "acks" and value.lstrip("-").isdigit():
            return int(value)
    return value


def consumer_options(config: StageConfig, group_id: str, client_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": config.consumer_servers,
        "group_id": group_id,
        "client_id": client_id,
        "auto_offset_reset": "latest" if config.read_latest else "earliest",
        # New partitions added by the master must be seen within seconds.
        "metadata_max_age_ms": 5000,
        "fetch_max_wait_ms": max(10, int(config.fetch_timeout * 1000)),
        # aiokafka asks for a partition again only once its buffer is read:
        # a bigger buffer means fewer stalls of a round trip.
        "max_partition_fetch_bytes": 2 * 1024 * 1024,
    }
    options.update(translate({**config.kafka_extra, **config.consumer_extra}, AIOKafkaConsumer))
    if options.get("enable_auto_commit"):
        # Auto-commit would commit inputs before their outputs are acked.
        log.warning("ignoring enable.auto.commit: the stage commits only acknowledged work")
    options["enable_auto_commit"] = False
    return options


def producer_options(config: StageConfig, client_id: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": config.effective_producer_servers,
        "client_id": client_id,
        # Idempotence keeps per-partition order across internal retries.
        "enable_idempotence": True,
        "linger_ms": 2,
        # The record batches fogverse fills (one per partition per fetched
        # batch): 16 KiB, aiokafka's default, is a dozen 1 KiB messages.
        "max_batch_size": 512 * 1024,
        "metadata_max_age_ms": 5000,
    }
    options.update(translate({**config.kafka_extra, **config.producer_extra}, AIOKafkaProducer))
    return options


def admin_options(servers: str, extra: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {"bootstrap_servers": servers}
    options.update(translate(connection_settings(extra), AIOKafkaAdminClient))
    return options
