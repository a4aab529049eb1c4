"""The task topics, created on first use by whichever process comes first."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fogverse.admin import AdminError
from fogverse.errors import BrokerUnavailableError

__all__ = ["STATUS_TOPIC_CONFIG", "ensure_task_topics", "partitions_of"]

_log = logging.getLogger("fogverse.kafka")

STATUS_TOPIC_CONFIG = {"cleanup.policy": "compact"}
"""Only each task's latest status matters; compaction keeps the topic as small as the
set of tasks."""


def ensure_task_topics(
    bootstrap: str, tasks_topic: str, status_topic: str, extra: Mapping[str, Any],
    timeout: float = 15.0,
) -> None:
    """Create the submissions and (compacted) status topics unless they exist. Blocking."""
    # librdkafka's own log goes through logging, not raw onto stderr.
    conf: dict[str, Any] = {"bootstrap.servers": bootstrap, "logger": _log, **extra}
    admin = AdminClient(conf)
    specs = [NewTopic(tasks_topic, num_partitions=1, replication_factor=-1),
             NewTopic(status_topic, num_partitions=1, replication_factor=-1,
                      config=dict(STATUS_TOPIC_CONFIG))]
    for name, future in admin.create_topics(specs, operation_timeout=timeout).items():
        try:
            future.result(timeout)
        except TimeoutError:
            raise BrokerUnavailableError(
                f"no Kafka broker answered at {bootstrap} within {timeout:.0f}s",
                hint="check --bootstrap / $FOGVERSE_BOOTSTRAP, or start a broker with "
                "`fogverse broker`") from None
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise AdminError(f"cannot create topic {name!r}: {exc}") from None


def partitions_of(client: Any, topic: str, timeout: float = 15.0) -> list[int]:
    """``topic``'s partitions once its metadata has them all led (a new topic takes a moment).

    ``client`` is any confluent-kafka client with ``list_topics``.
    """
    deadline = time.monotonic() + timeout
    while True:
        meta = client.list_topics(topic, timeout=timeout).topics.get(topic)
        parts = {} if meta is None or meta.error is not None else meta.partitions
        if parts and all(p.error is None and p.leader >= 0 for p in parts.values()):
            return sorted(parts)
        if time.monotonic() > deadline:
            raise AdminError(f"topic {topic!r} has no usable partitions after {timeout}s")
        time.sleep(0.1)
