"""Small builders shared by the worker tests (no broker, no clock: time is passed in)."""

from __future__ import annotations

from fogverse.control import Heartbeat


def beat(
    instance_id: str,
    source: str | None = "in",
    target: str | None = "out",
    consumed: int = 0,
    produced: int = 0,
    interval: float = 1.0,
    processing: float | None = None,
    service: str = "svc",
    group: str | None = "g",
) -> Heartbeat:
    return Heartbeat(
        instance_id=instance_id, service_name=service, source_topic=source,
        target_topic=target, consumed=consumed, produced=produced, interval=interval,
        processing_seconds=processing, group_id=group,
    )
