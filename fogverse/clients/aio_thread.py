"""A thread-safe, never-blocking producer on aiokafka, for heartbeats and reports.

Heartbeats are sent from a thread so that a ``process()`` holding the stage's
event loop for seconds does not look like a dead instance. aiokafka lives on
an event loop, so this producer runs one of its own in a daemon thread:
``produce`` hands the message over and returns, like librdkafka's.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from aiokafka import AIOKafkaProducer

__all__ = ["ThreadedProducer"]

log = logging.getLogger("fogverse.kafka")

_RETRY_START_S = 1.0


class ThreadedProducer:
    """``produce`` / ``poll`` / ``flush`` as confluent-kafka's Producer has them."""

    def __init__(self, options: dict[str, Any], limit: int, give_up_after: float) -> None:
        self._options = options
        self._limit = limit
        self._give_up_after = give_up_after
        self._queued = 0
        self._count_lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._queue: asyncio.Queue[tuple[str, bytes | None, bytes | None, Any]] | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fogverse-aiokafka-producer",
                                        daemon=True)
        self._thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._queue = asyncio.Queue()
        self._sender = self._loop.create_task(self._send_all())
        self._ready.set()
        self._loop.run_forever()

    def produce(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                *args: Any, **kwargs: Any) -> None:
        """Hand one message to the producer's thread; BufferError when too many wait."""
        with self._count_lock:
            if self._queued >= self._limit:
                raise BufferError("the producer's queue is full")
            self._queued += 1
        assert self._queue is not None
        self._loop.call_soon_threadsafe(
            self._queue.put_nowait, (topic, value, key, kwargs.get("headers")))

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 5.0) -> int:
        """Wait up to ``timeout`` for queued messages; returns how many are left."""
        if self._loop.is_closed():
            return self._queued
        done = asyncio.run_coroutine_threadsafe(self._drained(), self._loop)
        try:
            done.result(timeout)
        except TimeoutError:
            done.cancel()
        return self._queued

    def close(self) -> None:
        """Stop the producer and its thread (call :meth:`flush` first)."""
        if self._loop.is_closed():
            return
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()

    async def _drained(self) -> None:
        while self._queued:
            await asyncio.sleep(0.01)

    async def _stop(self) -> None:
        self._sender.cancel()
        producer = self._producer
        self._producer = None
        if producer is not None:
            await producer.stop()

    _producer: AIOKafkaProducer | None = None

    async def _started(self) -> AIOKafkaProducer | None:
        if self._producer is None:
            producer = AIOKafkaProducer(**self._options)
            try:
                await producer.start()
            except Exception as exc:
                log.warning("control producer cannot reach the broker: %r", exc)
                await producer.stop()
                await asyncio.sleep(_RETRY_START_S)
                return None
            self._producer = producer
        return self._producer

    async def _send_all(self) -> None:
        assert self._queue is not None
        while True:
            topic, value, key, headers = await self._queue.get()
            try:
                producer = await self._started()
                if producer is not None:
                    sent = await producer.send(topic, value, key, headers=headers)
                    # In order, and bounded: an old heartbeat is worth nothing.
                    await asyncio.wait_for(sent, self._give_up_after)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("a control message to %s was not delivered: %r", topic, exc)
            finally:
                with self._count_lock:
                    self._queued -= 1
