"""The stage side of the control plane: FogVerse's Observer, without its blocking flush.

``send_heartbeat(target_topic, total_messages)`` and
``send_auto_scale_request(source_topic, target_topic, topic_configs)`` keep
FogVerse's signatures. Sending never waits for the broker: messages are queued in
the client (librdkafka, or aiokafka on a loop of its own) and delivered in the
background. FogVerse code calls
``send_heartbeat`` once per message; those calls are added up and sent at most
once per ``min_interval`` so a busy stage does not flood the control topic.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from fogverse.clients.base import SyncProducer
from fogverse.clients.choice import backend_for
from fogverse.constants import (
    DEFAULT_CONTROL_TOPIC,
    ENV_CONTROL_KEY,
    ENV_INSTANCE_ID,
    ENV_NODE_ID,
    ENV_SERVICE_NAME,
    ENV_VERSION,
)
from fogverse.control import (
    MIN_HEARTBEAT_INTERVAL,
    AutoScaleRequest,
    ControlBody,
    Heartbeat,
    InstanceStopping,
    encode_control,
)

__all__ = [
    "ENV_CONTROL_KEY",
    "ENV_INSTANCE_ID",
    "ENV_NODE_ID",
    "ENV_SERVICE_NAME",
    "InstanceInfo",
    "Observer",
    "ObserverConfig",
    "ProducerObserver",
    "control_key_from_env",
]


log = logging.getLogger("fogverse.observer")


class ObserverConfig(TypedDict, total=False):
    """FogVerse's observer settings."""

    kafka_server: str
    producer_topic: str


def control_key_from_env(env: Mapping[str, str] | None = None) -> bytes | None:
    value = (os.environ if env is None else env).get(ENV_CONTROL_KEY, "")
    return value.encode() if value else None


