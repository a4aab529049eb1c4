"""The task topics, created on first use by whichever process comes first."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from fogverse.admin import AdminError

__all__ = ["STATUS_TOPIC_CONFIG", "ensure_task_topics", "partitions_of"]

STATUS_TOPIC_CONFIG = {"cleanup.policy": "compact"}
"""Only each task's latest status matters; compaction keeps the topic as small as the
set of tasks."""


def ensure_task_topics(
    bootstrap: str, tasks_topic: str, status_topic: str, extra: Mapping[str, Any],
    timeout: float = 15.0,
) -> None:
    """Create the submissions and (compacted) status topics unless they exist. Blocking."""
    admin = AdminClient({"bootstrap.servers": bootstrap, **extra})
    specs = [NewTopic(tasks_topic, num_partitions=1, replication_factor=-1),
             NewTopic(status_topic, num_partitions=1, replication_factor=-1,
                      config=dict(STATUS_TOPIC_CONFIG))]
    for name, future in admin.create_topics(specs, operation_timeout=timeout).items():
        try:
            future.result(timeout)
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
