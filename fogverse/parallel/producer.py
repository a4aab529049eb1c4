"""ParallelProducer: a source whose process() runs in a pool of worker processes."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from fogverse.context import MessageContext
from fogverse.parallel.stage import ParallelRunnable
from fogverse.runtime.flight import InFlight
from fogverse.runtime.producer import Producer

__all__ = ["ParallelProducer"]


class ParallelProducer(ParallelRunnable, Producer):
    """A source: receive() in the stage, the Processor's process() in the workers.

    Each received item is encoded with the stage's codec to cross to a worker
    (never pickled), processed there, and sent in receive order by default.
    """

    async def _main_loop(self) -> None:
        is_async = inspect.iscoroutinefunction(self.receive)
        remaining = self.config.max_messages
        count = 0
        while not self._stopping.is_set():
            if not await self._wait_for_room():
                break
            async with self._guard():
                ctx = MessageContext(value=None, headers=[self._created_now()])
                flight = self._in_flight(ctx, self._no_unit)
                data = await self._receive(flight, is_async)
                if data is not None:
                    self._admit_data(data, flight)
            if data is None:
                await asyncio.sleep(0.005)
                continue
            count += 1
            await self._after_source_message(count, remaining)
        self._poll_deliveries()

    def _admit_data(self, data: Any, flight: InFlight) -> None:
        if self.stats.first_input_at is None:
            self.stats.first_input_at = time.monotonic()
        self.stats.consumed += 1
        try:
            payload, content_type = self.codec.encode(data)
        except Exception as exc:
            flight.step = "encode"
            self._message_failed(flight, exc)
            return
        # The encoded input is what a dead letter of this message carries.
        flight.ctx.value = payload
        self._admit(flight, payload, content_type, None)