@dataclass(frozen=True)
class InstanceInfo:
    """Who is speaking: identifies one running instance of a stage."""

    instance_id: str
    service_name: str
    source_topic: str | None = None
    target_topic: str | None = None
    group_id: str | None = None
    node_id: str = ""
    version: str = ""

    @classmethod
    def from_env(
        cls,
        service_name: str,
        source_topic: str | None = None,
        target_topic: str | None = None,
        group_id: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> InstanceInfo:
        """Ids from the deploy provider's variables when present, else made up here."""
        env = os.environ if env is None else env
        host = socket.gethostname()
        return cls(
            instance_id=env.get(ENV_INSTANCE_ID) or f"{host}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
            service_name=env.get(ENV_SERVICE_NAME) or service_name,
            source_topic=source_topic,
            target_topic=target_topic,
            group_id=group_id,
            node_id=env.get(ENV_NODE_ID) or host,
            version=env.get(ENV_VERSION, ""),
        )


class Observer:
    """Sends heartbeats, auto-scale requests and goodbyes to the control topic.

    Thread-safe: a heartbeat thread and the stage's event loop may share one.
    """

    def __init__(
        self,
        producer_topic: str = DEFAULT_CONTROL_TOPIC,
        kafka_server: str = "localhost:9092",
        *,
        info: InstanceInfo | None = None,
        key: bytes | None = None,
        min_interval: float = 1.0,
        extra: Mapping[str, Any] | None = None,
        producer: SyncProducer | None = None,
        client: str | None = None,
    ) -> None:
        """``client`` is the Kafka client backend (a stage's ``client`` setting); a
        ``producer`` given (a ``confluent_kafka.Producer``, say) is used instead."""
        self.topic = producer_topic
        self.info = info or InstanceInfo.from_env(service_name="unknown")
        self._key = key if key is not None else control_key_from_env()
        self._min_interval = min_interval
        self._owns_producer = producer is None
        self._producer = producer or backend_for(client).sync_producer(
            kafka_server, extra or {}, _PRODUCER_OPTIONS
        )
        self._lock = threading.Lock()
        self._pending = [0, 0]  # consumed, produced since the last coalesced heartbeat
        self._last_sent = time.monotonic()
        self.dropped = 0
        """Messages refused because the local queue was full (broker unreachable)."""

    # -- FogVerse's API ---------------------------------------------------------------

    def send_heartbeat(
        self,
        target_topic: str | None = None,
        total_messages: int = 0,
        *,
        consumed: int | None = None,
        source_topic: str | None = None,
    ) -> None:
        """Count ``total_messages`` outputs (and as many inputs unless ``consumed`` says).

        Sent at most once per ``min_interval``; call :meth:`flush_heartbeat` to force.
        """
        with self._lock:
            self._pending[0] += total_messages if consumed is None else consumed
            self._pending[1] += total_messages
            if target_topic is not None or source_topic is not None:
                self.info = _retarget(self.info, source_topic, target_topic)
            if time.monotonic() - self._last_sent < self._min_interval:
                return
        self.flush_heartbeat()

    def flush_heartbeat(self) -> None:
        """Send what :meth:`send_heartbeat` has counted so far, now."""
        with self._lock:
            now = time.monotonic()
            consumed, produced = self._pending
            self._pending = [0, 0]
            interval = max(now - self._last_sent, MIN_HEARTBEAT_INTERVAL)
            self._last_sent = now
        self.heartbeat(consumed, produced, interval)

    def send_auto_scale_request(
        self, source_topic: str, target_topic: str | None, topic_configs: Mapping[str, Any] | None
    ) -> None:
        """Ask the master to scale this stage (FogVerse's DeployConfig in ``topic_configs``)."""
        if source_topic is None:
            return
        with self._lock:
            self.info = _retarget(self.info, source_topic, target_topic)
        self.send(auto_scale_request(self.info, source_topic, target_topic, topic_configs or {}))

    # -- ours ---------------------------------------------------------------------------

    def heartbeat(
        self,
        consumed: int,
        produced: int,
        interval: float,
        processing_seconds: float | None = None,
        lag: int | None = None,
        dead_lettered: int = 0,
    ) -> bool:
        """Send one heartbeat with counters covering the last ``interval`` seconds."""
        info = self.info
        return self.send(Heartbeat(
            instance_id=info.instance_id, service_name=info.service_name,
            source_topic=info.source_topic, target_topic=info.target_topic,
            consumed=consumed, produced=produced, interval=interval,
            processing_seconds=processing_seconds, lag=lag,
            group_id=info.group_id, node_id=info.node_id, dead_lettered=dead_lettered,
            version=info.version,
        ))

    def send_instance_stopping(self, reason: str = "") -> bool:
        info = self.info
        return self.send(InstanceStopping(
            instance_id=info.instance_id, service_name=info.service_name,
            source_topic=info.source_topic, target_topic=info.target_topic, reason=reason,
        ))

    def send(self, msg: ControlBody) -> bool:
        """Queue ``msg`` without waiting; False if the local queue is full and it was dropped."""
        payload = encode_control(msg, self.info.instance_id, self._key)
        try:
            self._producer.produce(self.topic, payload, self.info.instance_id.encode())
        except BufferError:
            # The broker has been unreachable long enough to fill the queue; an
            # old heartbeat is worthless, so drop rather than block the stage.
            self.dropped += 1
            return False
        self._producer.poll(0)
        return True

    def flush(self, timeout: float = 5.0) -> int:
        """Wait up to ``timeout`` for queued messages; returns how many are left.

        Blocking: call it from a thread (``asyncio.to_thread``) inside a loop.
        """
        left: int = self._producer.flush(timeout)
        return left

    def close(self, timeout: float = 5.0) -> None:
        """Send what is counted and deliver what is queued (blocking, bounded)."""
        if any(self._pending):
            self.flush_heartbeat()
        if self._owns_producer:
            left = self.flush(timeout)
            if left:
                log.warning("%d control messages not delivered on close", left)
            closing = getattr(self._producer, "close", None)
            if callable(closing):
                closing()


ProducerObserver = Observer
"""FogVerse's name for the same class."""


def auto_scale_request(
    info: InstanceInfo, source_topic: str, target_topic: str | None, configs: Mapping[str, Any]
) -> AutoScaleRequest:
    """An AutoScaleRequest from FogVerse's ``topic_configs`` (DeployConfig) mapping."""
    min_instance = configs.get("min_instance")
    return AutoScaleRequest(
        source_topic=source_topic,
        target_topic=target_topic,
        service_name=str(configs.get("service_name") or info.service_name),
        provider=str(configs.get("provider") or "LOCAL"),
        max_instance=int(configs.get("max_instance", 1)),
        min_instance=None if min_instance is None else int(min_instance),
        extra_configs=dict(configs.get("extra_configs") or {}),
        group_id=info.group_id,
    )


def _retarget(info: InstanceInfo, source: str | None, target: str | None) -> InstanceInfo:
    if (source is None or source == info.source_topic) and (
        target is None or target == info.target_topic
    ):
        return info
    return InstanceInfo(
        info.instance_id, info.service_name,
        source if source is not None else info.source_topic,
        target if target is not None else info.target_topic,
        info.group_id, info.node_id,
    )


_PRODUCER_OPTIONS: dict[str, Any] = {
    # Heartbeats are small and frequent: batch a little, and give up on one
    # after a few beats rather than retrying it for minutes.
    "linger.ms": 20,
    "message.timeout.ms": 10_000,
    "queue.buffering.max.messages": 10_000,
}
