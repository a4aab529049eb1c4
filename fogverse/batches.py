"""Taking a batch from a confluent-kafka consumer without waiting for a full one.

``Consumer.consume(n, timeout)`` returns only when ``n`` messages are there or the
timeout has passed: at a moderate rate every message would wait the whole
timeout. Waiting for the first message and then taking what is already fetched
keeps batching under load and answers at once when traffic is light.
"""

from __future__ import annotations

from typing import Any

__all__ = ["take_batch"]


def take_batch(consumer: Any, size: int, timeout: float) -> list[Any]:
    """Up to ``size`` messages (errors included), as soon as one is there; [] after
    ``timeout`` seconds without any. ``consumer`` is a confluent-kafka Consumer."""
    first: list[Any] = consumer.consume(1, timeout)
    if not first or size <= 1:
        return first
    rest: list[Any] = consumer.consume(size - 1, 0)
    return first + rest
