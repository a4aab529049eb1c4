"""ParallelProducer: a source whose process() runs in a pool of worker processes."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Any

from fogverse.context import MessageContext
from fogverse.parallel.stage import ParallelRunnable
from fogverse.runtime.producer import Producer

__all__ = ["ParallelProducer"]


class ParallelProducer(ParallelRunnable, Producer):
    """A source: receive() in the stage, the Processor's process() in the workers.

    Each received item is encoded with the stage's codec to cross to a worker
    (never pickled), processed there, and sent in receive order by default.
    """

    async def _main_loop(self) -> None:
        self._unit_delivery = self._no_unit
        is_async = inspect.iscoroutinefunction(self.receive)
        remaining = self.config.max_messages
        count = 0
        while not self._stopping.is_set():
            if not await self._wait_for_room():
                break
            async with self._guard():
                ctx = MessageContext(value=None, headers=[self._created_now()])
                self.message = ctx
                data = await self._receive(is_async)
                if data is not None:
                    self._admit_data(data, ctx)
            if data is None:
                await asyncio.sleep(0.005)
                continue
            count += 1
            await self._after_source_message(count, remaining)
        self._poll_deliveries()

    def _admit_data(self, data: Any, ctx: MessageContext) -> None:
        if self.stats.first_input_at is None:
            self.stats.first_input_at = time.monotonic()
        self.stats.consumed += 1
        try:
            payload, content_type = self.codec.encode(data)
        except Exception as exc:
            self._current_step = "encode"
            self._unit_delivery = self._no_unit
            self._message_failed(exc, ctx)
            return
        # The encoded input is what a dead letter of this message carries.
        ctx.value = payload
        self._admit(ctx, payload, content_type, self._no_unit, None)
