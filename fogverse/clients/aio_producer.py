"""A stage's producer on aiokafka, with the runtime's plain ``produce`` call.

aiokafka's ``send`` is a coroutine, while the runtime queues outputs with a
plain call from the middle of a batch (a plain stage never awaits there).
``produce`` appends to a local queue and one sender task feeds aiokafka in
that order, so per-partition order is the order of the calls. The queue is
bounded by :meth:`AioProducer.room`, which the runtime awaits between batches:
that is the stage's backpressure. Delivery reports are the runtime's
``(error, message)`` callbacks, called on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections import deque
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError, ProducerClosed, ProducerFenced
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from fogverse.clients.base import DeliveryReport
from fogverse.context import Headers

__all__ = ["AioDelivered", "AioError", "AioProducer"]

log = logging.getLogger("fogverse.kafka")

_QUEUE_LIMIT = 10_000
"""Outputs queued before ``room()`` makes the stage wait (librdkafka's default is 100k)."""

_Out = tuple[str, bytes | None, bytes | None, Headers | None, DeliveryReport | None]


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


class AioProducer:
    """Queues outputs with a plain call; one task sends them in order."""

    def __init__(self, native: AIOKafkaProducer, max_request_size: int,
                 limit: int = _QUEUE_LIMIT) -> None:
        self.native = native
        self._max_size = max_request_size
        self._limit = limit
        self._queue: deque[_Out] = deque()
        self._wake = asyncio.Event()
        self._roomy = asyncio.Event()
        self._roomy.set()
        self._unacked = 0
        self._sender = asyncio.get_running_loop().create_task(self._send_all())

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
            # Refused now, as librdkafka does, so the error policy sees it.
            # librdkafka's code name, so dead letters read alike on both backends.
            raise MessageSizeTooLargeError(
                f"MSG_SIZE_TOO_LARGE: a {len(value or b'')}-byte message to {topic} is "
                f"larger than max_request_size={self._max_size}")
        queue = self._queue
        queue.append((topic, value, key, headers, on_delivery))
        self._unacked += 1
        if not self._wake.is_set():
            self._wake.set()
        if len(queue) >= self._limit:
            self._roomy.clear()

    def poll(self, timeout: float = 0) -> int:
        # Reports run on the event loop by themselves.
        return 0

    async def room(self) -> None:
        if not self._roomy.is_set():
            await self._roomy.wait()

    async def _send_all(self) -> None:
        queue, send, wake = self._queue, self.native.send, self._wake
        half = self._limit // 2
        while True:
            if not queue:
                wake.clear()
                await wake.wait()
                continue
            topic, value, key, headers, report = queue.popleft()
            try:
                # Returns once the message is in aiokafka's batch; the future
                # resolves when the broker acknowledged it.
                future = await send(topic, value, key, headers=headers)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._reported(report, topic, value, key, headers, None, exc)
            else:
                future.add_done_callback(functools.partial(
                    self._acked, report, topic, value, key, headers))
            if len(queue) < half and not self._roomy.is_set():
                self._roomy.set()

    def _acked(self, report: DeliveryReport | None, topic: str, value: bytes | None,
               key: bytes | None, headers: Headers | None, future: asyncio.Future[Any]) -> None:
        if future.cancelled():
            self._reported(report, topic, value, key, headers, None,
                           asyncio.CancelledError("delivery cancelled"))
            return
        exc = future.exception()
        self._reported(report, topic, value, key, headers,
                       None if exc is not None else future.result(), exc)

    def _reported(self, report: DeliveryReport | None, topic: str, value: bytes | None,
                  key: bytes | None, headers: Headers | None, metadata: Any,
                  exc: BaseException | None) -> None:
        self._unacked -= 1
        if report is None:
            if exc is not None:
                log.error("delivery to %s failed: %r", topic, exc)
            return
        if exc is None:
            report(None, AioDelivered(topic, metadata.partition, metadata.offset, key, value,
                                      headers))
        else:
            report(AioError(exc), AioDelivered(topic, None, None, key, value, headers))

    async def flush(self, timeout: float) -> int:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._delivered(), timeout)
        return self._unacked

    async def _delivered(self) -> None:
        while self._queue:
            await asyncio.sleep(0.005)
        await self.native.flush()
        while self._unacked:
            await asyncio.sleep(0.005)  # reports scheduled by the last batch

    async def close(self) -> None:
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
        await self.native.stop()
