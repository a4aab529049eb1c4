"""Consumer: reads a topic; forwards to ``producer_topic`` or is a sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from fogverse.clients.base import ClientError, ConsumerClient
from fogverse.config import StageConfig
from fogverse.constants import H_CREATED_AT
from fogverse.context import MessageContext
from fogverse.errors import ConfigError
from fogverse.offsets import TopicPartitionKey, WorkUnit
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.policy import StageError
from fogverse.runtime.runnable import Runnable
from fogverse.runtime.window import Window

if TYPE_CHECKING:
    from fogverse.consumer_start import ConsumerStart
from fogverse.runtime.windowed import admit_batch

__all__ = ["Consumer"]

log = logging.getLogger("fogverse.stage")


class Consumer(Runnable):
    """A stage that reads ``consumer_topic``.

    With ``producer_topic`` set it forwards each result there; override
    :meth:`send` to make it a sink. An input's offset is committed only after
    its output was acknowledged by the broker (or ``send`` returned).
    """

    consumer: ConsumerClient | None = None
    _window: Window | None = None
    consumer_start: ConsumerStart | None = None
    """FogVerse's dynamic partitions: when set, :meth:`start_consumer` joins through it."""
    _batch_born: int | None = None
    """The commit tracker's revocation count when the current batch was fetched."""

    def _check_roles(self, config: StageConfig) -> None:
        if not config.consumer_topic:
            raise ConfigError("consumer_topic (CONSUMER_TOPIC)", None, "a Consumer needs a topic")

    def _needs_producer(self) -> bool:
        return super()._needs_producer() or self.config.error_policy == "dead-letter"

    def _topics_to_create(self) -> list[str]:
        topics = super()._topics_to_create()
        dead_letter = self.config.effective_dead_letter_topic
        if self.config.error_policy == "dead-letter" and dead_letter:
            topics.append(dead_letter)
        return topics

    def _group_id(self) -> str:
        return self.config.group_id or self.name

    def subscribe_options(self) -> dict[str, Any]:
        """What ``subscribe()`` must be given for the stage to track its partitions.

        The default :meth:`start_consumer` passes them; code that subscribes
        ``self.consumer`` itself passes them on, e.g. FogVerse's::

            await starter.start_with_distributed_lock(
                self.consumer, self.consumer_topic, self.group_id, str(uuid4()),
                **self.subscribe_options())

        Without them, offsets of partitions handed to another instance would
        still be committed from here.
        """
        return {"listener": _Rebalance(self), "read_latest": self.config.read_latest}

    def create_consumer(self) -> ConsumerClient:
        """The stage's Kafka consumer, created on first call (before :meth:`start_consumer`)."""
        if self.consumer is None:
            self.consumer = self._kafka().consumer(
                self.config, self._group_id(), self._client_id(), self._tracker,
                self._fetch_size, self._consumer_error, self.name,
            )
        return self.consumer

    async def start_consumer(self) -> None:
        """Subscribe ``self.consumer`` (FogVerse hook; override to wrap).

        With a ``consumer_start`` (FogVerse's :class:`~fogverse.ConsumerStart`),
        the stage joins its group through it, so it finds a partition of its own.
        """
        consumer = self.create_consumer()
        await consumer.start()
        topics = list(self.config.consumer_topic)
        if self.consumer_start is not None:
            await self.consumer_start.start_with_distributed_lock(
                consumer, topics, self._group_id(), self._client_id(),
                **self.subscribe_options(),
            )
        else:
            consumer.subscribe(topics, **self.subscribe_options())

    async def _main_loop(self) -> None:
        self.create_consumer()
        await self.start_consumer()
        assert self.consumer is not None
        await self._consume(self.consumer)

    async def _consume(self, consumer: ConsumerClient) -> None:
        config = self.config
        remaining = config.max_messages
        last_input = last_commit = time.monotonic()
        while not self._stopping.is_set():
            batch, self._batch_born = await consumer.fetch()
            now = time.monotonic()
            if batch:
                last_input = now
                remaining = await self._handle_batch(batch, remaining)
            elif config.idle_timeout is not None and now - last_input >= config.idle_timeout:
                log.info("%s: idle for %.1fs, stopping", self.name, config.idle_timeout)
                self.stop()
            self._poll_deliveries()
            if now - last_commit >= config.commit_interval:
                self._commit()
                last_commit = now
            if batch:
                # A busy stage never waits in a fetch: let heartbeats and
                # signals in between batches.
                await asyncio.sleep(0)
                if self.producer is not None:
                    await self.producer.room()

    def _fetch_size(self) -> int:
        """How many messages the next fetch may take (read on the fetch thread)."""
        config = self.config
        # With a window, a fetch takes at most one window's worth: a batch
        # waiting for room would hold back commits and polls meanwhile.
        return config.batch_size if self._window is None else min(
            config.batch_size, config.concurrency)

    def _within_limit(
        self, batch: list[MessageContext], remaining: int | None
    ) -> tuple[list[MessageContext], int | None]:
        """The part of ``batch`` that fits under ``max_messages``, and what is left after."""
        if self.stats.first_input_at is None:
            self.stats.first_input_at = time.monotonic()
        if remaining is None:
            return batch, None
        # Inputs past the limit stay uncommitted and are read again next run.
        batch = batch[:remaining]
        return batch, remaining - len(batch)

    async def _handle_batch(
        self, batch: list[MessageContext], remaining: int | None
    ) -> int | None:
        batch, remaining = self._within_limit(batch, remaining)
        if self._window is not None:
            await admit_batch(self, self._window, batch)
            if remaining is not None and remaining <= 0:
                self.stop()
            return remaining
        unit = WorkUnit(born=self._batch_born)
        try:
            await self._pass_each(self._flights(batch, Delivery(self, unit)))
        finally:
            self._flush_spent()
        unit.sealed = True
        self._tracker.add(unit)
        self._tracker.settle(unit)
        if remaining is not None and remaining <= 0:
            self.stop()
        return remaining

    def _flights(
        self, batch: list[MessageContext], delivery: Delivery
    ) -> Iterator[tuple[InFlight, bytes | None]]:
        """Each message of ``batch`` in flight, its offset recorded in ``delivery``'s unit."""
        last = delivery.unit.last  # type: ignore[union-attr]
        # The plain record unless profiling or a subclass (CsvLogging) wants more.
        make = self._in_flight if (
            self._profile is not None or type(self)._in_flight is not Runnable._in_flight
        ) else None
        stats = self.stats
        for ctx in batch:
            last[(ctx.topic, ctx.partition)] = ctx.offset  # type: ignore[index,assignment]
            stats.consumed += 1
            yield (InFlight(ctx, delivery) if make is None else make(ctx, delivery)), ctx.value

    def _prepare_path(self) -> None:
        super()._prepare_path()
        config = self.config
        self._is_sink = config.producer_topic is None or self._sends_itself
        concurrent = config.concurrency > 1
        self._window = Window(config.concurrency, config.ordered) if concurrent else None
        self._concurrent = self._window is not None

    def _finished(self, flight: InFlight) -> None:
        e2e = self._record_latency(flight.ctx) if self._is_sink else None
        self._profile_row(flight, e2e)

    def _record_latency(self, ctx: MessageContext) -> float | None:
        """End-to-end seconds since the source created the message, if it says."""
        created = ctx.header(H_CREATED_AT)
        if created is None:
            return None
        with contextlib.suppress(ValueError):
            seconds = (time.time_ns() - int(created)) / 1e9
            self.stats.latency.add(seconds)
            return seconds
        return None

    async def consumer_lag(self) -> int | None:
        """Unread messages in the assigned partitions, from what the client already knows
        (its positions and the high watermarks of its last fetches: no request)."""
        consumer = self.consumer
        if consumer is None:
            return None
        return await consumer.lag()

    def _consumer_error(self, err: ClientError) -> None:
        if err.fatal():
            self._halt(StageError(f"{self.name}: the consumer failed: {err}"))
        log.warning("%s: consumer error: %s", self.name, err)

    # -- commits and rebalances ----------------------------------------------------

    def _commit(self) -> None:
        """Start committing what is finished (the broker's answer is not awaited)."""
        ready = self._tracker.take_ready()
        if ready and self.consumer is not None and self.consumer.commit_soon(ready):
            self.stats.commits += 1

    async def _commit_now(self) -> None:
        ready = self._tracker.take_ready()
        if ready and self.consumer is not None and await self.consumer.commit(ready):
            self.stats.commits += 1

    def _partitions_assigned(self, partitions: list[TopicPartitionKey]) -> None:
        log.info("%s: assigned %s", self.name, _names(partitions))
        self._tracker.assigned(partitions)

    def _partitions_revoked(
        self, partitions: list[TopicPartitionKey]
    ) -> dict[TopicPartitionKey, int]:
        log.info("%s: revoked %s", self.name, _names(partitions))
        # In-flight work of these partitions is forgotten: never committed
        # from here, read again by the new owner (at-least-once).
        return self._tracker.forget(partitions)

    def _partitions_lost(self, partitions: list[TopicPartitionKey]) -> None:
        log.warning("%s: lost %s", self.name, _names(partitions))
        self._tracker.forget(partitions)

    async def _close(self) -> None:
        try:
            if self._window is not None:
                left = await self._window.drain(self.config.shutdown_timeout)
                if left:
                    log.warning("%s: %d message(s) unfinished after %.0fs; they stay "
                                "uncommitted and will be read again", self.name, left,
                                self.config.shutdown_timeout)
            await super()._close()
        finally:
            # Whatever failed above, commit what is finished and leave the group.
            await self.close_consumer()

    async def close_consumer(self) -> None:
        """Commit what is finished, then leave the group."""
        consumer = self.consumer
        if consumer is None:
            return
        await self._commit_now()
        await consumer.close()
        self.consumer = None


class _Rebalance:
    """The stage's side of a rebalance, as the client backends call it."""

    __slots__ = ("stage",)

    def __init__(self, stage: Consumer) -> None:
        self.stage = stage

    def assigned(self, partitions: list[TopicPartitionKey]) -> None:
        self.stage._partitions_assigned(partitions)

    def revoked(self, partitions: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        return self.stage._partitions_revoked(partitions)

    def lost(self, partitions: list[TopicPartitionKey]) -> None:
        self.stage._partitions_lost(partitions)


def _names(partitions: list[TopicPartitionKey]) -> str:
    return ", ".join(f"{topic}[{partition}]" for topic, partition in partitions) or "nothing"
