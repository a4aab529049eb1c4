"""Consumer: reads a topic; forwards to ``producer_topic`` or is a sink."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator

from confluent_kafka import Consumer as KafkaConsumer
from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from fogverse.config import StageConfig
from fogverse.constants import H_CREATED_AT
from fogverse.consumer_start import ConsumerStart
from fogverse.context import MessageContext
from fogverse.errors import ConfigError
from fogverse.offsets import TopicPartitionKey, WorkUnit
from fogverse.runtime import kafka_io
from fogverse.runtime.fetch import Fetcher
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.latest import latest_start
from fogverse.runtime.runnable import Runnable
from fogverse.runtime.window import Window
from fogverse.runtime.windowed import admit_batch

__all__ = ["Consumer"]

log = logging.getLogger("fogverse.stage")


class Consumer(Runnable):
    """A stage that reads ``consumer_topic``.

    With ``producer_topic`` set it forwards each result there; override
    :meth:`send` to make it a sink. An input's offset is committed only after
    its output was acknowledged by the broker (or ``send`` returned).
    """

    consumer: KafkaConsumer | None = None
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

    def subscribe_options(self) -> dict[str, Callable[..., None]]:
        """What ``subscribe()`` must be given for the stage to track its partitions.

        The default :meth:`start_consumer` passes them; code that subscribes
        ``self.consumer`` itself passes them on, e.g. FogVerse's::

            await starter.start_with_distributed_lock(
                self.consumer, self.consumer_topic, self.group_id, str(uuid4()),
                **self.subscribe_options())

        Without them, offsets of partitions handed to another instance would
        still be committed from here.
        """
        return {"on_assign": self._on_assign, "on_revoke": self._on_revoke,
                "on_lost": self._on_lost}

    def create_consumer(self) -> KafkaConsumer:
        """The stage's Kafka consumer, created on first call (before :meth:`start_consumer`)."""
        if self.consumer is None:
            conf = kafka_io.consumer_conf(self.config, self._group_id(), self._client_id())
            conf.setdefault("on_commit", self._on_commit)
            self.consumer = KafkaConsumer(conf)
        return self.consumer

    async def start_consumer(self) -> None:
        """Subscribe ``self.consumer`` (FogVerse hook; override to wrap).

        With a ``consumer_start`` (FogVerse's :class:`~fogverse.ConsumerStart`),
        the stage joins its group through it, so it finds a partition of its own.
        """
        consumer = self.create_consumer()
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
        config = self.config
        fetcher = Fetcher(self.consumer, self._tracker, config.fetch_timeout, self._fetch_size,
                          self.name)
        try:
            await self._consume(fetcher)
        finally:
            await fetcher.close()

    async def _consume(self, fetcher: Fetcher) -> None:
        config = self.config
        remaining = config.max_messages
        last_input = last_commit = time.monotonic()
        while not self._stopping.is_set():
            batch, self._batch_born = await fetcher.next()
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

    def _fetch_size(self) -> int:
        """How many messages the next fetch may take (read on the fetch thread)."""
        config = self.config
        # With a window, a fetch takes at most one window's worth: a batch
        # waiting for room would hold back commits and polls meanwhile.
        return config.batch_size if self._window is None else min(
            config.batch_size, config.concurrency)

    def _within_limit(
        self, batch: list[Message], remaining: int | None
    ) -> tuple[list[Message], int | None]:
        """The part of ``batch`` that fits under ``max_messages``, and what is left after."""
        if self.stats.first_input_at is None:
            self.stats.first_input_at = time.monotonic()
        if remaining is None:
            return batch, None
        # Inputs past the limit stay uncommitted and are read again next run.
        batch = batch[:remaining]
        return batch, remaining - len(batch)

    async def _handle_batch(self, batch: list[Message], remaining: int | None) -> int | None:
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
        self, batch: list[Message], delivery: Delivery
    ) -> Iterator[tuple[InFlight, bytes | None]]:
        """Each message of ``batch`` in flight, its offset recorded in ``delivery``'s unit."""
        last = delivery.unit.last  # type: ignore[union-attr]
        # The plain record unless profiling or a subclass (CsvLogging) wants more.
        make = self._in_flight if (
            self._profile is not None or type(self)._in_flight is not Runnable._in_flight
        ) else None
        stats = self.stats
        for msg in batch:
            err = msg.error()
            if err is not None:
                self._consumer_error(err)
                if self._fatal is not None:
                    return
                continue
            ctx = MessageContext(
                msg.value(), msg.key(), msg.headers() or [],  # type: ignore[arg-type]
                msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1],
            )
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

    def _consumer_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._halt(KafkaException(err))
        log.warning("%s: consumer error: %s", self.name, err)

    # -- commits and rebalances ----------------------------------------------------

    def _commit(self, asynchronous: bool = True) -> None:
        ready = self._tracker.take_ready()
        if ready and self.consumer is not None:
            self._commit_positions(ready, asynchronous)

    def _commit_positions(self, ready: dict[TopicPartitionKey, int], asynchronous: bool) -> None:
        assert self.consumer is not None
        offsets = [TopicPartition(t, p, o) for (t, p), o in ready.items()]
        try:
            self.consumer.commit(offsets=offsets, asynchronous=asynchronous)  # type: ignore[call-overload]
            self.stats.commits += 1
        except KafkaException as exc:
            # Only the commit is lost: a later commit covers these positions, or
            # the new owner re-reads them (at-least-once).
            log.warning("%s: commit failed: %s", self.name, exc)

    def _on_commit(self, err: KafkaError | None, partitions: list[TopicPartition]) -> None:
        if err is not None:
            log.warning("%s: commit failed: %s", self.name, err)

    def _on_assign(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        log.info("%s: assigned %s", self.name, _names(partitions))
        self._tracker.assigned([(tp.topic, tp.partition) for tp in partitions])
        if not self.config.read_latest or not latest_start(consumer, partitions):
            return
        if self.config.group_protocol == "consumer" or _cooperative(self.config):
            consumer.incremental_assign(partitions)
        else:
            consumer.assign(partitions)

    def _on_revoke(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        log.info("%s: revoked %s", self.name, _names(partitions))
        ready = self._tracker.forget([(tp.topic, tp.partition) for tp in partitions])
        if ready:
            self._commit_positions(ready, asynchronous=False)

    def _on_lost(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        log.warning("%s: lost %s", self.name, _names(partitions))
        self._tracker.forget([(tp.topic, tp.partition) for tp in partitions])

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
        self._commit(asynchronous=False)
        await asyncio.to_thread(consumer.close)
        self.consumer = None


def _names(partitions: list[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in partitions) or "nothing"




def _cooperative(config: StageConfig) -> bool:
    strategy = {**config.kafka_extra, **config.consumer_extra}.get(
        "partition.assignment.strategy", "cooperative-sticky"
    )
    return "cooperative" in str(strategy)
