"""The master's reader of the control topic: batches on a thread, retries with backoff.

``consume`` blocks, so it runs on a single thread of its own and the event loop
only decodes and dispatches what it returns. A failed read is retried after a
doubling delay (``backoff``, up to 8 s); ``retries`` failures in a row stop the
master with :class:`MasterFailedError` rather than let it run blind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from fogverse.batches import take_batch
from master.errors import MasterFailedError

__all__ = ["BATCH", "ControlConsumer", "ControlReader"]

log = logging.getLogger("fogverse.master")

BATCH = 1000
_POLL_TIMEOUT = 0.2
_MAX_BACKOFF = 8.0


class ControlConsumer(Protocol):
    """The part of confluent_kafka.Consumer the reader uses."""

    def consume(self, num_messages: int, timeout: float) -> list[Message]: ...

    def close(self) -> None: ...


OnBatch = Callable[[Sequence[bytes | None]], None]


class ControlReader:
    """Reads the control topic until stopped, handing each batch of values to ``on_batch``.

    ``ready`` is set once every partition is placed at its end: a message written
    after that is seen (the master starts at the latest offset, so one written
    before may not be).
    """

    def __init__(
        self,
        conf: dict[str, Any] | None,
        topic: str,
        on_batch: OnBatch,
        *,
        retries: int = 5,
        backoff: float = 0.5,
        consumer: ControlConsumer | None = None,
    ) -> None:
        self.topic = topic
        self.retries = retries
        self.backoff = backoff
        self.ready = asyncio.Event()
        self._on_batch = on_batch
        self._conf = conf or None
        self._consumer = consumer
        self._positioned = consumer is not None  # a given consumer is the caller's to place
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="master-control")

    async def open(self) -> None:
        """Create the consumer (nothing is read until :meth:`run`)."""
        if self._consumer is None:
            assert self._conf is not None
            self._consumer = KafkaConsumer(self._conf)

    async def run(self, stopping: asyncio.Event) -> None:
        """Read until ``stopping`` is set; MasterFailedError after too many failures."""
        await self.open()
        loop = asyncio.get_running_loop()
        failures = 0
        while not stopping.is_set():
            try:
                batch: list[Message] = await loop.run_in_executor(self._pool, self._read)
            except Exception as exc:
                failures += 1
                if failures >= self.retries:
                    raise MasterFailedError(
                        f"reading the control topic failed {failures} times in a row; "
                        f"last: {exc!r}") from exc
                delay = min(self.backoff * 2 ** (failures - 1), _MAX_BACKOFF)
                log.warning("reading the control topic failed (%d of %d): %r; retrying in "
                            "%.1fs", failures, self.retries, exc, delay)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if not self.ready.is_set() and (batch or self._positioned):
                self.ready.set()
            values = []
            for msg in batch:
                err = msg.error()
                if err is None:
                    values.append(msg.value())
                elif err.code() != KafkaError._PARTITION_EOF:
                    log.warning("control topic: %s", err)
            if values:
                self._on_batch(values)

    def _read(self) -> list[Message]:
        consumer = self._consumer
        assert consumer is not None
        if not self._positioned:
            self._place(consumer)
        return take_batch(consumer, BATCH, _POLL_TIMEOUT)

    def _place(self, consumer: Any) -> None:
        """Read every partition of the topic from its end as of now, without a group.

        Assigned, not subscribed: a master that joined a consumer group would,
        after a crash, wait out its dead predecessor's session (45 s by default)
        before reading anything, long enough to take every instance it adopted
        for dead. An explicit offset also makes "ready" mean what it says:
        anything written from here on is read.
        """
        meta = consumer.list_topics(self.topic, timeout=10).topics.get(self.topic)
        if meta is None or meta.error is not None or not meta.partitions:
            raise KafkaException(f"control topic {self.topic!r} has no partitions yet")
        places = []
        for p in sorted(meta.partitions):
            tp = TopicPartition(self.topic, p)
            tp.offset = consumer.get_watermark_offsets(tp, timeout=10)[1]
            places.append(tp)
        consumer.assign(places)
        self._positioned = True

    async def close(self) -> None:
        """Close the consumer on its own thread, then the thread."""
        if self._consumer is not None:
            await asyncio.get_running_loop().run_in_executor(self._pool, self._consumer.close)
            self._consumer = None
        self._pool.shutdown(wait=True)
