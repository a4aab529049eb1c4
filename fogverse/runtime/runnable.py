"""What every stage shares: settings, hooks, the producing side, and the lifecycle.

A message moves receive -> decode -> process -> encode -> send. FogVerse's
``_before_*`` / ``_after_*`` hooks run around each step when a subclass defines
them; an ``_after_*`` hook that returns something replaces the data.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message
from confluent_kafka import Producer as KafkaProducer

from fogverse.codec import Codec, DefaultCodec
from fogverse.config import ENV_NAMES, StageConfig, resolve_config
from fogverse.constants import H_CONTENT_TYPE, H_CREATED_AT
from fogverse.context import Headers, MessageContext, content_type_bytes
from fogverse.deadletter import dead_letter_headers, describe_origin
from fogverse.errors import ConfigError, FogVerseError
from fogverse.heartbeat import start_heartbeats
from fogverse.offsets import CommitTracker, WorkUnit
from fogverse.runtime import kafka_io
from fogverse.stats import STEPS, ProfilingCsv, StageStats

__all__ = ["HOOK_NAMES", "Runnable", "StageError"]

HOOK_NAMES: tuple[str, ...] = tuple(
    f"_{when}_{step}"
    for step in ("receive", "decode", "process", "encode", "send")
    for when in ("before", "after")
)

log = logging.getLogger("fogverse.stage")


class StageError(FogVerseError):
    """The stage stopped because of an error it could not handle by policy."""


class _Delivery:
    """Delivery report for every output of one work unit.

    One object per unit, not per message, keeps the per-message cost at a
    counter decrement.
    """

    __slots__ = ("stage", "unit")

    def __init__(self, stage: Runnable, unit: WorkUnit | None) -> None:
        self.stage = stage
        self.unit = unit

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        stage = self.stage
        if err is not None:
            stage._delivery_failed(err, msg, self.unit)
            return
        stage.stats.acked += 1
        unit = self.unit
        if unit is not None:
            unit.pending -= 1
            if unit.pending == 0 and unit.sealed:
                stage._tracker.settle(unit)


class _Chained:
    """A user's delivery callback (FogVerse's send(callback=...)) run before ours."""

    __slots__ = ("ours", "user")

    def __init__(self, user: Callable[[KafkaError | None, Message], None], ours: _Delivery) -> None:
        self.user = user
        self.ours = ours

    def __call__(self, err: KafkaError | None, msg: Message) -> None:
        try:
            self.user(err, msg)
        except Exception:
            # Raised from here it would surface from producer.poll() and take
            # the stage down outside its error policy.
            log.exception("send() callback raised for a message to %s", msg.topic())
        finally:
            self.ours(err, msg)


class Runnable:
    """The minimal stage. Subclass :class:`Producer` or :class:`Consumer` instead."""

    codec: Codec = DefaultCodec()

    def __init__(self, config: StageConfig | None = None, **settings: Any) -> None:
        self._base_config = config
        self._settings = settings
        self._config: StageConfig | None = None
        self.stats = StageStats()
        self.message: MessageContext | None = None
        self.producer: KafkaProducer | None = None
        self._tracker = CommitTracker()
        self._stopping = threading.Event()
        self._fatal: BaseException | None = None
        self._content_type = ""
        self._profile: ProfilingCsv | None = None
        self._hooks: dict[str, Callable[..., Any]] = {}
        self._timings: dict[str, float] = {}
        self._background: list[asyncio.Task[None]] = []

    # -- settings -------------------------------------------------------------

    @property
    def config(self) -> StageConfig:
        """The resolved settings (resolved on first use, validated then)."""
        if self._config is None:
            self._config = self._resolve_config()
            self._publish_settings(self._config)
        return self._config

    def _resolve_config(self) -> StageConfig:
        explicit: dict[str, Any] = {}
        # FogVerse style: attributes set on the instance or class before start.
        for name in ENV_NAMES:
            value = getattr(self, name, None)
            if value is not None and not callable(value):
                explicit[name] = value
        explicit.update(self._settings)
        config = resolve_config(explicit, base=self._base_config)
        self._check_roles(config)
        return config

    def _publish_settings(self, config: StageConfig) -> None:
        # FogVerse code reads self.producer_topic and friends; keep them true.
        for name in ENV_NAMES:
            setattr(self, name, getattr(config, name))

    def _check_roles(self, config: StageConfig) -> None:
        """Subclasses reject settings their role cannot run without."""

    @property
    def name(self) -> str:
        return type(self).__name__

    # -- the lifecycle ------------------------------------------------------------

    async def run(self) -> None:
        """Run until stopped (signal, :meth:`stop`, or a burst limit); then drain."""
        _ = self.config  # settings are validated before anything starts
        self._stopping.clear()
        self._prepare_hooks()
        self._install_signals()
        try:
            await self._start()
            await self._main_loop()
        finally:
            try:
                await self._close()
            finally:
                self._remove_signals()
        if self._fatal is not None:
            raise StageError(f"{self.name} stopped: {self._fatal}") from self._fatal

    def stop(self) -> None:
        """Ask the stage to stop: no new input; in-flight work finishes and commits."""
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    async def _start(self) -> None:
        config = self.config
        self._admin = await kafka_io.wait_for_broker(
            config.consumer_servers, dict(config.kafka_extra),
            config.connect_attempts, config.connect_backoff,
        )
        await kafka_io.ensure_topics(self._admin, self._topics_to_create())
        if self._needs_producer():
            await self.start_producer()
        if config.profiling_csv:
            self._profile = ProfilingCsv(config.profiling_csv)
        for start in self._background_starters:
            task = start(self)
            if task is not None:
                self._background.append(task)

    _background_starters: tuple[Callable[[Runnable], asyncio.Task[None] | None], ...] = (
        start_heartbeats,
    )
    """What runs beside the main loop; each task is cancelled when the stage closes."""

    def _topics_to_create(self) -> list[str]:
        config = self.config
        topics = [*config.consumer_topic]
        if config.producer_topic:
            topics.append(config.producer_topic)
        return topics

    def _needs_producer(self) -> bool:
        return self.config.producer_topic is not None

    async def start_producer(self) -> None:
        """Create the Kafka producer. Override to add work around it (FogVerse hook)."""
        if self.producer is None:
            self.producer = KafkaProducer(
                kafka_io.producer_conf(self.config, self._client_id())
            )

    def _client_id(self) -> str:
        return self.config.client_id or f"{self.name}-{id(self):x}"

    async def _main_loop(self) -> None:
        raise NotImplementedError

    async def _close(self) -> None:
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        await self.close_producer()
        if self._profile is not None:
            self._profile.close()
            self._profile = None

    async def close_producer(self) -> None:
        """Deliver everything still queued, then drop the producer."""
        if self.producer is None:
            return
        remaining = await asyncio.to_thread(self.producer.flush, self.config.shutdown_timeout)
        self.stats.last_output_at = time.monotonic()
        if remaining:
            log.error("%s: %d messages were not delivered before shutdown", self.name, remaining)
        self.producer = None

    def _install_signals(self) -> None:
        self._signals: list[signal.Signals] = []
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
            self._signals.append(sig)

    def _remove_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in self._signals:
            loop.remove_signal_handler(sig)

    # -- hooks ------------------------------------------------------------------------

    def _prepare_hooks(self) -> None:
        """Find the hooks a subclass defined, so the hot path skips the rest."""
        self._hooks = {}
        for name in HOOK_NAMES:
            fn = getattr(self, name, None)
            if callable(fn):
                self._hooks[name] = fn
        self._async_process = inspect.iscoroutinefunction(self.process)
        self._async_decode = inspect.iscoroutinefunction(self.decode)
        self._async_encode = inspect.iscoroutinefunction(self.encode)
        # A subclass that overrides send() is a sink (or wraps our send).
        self._sends_itself = type(self).send is not Runnable.send
        self._forwards = self.config.producer_topic is not None
        any_async_hook = any(inspect.iscoroutinefunction(h) for h in self._hooks.values())
        # The fast path: no hooks, nothing async, no profiling rows.
        self._fast = not (
            self._hooks or any_async_hook or self._async_process or self._async_decode
            or self._async_encode or self._sends_itself or self.config.profiling_csv
        )

    async def _hook(self, name: str, data: Any) -> Any:
        fn = self._hooks.get(name)
        if fn is None:
            return data
        result = fn() if name == "_before_receive" else fn(data)
        if inspect.isawaitable(result):
            result = await result
        return data if result is None else result

    # -- the steps users override ---------------------------------------------------

    def decode(self, data: bytes) -> Any:
        """Bytes from Kafka to data, by the message's content type."""
        message = self.message
        return self.codec.decode(data, message.content_type if message else None)

    def process(self, data: Any) -> Any:
        """The stage's work. Return None to send nothing for this input."""
        return data

    def encode(self, data: Any) -> bytes:
        payload, self._content_type = self.codec.encode(data)
        return payload

    async def send(
        self,
        data: bytes,
        topic: str | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        callback: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Produce ``data`` for the current message (FogVerse's signature)."""
        self._produce(data, topic, key, headers, callback)

    # -- producing ----------------------------------------------------------------------

    def _output_headers(self, ctx: MessageContext) -> Headers:
        """The input's headers with this output's content type."""
        headers = [(k, v) for k, v in ctx.headers if k != H_CONTENT_TYPE]
        headers.append((H_CONTENT_TYPE, content_type_bytes(self._content_type)))
        return headers

    def _produce(
        self,
        data: bytes,
        topic: str | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        callback: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        ctx = self.message
        if ctx is None:
            raise StageError("send() called outside of a message")
        topic = topic or self.config.producer_topic
        if topic is None:
            raise ConfigError("producer_topic (PRODUCER_TOPIC)", None, "nowhere to send output")
        self._produce_raw(
            topic, data, ctx.key if key is None else key,
            self._output_headers(ctx) if headers is None else headers, callback,
        )

    def _produce_raw(
        self,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        callback: Callable[[KafkaError | None, Message], None] | None = None,
    ) -> None:
        """Produce one output of the current work unit; its input commits after the ack."""
        delivery = self._unit_delivery
        on_delivery = delivery if callback is None else _Chained(callback, delivery)
        producer = self.producer
        assert producer is not None, "producer not started"
        try:
            producer.produce(
                topic, value, key, headers=headers, on_delivery=on_delivery  # type: ignore[arg-type]
            )
        except BufferError:
            self._produce_when_room(topic, value, key, headers, on_delivery)
        # Counted only once produce() accepted it: a refused message must not
        # leave the unit waiting for an ack that never comes.
        if delivery.unit is not None:
            delivery.unit.pending += 1
        self.stats.produced += 1

    def _produce_when_room(self, topic: str, value: bytes | None, key: bytes | None,
                           headers: Headers, on_delivery: Callable[..., None]) -> None:
        # The local queue is full: serve delivery reports until there is room.
        # This is the stage's backpressure.
        producer = self.producer
        assert producer is not None
        while True:
            producer.poll(0.05)
            try:
                producer.produce(
                    topic, value, key, headers=headers, on_delivery=on_delivery  # type: ignore[arg-type]
                )
                return
            except BufferError:
                continue

    _unit_delivery: _Delivery

    def _delivery_failed(self, err: KafkaError, msg: Message, unit: WorkUnit | None) -> None:
        # librdkafka has already retried for message.timeout.ms; the input stays
        # uncommitted, so stopping here loses nothing.
        self.stats.errors += 1
        if unit is not None:
            unit.failed = True
        if self._fatal is None:
            self._fatal = StageError(f"delivery to {msg.topic()} failed: {err}")
        log.error("%s: delivery to %s failed: %s", self.name, msg.topic(), err)
        self.stop()

    def _poll_deliveries(self) -> None:
        if self.producer is not None:
            self.producer.poll(0)

    # -- moving one message through the steps ------------------------------------------

    async def _step(self, name: str, fn: Callable[[Any], Any], data: Any, is_async: bool) -> Any:
        self._current_step = name
        hooks = self._hooks
        if hooks:
            data = await self._hook(f"_before_{name}", data)
        started = time.perf_counter()
        result = fn(data)
        if is_async:
            result = await result
        self._record_step(name, started)
        if hooks:
            result = await self._hook(f"_after_{name}", result)
        return result

    def _record_step(self, name: str, started: float) -> None:
        """Add the time since ``started`` to step ``name``: totals and this message's row."""
        elapsed = time.perf_counter() - started
        self.stats.step_seconds[name] += elapsed
        self._timings[name] = elapsed

    async def _emit(self, data: Any) -> None:
        """process -> encode -> send for the current message."""
        result = await self._step("process", self.process, data, self._async_process)
        if result is None:
            return
        self._content_type = ""
        payload = await self._step("encode", self.encode, result, self._async_encode)
        self._current_step = "send"
        await self._deliver(payload)

    async def _deliver(self, payload: bytes) -> None:
        """Hand the encoded output on: to the user's send() or to Kafka."""
        hooks = self._hooks
        if hooks:
            payload = await self._hook("_before_send", payload)
        started = time.perf_counter()
        if self._sends_itself:
            await self.send(payload)
        elif self._forwards:
            self._produce(payload)
        self._record_step("send", started)
        if hooks:
            await self._hook("_after_send", payload)

    def _message_failed(self, exc: Exception, ctx: MessageContext) -> None:
        """Apply the error policy to a message whose step raised."""
        step = self._current_step
        self.stats.errors += 1
        policy = self.config.error_policy
        dead_letter = self.config.effective_dead_letter_topic
        log.warning("%s: %s failed for %s: %r (policy %s)", self.name, step,
                    describe_origin(ctx), exc, policy)
        if policy == "stop":
            self._fail_unit()
            if self._fatal is None:
                self._fatal = exc
            self.stop()
        elif policy == "dead-letter" and dead_letter is not None and self.producer is not None:
            self._dead_letter(dead_letter, ctx, dead_letter_headers(ctx, exc, self.name, step))
        else:
            self.stats.skipped += 1

    def _dead_letter(self, topic: str, ctx: MessageContext, headers: Headers) -> None:
        """Produce the dead letter; if even that is refused, stop without committing.

        A value the producer refuses (too large, say) is dead-lettered without
        its bytes: the headers name its origin, where it can still be read.
        """
        for value in (ctx.value, None):
            try:
                self._produce_raw(topic, value, ctx.key, headers)
                self.stats.dead_lettered += 1
                return
            except KafkaException as exc:
                log.error("%s: dead letter for %s refused: %s", self.name,
                          describe_origin(ctx), exc)
                failure = exc
        self._fail_unit()
        if self._fatal is None:
            self._fatal = StageError(f"could not dead-letter {describe_origin(ctx)}: {failure}")
        self.stop()

    def _fail_unit(self) -> None:
        unit = self._unit_delivery.unit
        if unit is not None:
            unit.failed = True

    def _profile_row(self, ctx: MessageContext, e2e: float | None) -> None:
        """One FogVerse-style profiling row for the message just finished."""
        if self._profile is None:
            return
        t = self._timings
        self._profile.row((
            time.time(), ctx.topic, ctx.partition, ctx.offset,
            *(round(t.get(step, 0.0) * 1000, 4) for step in STEPS),
            None if e2e is None else round(e2e * 1000, 4),
        ))
        t.clear()

    @staticmethod
    def _created_now() -> tuple[str, bytes]:
        return (H_CREATED_AT, str(time.time_ns()).encode())

