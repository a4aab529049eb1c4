"""ParallelConsumer: a Consumer whose work runs in a pool of worker processes."""

from __future__ import annotations

import time

from fogverse.context import MessageContext
from fogverse.offsets import WorkUnit
from fogverse.parallel.stage import ParallelRunnable
from fogverse.runtime.consumer import Consumer
from fogverse.runtime.flight import Delivery

__all__ = ["ParallelConsumer"]


class ParallelConsumer(ParallelRunnable, Consumer):
    """Reads ``consumer_topic``; a Processor's process() runs in ``process_number`` workers.

    Per input partition, outputs leave in input order (``ordered=False``: as they
    finish), each with its own input's key and headers. An input's offset is
    committed once its output is acknowledged and so is every earlier input of
    its partition. At most ``max_running_task`` messages are in flight; when
    that is reached the stage stops fetching until one leaves.
    """

    _last_commit_at: float = 0.0

    def _fetch_size(self) -> int:
        # At most max_running_task per fetch: a 500-message batch waiting on slow
        # workers would keep the consumer from polling past max.poll.interval.ms
        # and get it evicted; one in-flight limit's worth waits at most about
        # limit x job time / workers.
        slots = self._slots
        limit = self.config.batch_size if slots is None else slots.limit
        return max(1, min(self.config.batch_size, limit))

    async def _handle_batch(
        self, batch: list[MessageContext], remaining: int | None
    ) -> int | None:
        batch, remaining = self._within_limit(batch, remaining)
        for ctx in batch:
            if not await self._wait_for_room():
                break  # stopping: what was not admitted stays uncommitted
            self._admit_message(ctx)
        if remaining is not None and remaining <= 0:
            self.stop()
        return remaining

    def _admit_message(self, ctx: MessageContext) -> None:
        tp = (ctx.topic, ctx.partition)
        unit = WorkUnit(born=self._batch_born)
        self._tracker.open(unit, tp, ctx.offset)  # type: ignore[arg-type]
        self.stats.consumed += 1
        flight = self._in_flight(ctx, Delivery(self, unit))
        self._admit(flight, ctx.value or b"", ctx.content_type, tp)

    def _while_full(self) -> None:
        # Admission can wait for long stretches of slow work; commits must not.
        super()._while_full()
        now = time.monotonic()
        if now - self._last_commit_at >= self.config.commit_interval:
            self._commit()
            self._last_commit_at = now
