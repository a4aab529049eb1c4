"""A stage's producer on aiokafka, with the runtime's plain ``produce`` call.

aiokafka's ``send`` is a coroutine and makes a future per message, while the
runtime queues outputs with a plain call from the middle of a batch (a plain
stage never awaits there). ``produce`` therefore appends each output to an
open record batch of its partition (aiokafka's ``create_batch``), chosen as
aiokafka's own partitioner would; open batches are sealed once the loop gets a
turn (or when full) and one sender task hands them to aiokafka in that order,
so per-partition order is the order of the calls. Each batch's single ack
reports on all its messages, on the event loop, through the runtime's
``(error, message)`` callbacks. The outputs waiting are bounded by
:meth:`AioProducer.room`, which the runtime awaits between batches: that is
the stage's backpressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import deque
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, ProducerClosed, ProducerFenced
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from fogverse.clients.base import DeliveryReport
from fogverse.context import Headers

__all__ = ["AioDelivered", "AioError", "AioProducer"]

log = logging.getLogger("fogverse.kafka")

_QUEUE_LIMIT = 10_000
"""Outputs waiting before ``room()`` makes the stage wait (librdkafka's default is 100k)."""

_Report = tuple[DeliveryReport | None, bytes | None, bytes | None, Headers]
"""What a delivery report needs of one message: the callback, key, value, headers."""


class AioError:
    """An aiokafka exception in the shape delivery reports and fetches hand over."""

    __slots__ = ("exception",)

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception

    def fatal(self) -> bool:
        return isinstance(self.exception, ProducerFenced | ProducerClosed)

    def __str__(self) -> str:
        return f"{type(self.exception).__name__}: {self.exception}"

    def __repr__(self) -> str:
        return f"AioError({self.exception!r})"


class AioDelivered:
    """The message a delivery report is about (confluent's ``Message`` methods)."""

    __slots__ = ("_headers", "_key", "_offset", "_partition", "_topic", "_value")

    def __init__(self, topic: str, partition: int | None, offset: int | None,
                 key: bytes | None, value: bytes | None, headers: Headers | None) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset
        self._key, self._value, self._headers = key, value, headers

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int | None:
        return self._partition

    def offset(self) -> int | None:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> Headers | None:
        return self._headers

    def error(self) -> None:
        return None


class _Batch:
    """An open record batch of one partition and the reports of its messages."""

    __slots__ = ("builder", "partition", "reports", "topic")

    def __init__(self, topic: str, partition: int, builder: Any) -> None:
        self.topic, self.partition, self.builder = topic, partition, builder
        self.reports: list[_Report] = []


_Single = tuple[str, bytes | None, bytes | None, Headers, DeliveryReport | None]
"""A message for a topic whose partitions are not known yet: sent on its own."""


class AioProducer:
    """Fills record batches with a plain call; one task sends them in order."""

    def __init__(self, native: AIOKafkaProducer, max_request_size: int,
                 limit: int = _QUEUE_LIMIT) -> None:
        self.native = native
        self._cluster = native.client.cluster
        self._partitioner = DefaultPartitioner()
        self._max_size = max_request_size
        self._limit = limit
        self._open: dict[tuple[str, int], _Batch] = {}
        self._unkeyed: dict[str, int] = {}
        """Per topic, the partition unkeyed outputs fill until its batch is sealed."""
        self._sealing = False
        self._queue: deque[_Batch | _Single] = deque()
        self._wake = asyncio.Event()
        self._roomy = asyncio.Event()
        self._roomy.set()
        self._waiting = 0
        """Outputs not yet handed to aiokafka."""
        self._unacked = 0
        self._loop = asyncio.get_running_loop()
        self._sender = self._loop.create_task(self._send_all())

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                headers: Headers | None = None,
                on_delivery: DeliveryReport | None = None) -> None:
        """Queue one message; refuses (raises) one too large to ever be sent."""
        if value is None and key is None:
            # aiokafka refuses a record with neither; a null value means "bytes
            # left out" (a dead letter too large to carry them), so keep it.
            key = b""
        headers = headers or []
        if DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers) > self._max_size:
            # Refused now, as librdkafka does, so the error policy sees it;
            # librdkafka's code name, so dead letters read alike on both backends.
            raise MessageSizeTooLargeError(
                f"MSG_SIZE_TOO_LARGE: a {len(value or b'')}-byte message to {topic} is "
                f"larger than max_request_size={self._max_size}")
        partition = self._partition(topic, key)
        if partition is None:
            self._queue.append((topic, value, key, headers, on_delivery))
            self._wake.set()
        else:
            self._append(topic, partition, key, value, headers, on_delivery)
        self._unacked += 1
        self._waiting += 1
        if self._waiting >= self._limit:
            self._roomy.clear()

    def _partition(self, topic: str, key: bytes | None) -> int | None:
        """Where aiokafka's partitioner puts ``key``; None while the topic is unknown."""
        every = self._cluster.partitions_for_topic(topic)
        if not every:
            return None
        if key is not None:
            chosen: int = self._partitioner(
                key, list(every), list(self._cluster.available_partitions_for_topic(topic)))
            return chosen
        partition = self._unkeyed.get(topic)
        if partition is None:
            # Sticky, as Kafka's own producers do: fuller batches than one
            # random partition per message.
            available = self._cluster.available_partitions_for_topic(topic) or every
            partition = self._unkeyed[topic] = random.choice(sorted(available))
        return partition

    def _append(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                headers: Headers, report: DeliveryReport | None) -> None:
        batch = self._open.get((topic, partition))
        if batch is None:
            batch = self._opened(topic, partition)
        if batch.builder.append(timestamp=None, key=key, value=value, headers=headers) is None:
            self._seal(batch)  # full: it goes now, the message starts the next one
            batch = self._opened(topic, partition)
            if batch.builder.append(timestamp=None, key=key, value=value,
                                    headers=headers) is None:
                raise MessageSizeTooLargeError(
                    f"MSG_SIZE_TOO_LARGE: a {len(value or b'')}-byte message to {topic} "
                    "does not fit an empty batch (raise max_batch_size)")
        batch.reports.append((report, key, value, headers))

    def _opened(self, topic: str, partition: int) -> _Batch:
        batch = self._open[(topic, partition)] = _Batch(
            topic, partition, self.native.create_batch())
        if not self._sealing:
            # Sealed once the loop gets a turn: a plain stage's whole fetched
            # batch goes out in one record batch per partition.
            self._sealing = True
            self._loop.call_soon(self._seal_all)
        return batch

    def _seal(self, batch: _Batch) -> None:
        del self._open[(batch.topic, batch.partition)]
        if self._unkeyed.get(batch.topic) == batch.partition:
            del self._unkeyed[batch.topic]
        self._queue.append(batch)
        self._wake.set()

    def _seal_all(self) -> None:
        self._sealing = False
        for batch in list(self._open.values()):
            self._seal(batch)

    def poll(self, timeout: float = 0) -> int:
        # Reports run on the event loop by themselves.
        return 0

    async def room(self) -> None:
        if not self._roomy.is_set():
            await self._roomy.wait()

    async def _send_all(self) -> None:
        queue, wake = self._queue, self._wake
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            item = queue.popleft()
            if isinstance(item, _Batch):
                await self._send_batch(item)
            else:
                await self._send_one(*item)
            if self._waiting < self._limit // 2 and not self._roomy.is_set():
                self._roomy.set()

    async def _send_batch(self, batch: _Batch) -> None:
        self._waiting -= len(batch.reports)
        try:
            # Returns once aiokafka queued the batch; the future resolves on the ack.
            future = await self.native.send_batch(batch.builder, batch.topic,
                                                  partition=batch.partition)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._batch_done(batch, None, exc)
            return
        future.add_done_callback(functools.partial(self._batch_acked, batch))

    def _batch_acked(self, batch: _Batch, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self._batch_done(batch, None, asyncio.CancelledError("delivery cancelled"))
        elif (exc := future.exception()) is not None:
            self._batch_done(batch, None, exc)
        else:
            self._batch_done(batch, future.result(), None)

    def _batch_done(self, batch: _Batch, metadata: Any, exc: BaseException | None) -> None:
        topic, partition = batch.topic, batch.partition
        self._unacked -= len(batch.reports)
        base = None if metadata is None else metadata.offset
        error = None if exc is None else AioError(exc)
        for index, (report, key, value, headers) in enumerate(batch.reports):
            if report is None:
                if error is not None:
                    log.error("delivery to %s failed: %s", topic, error)
                continue
            offset = None if base is None else base + index
            report(error, AioDelivered(topic, partition if error is None else None, offset,
                                       key, value, headers))

    async def _send_one(self, topic: str, value: bytes | None, key: bytes | None,
                        headers: Headers, report: DeliveryReport | None) -> None:
        self._waiting -= 1
        batch = _Batch(topic, -1, None)
        batch.reports.append((report, key, value, headers))
        try:
            future = await self.native.send(topic, value, key, headers=headers)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._batch_done(batch, None, exc)
            return

        def acked(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                batch.partition = done.result().partition
            self._batch_acked(batch, done)

        future.add_done_callback(acked)

    async def flush(self, timeout: float) -> int:
        self._seal_all()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._delivered(), timeout)
        return self._unacked

    async def _delivered(self) -> None:
        while self._queue or self._waiting:
            await asyncio.sleep(0.005)
        await self.native.flush()
        while self._unacked:
            await asyncio.sleep(0.005)  # reports scheduled by the last batch

    async def close(self) -> None:
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        await self.native.stop()
