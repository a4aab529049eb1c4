"""Reading batches from a confluent-kafka consumer without starving the event loop.

While messages wait in librdkafka's local queue (a busy stage), a batch is
taken on the event loop itself with a zero timeout: converting messages needs
the GIL anyway, and a second thread taking it in turns with the loop costs
more than it overlaps. Only when the queue is empty does the wait move to a
thread, so heartbeats and signals are served meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from fogverse.batches import take_batch
from fogverse.clients.base import Fetched
from fogverse.context import MessageContext
from fogverse.offsets import CommitTracker

__all__ = ["Fetcher"]


class Fetcher:
    """Batches of up to ``size()`` messages, each stamped with the revocation count."""

    def __init__(self, consumer: KafkaConsumer, tracker: CommitTracker, timeout: float,
                 size: Callable[[], int], on_error: Callable[[KafkaError], None],
                 name: str) -> None:
        self._consumer = consumer
        self._tracker = tracker
        self._timeout = timeout
        self._size = size
        self._on_error = on_error
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"{name}-fetch")
        self._waiting: asyncio.Future[Fetched] | None = None

    async def next(self) -> Fetched:
        """The next batch; empty if nothing came within the fetch timeout."""
        if self._waiting is None:
            batch, born = self._take(0)
            if batch:
                return batch, born
            self._waiting = asyncio.get_running_loop().run_in_executor(
                self._thread, self._take, self._timeout
            )
        try:
            return await asyncio.shield(self._waiting)
        finally:
            if self._waiting.done():
                self._waiting = None

    def _take(self, timeout: float) -> Fetched:
        consumer, tracker = self._consumer, self._tracker
        born = tracker.revocations
        size = self._size()
        batch = take_batch(consumer, size, timeout)
        if batch and tracker.revocations != born:
            # A revocation was served while these were collected, so which of
            # them predate it is unknown: read them again instead.
            _rewind(consumer, batch)
            return [], tracker.revocations
        return self._contexts(batch), born

    def _contexts(self, batch: list[Message]) -> list[MessageContext]:
        out: list[MessageContext] = []
        append = out.append
        for msg in batch:
            err = msg.error()
            if err is not None:
                self._on_error(err)
                if err.fatal():
                    break  # the rest stays uncommitted and is read again
                continue
            append(MessageContext(
                msg.value(), msg.key(), msg.headers() or [],  # type: ignore[arg-type]
                msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1],
            ))
        return out

    async def close(self) -> None:
        """Wait for a fetch in progress (its messages stay uncommitted), then stop."""
        if self._waiting is not None:
            with contextlib.suppress(Exception):
                await self._waiting
            self._waiting = None
        self._thread.shutdown(wait=True)


def _rewind(consumer: KafkaConsumer, messages: list[Message]) -> None:
    """Seek each partition back to its first message in ``messages``."""
    first: dict[tuple[str, int], int] = {}
    for msg in messages:
        if msg.error() is None:
            first.setdefault((msg.topic(), msg.partition()), msg.offset())  # type: ignore[arg-type]
    for (topic, partition), offset in first.items():
        # A revoked partition refuses the seek: its new owner reads it anyway.
        with contextlib.suppress(KafkaException):
            consumer.seek(TopicPartition(topic, partition, offset))
