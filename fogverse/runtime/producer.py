"""Producer: a source stage. The user's receive() makes the data."""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

from fogverse.config import StageConfig
from fogverse.context import MessageContext, StoredItem
from fogverse.errors import ConfigError, SourceExhaustedError
from fogverse.runtime.concurrent_source import receive_concurrently
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.runnable import Runnable
from fogverse.runtime.window import Window

__all__ = ["Producer"]

log = logging.getLogger("fogverse.stage")

_YIELD_EVERY = 64
"""Give the event loop (heartbeats, signals) a turn at least this often."""


class Producer(Runnable):
    """A source: receive() -> process() -> encode() -> send() to ``producer_topic``.

    ``receive`` may be sync or async; returning None means "nothing this time".
    Stop with :meth:`stop`, a signal, or ``max_messages``. With ``concurrency``
    above 1, that many async receives are in flight at once
    (:mod:`fogverse.runtime.concurrent_source`).
    """

    _window: Window | None = None

    def _check_roles(self, config: StageConfig) -> None:
        if config.producer_topic is None and not self._sends_itself_cls():
            raise ConfigError("producer_topic (PRODUCER_TOPIC)", None, "a Producer needs a topic")

    def _sends_itself_cls(self) -> bool:
        return type(self).send is not Runnable.send

    def receive(self) -> Any:
        """Return the next piece of data, or None when there is none yet."""
        raise NotImplementedError(f"{self.name} must define receive()")

    def _prepare_path(self) -> None:
        super()._prepare_path()
        config = self.config
        concurrent = config.concurrency > 1
        self._window = Window(config.concurrency, config.ordered) if concurrent else None
        self._concurrent = concurrent

    async def _main_loop(self) -> None:
        if self._window is not None:
            await receive_concurrently(self, self._window)
            return
        delivery = Delivery(self, None)
        is_async = inspect.iscoroutinefunction(self.receive)
        remaining = self.config.max_messages
        count = 0
        while not self._stopping.is_set():
            flight = self._in_flight(MessageContext(None, headers=[self._created_now()]), delivery)
            try:
                data = await self._receive(flight, is_async)
            except SourceExhaustedError as end:
                log.info("%s: source finished (%s), stopping", self.name, end)
                self.stop()
                break
            except Exception as exc:
                # A failing source is a bad message too: the policy decides.
                self._message_failed(flight, exc)
                await asyncio.sleep(0.005)
                continue
            if data is None:
                await asyncio.sleep(0.005)
                continue
            if isinstance(data, StoredItem):
                data = self._adopt(flight, data)
            else:
                # Created when the data arrived, not when the wait for it began.
                flight.ctx.headers[0] = self._created_now()
            self.stats.consumed += 1
            await self._pass_each(((flight, data),), decode=False)
            count += 1
            await self._after_source_message(count, remaining)
        self._flush_spent()
        self._poll_deliveries()

    def _adopt(self, flight: InFlight, item: StoredItem) -> Any:
        """Take on the context of the message a ConsumerStorage handed over, so the
        output carries that message's key and headers (its creation time included)."""
        origin = item.message
        if origin is not None:
            flight.ctx = MessageContext(
                origin.value, origin.key, list(origin.headers) or flight.ctx.headers,
                origin.topic, origin.partition, origin.offset, origin.timestamp,
            )
            self.message = flight.ctx
        return item.data

    async def _after_source_message(self, count: int, remaining: int | None) -> None:
        """Stop at the burst limit; give the loop and delivery reports a turn now and then."""
        if remaining is not None and count >= remaining:
            self.stop()
        if count % _YIELD_EVERY == 0:
            self._flush_spent()
            self._poll_deliveries()
            await asyncio.sleep(0)
            if self.producer is not None:
                await self.producer.room()

    async def _receive(self, flight: InFlight, is_async: bool) -> Any:
        """receive() for ``flight``, which is the current message meanwhile."""
        self._flight = flight
        self.message = flight.ctx
        flight.step = "receive"
        if self._hooks:
            await self._hook("_before_receive", None)
        data = self.receive()
        if is_async:
            data = await data
        if data is not None and self._hooks:
            data = await self._hook("_after_receive", data)
        return data
