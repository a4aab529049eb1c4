"""The one path a message takes: decode -> process -> encode -> send.

Sources enter it at ``process`` with what ``receive`` made; consumers at
``decode`` with the bytes they read. FogVerse's ``_before_*`` / ``_after_*``
hooks run around each step when a subclass defines them; an ``_after_*`` hook
that returns something replaces the data.

A stage without hooks whose only async step, if any, is ``process`` (the
common cases) takes the same path with the general machinery switched off:
each step is a direct call and the default codec is called without the method
in between. When nothing is async nothing awaits, so a whole fetched batch
runs through without giving up the event loop.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import Any

from fogverse.clients.base import DeliveryReport, ProducerClient
from fogverse.codec import Codec, DefaultCodec
from fogverse.constants import H_CONTENT_TYPE, H_CREATED_AT
from fogverse.context import Headers, MessageContext, content_type_bytes, content_type_of
from fogverse.errors import ConfigError
from fogverse.frames import FrameCodec
from fogverse.runtime.flight import ChainedDelivery, InFlight
from fogverse.runtime.policy import ErrorPolicy, StageError
from fogverse.stats import STEPS

__all__ = ["HOOK_NAMES", "MessagePath"]

HOOK_NAMES: tuple[str, ...] = tuple(
    f"_{when}_{step}"
    for step in ("receive", "decode", "process", "encode", "send")
    for when in ("before", "after")
)


_CURRENT: ContextVar[InFlight | None] = ContextVar("fogverse_in_flight", default=None)
"""The message a task works on, when several are in flight on one loop (``concurrency``)."""


class MessagePath(ErrorPolicy):
    """The steps users override, and the path that runs them for one message."""

    codec: Codec = DefaultCodec()
    """How data becomes bytes and back; set per stage class or with ``codec=``."""

    producer: ProducerClient | None
    _message: MessageContext | None = None
    _flight: InFlight | None = None
    _concurrent = False
    """Several messages in flight on one loop: the current one is per task."""
    _hooks: dict[str, Callable[..., Any]]
    _plain = False
    """No hooks, nothing async but process, no custom send(), no profiling rows."""
    _codec_decode: Callable[[bytes, str | None], Any] | None = None
    _codec_encode: Callable[[Any], tuple[bytes, str]] | None = None
    _spent: list[float]
    _topic = ""
    """Seconds per step (STEPS order) not yet added to the stage's stats."""

    @property
    def message(self) -> MessageContext | None:
        """The message being handled (FogVerse's ``self.message``), its key and headers.

        With ``concurrency`` above 1 each message's task sees its own.
        """
        if self._concurrent:
            flight = _CURRENT.get()
            if flight is not None:
                return flight.ctx
        return self._message

    @message.setter
    def message(self, value: MessageContext | None) -> None:
        self._message = value

    def _current_flight(self) -> InFlight | None:
        if self._concurrent:
            flight = _CURRENT.get()
            if flight is not None:
                return flight
        return self._flight

    # -- the steps users override ---------------------------------------------------

    def decode(self, data: bytes) -> Any:
        """Bytes from Kafka to data, by the message's content type."""
        message = self.message
        return self.codec.decode(data, message.content_type if message else None)

    def process(self, data: Any) -> Any:
        """The stage's work. Return None to send nothing for this input."""
        return data

    def encode(self, data: Any) -> bytes:
        """Data to bytes with the stage's codec; the content type goes with the output."""
        payload, content_type = self.codec.encode(data)
        flight = self._current_flight()
        if flight is not None:
            flight.content_type = content_type
        return payload

    async def send(
        self,
        data: bytes,
        topic: str | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        callback: DeliveryReport | None = None,
    ) -> None:
        """Produce ``data`` for the current message (FogVerse's signature)."""
        flight = self._current_flight()
        if flight is None:
            raise StageError("send() called outside of a message")
        self._produce(flight, data, topic, key, headers, callback)

    # -- preparing the path ---------------------------------------------------------

    def _prepare_path(self) -> None:
        """Find the hooks and async steps a subclass has, so the path skips the rest."""
        self._select_frame_codec()
        self._hooks = {}
        for name in HOOK_NAMES:
            fn = getattr(self, name, None)
            if callable(fn):
                self._hooks[name] = fn
        self._async_process = inspect.iscoroutinefunction(self.process)
        self._async_decode = inspect.iscoroutinefunction(self.decode)
        self._async_encode = inspect.iscoroutinefunction(self.encode)
        # A subclass that overrides send() is a sink (or wraps our send).
        self._sends_itself = type(self).send is not MessagePath.send
        self._topic = self.config.producer_topic or ""
        self._forwards = bool(self._topic)
        # An async process alone keeps a stage plain: I/O-bound stages (many in
        # flight with ``concurrency``) are the ones whose per-message cost counts.
        self._plain = not (
            self._hooks or self._async_decode or self._async_encode
            or self._sends_itself or self.config.profiling_csv
        )
        cls = type(self)
        self._codec_decode = self.codec.decode if cls.decode is MessagePath.decode else None
        self._codec_encode = self.codec.encode if cls.encode is MessagePath.encode else None
        self._spent = [0.0] * len(STEPS)

    def _select_frame_codec(self) -> None:
        """FogVerse's ``encode_encoding = 'jpg'`` (and our ``encode_quality``) on a stage
        send NumPy frames compressed; other outputs keep the stage's codec."""
        encoding = getattr(self, "encode_encoding", None)
        if not encoding or isinstance(self.codec, FrameCodec):
            return
        self.codec = FrameCodec(encoding, getattr(self, "encode_quality", None),
                                fallback=self.codec)

    def _flush_spent(self) -> None:
        """Add the step times gathered since the last call to the stage's stats."""
        steps, spent = self.stats.step_seconds, self._spent
        for i, name in enumerate(STEPS):
            steps[name] += spent[i]
            spent[i] = 0.0

    # -- the path ---------------------------------------------------------------------

    async def _pass_each(self, items: Iterable[tuple[InFlight, Any]], decode: bool = True) -> None:
        """The one path: for each (message, data), [decode ->] process -> encode -> send.

        A step that raises puts its message under the error policy and the
        next one goes on; after a policy stopped the stage, none does. Takes
        a whole fetched batch at a time (the loop is the hot path: per message
        there is no call to set up, and an all-sync plain stage never awaits), or one.
        """
        plain, awaits = self._plain, self._async_process
        forwards, topic = self._forwards, self._topic
        codec_decode, codec_encode = self._codec_decode, self._codec_encode
        process, spent = self.process, self._spent
        clock = time.perf_counter
        histograms = self.stats.step_histograms
        observe = None if histograms is None else histograms.observe_steps
        for flight, data in items:
            self._flight = flight
            self._message = ctx = flight.ctx
            try:
                started = clock()
                if decode:
                    flight.step = "decode"
                    if not plain:
                        data = await self._step(flight, 0, self.decode, self._async_decode, data)
                    elif codec_decode is not None:
                        data = codec_decode(data, content_type_of(ctx.headers))
                    else:
                        data = self.decode(data)
                decoded = clock()
                flight.step = "process"
                if plain:
                    result = process(data)
                    if awaits:
                        result = await result
                else:
                    result = await self._step(flight, 1, process, self._async_process, data)
                processed = encoded = clock()
                if flight.gate is not None:
                    # Several in flight: outputs leave in input order per partition.
                    await flight.gate
                if result is not None:
                    flight.step = "encode"
                    if not plain:
                        payload = await self._step(flight, 2, self.encode, self._async_encode,
                                                   result)
                    elif codec_encode is not None:
                        payload, flight.content_type = codec_encode(result)
                    else:
                        payload = self.encode(result)
                    encoded = clock()
                    flight.step = "send"
                    if not plain:
                        await self._send_out(flight, payload)
                    elif forwards:
                        # FogVerse code may retarget self.producer_topic in process().
                        self._produce_raw(flight, getattr(self, "producer_topic", None) or topic,
                                          payload, ctx.key,
                                          _output_headers(ctx.headers, flight.content_type))
            except Exception as exc:
                self._message_failed(flight, exc)
                if self._fatal is not None:
                    break
                continue
            if plain:
                sent = clock()
                spent[0] += decoded - started
                spent[1] += processed - decoded
                spent[2] += encoded - processed
                spent[3] += sent - encoded
                if observe is not None:
                    observe(decoded - started, processed - decoded, encoded - processed,
                            sent - encoded)
                if not forwards:
                    self._finished(flight)
            else:
                self._finished(flight)

    async def _send_out(self, flight: InFlight, payload: bytes) -> None:
        """Hand the encoded output on: to the user's send() or to Kafka, with the hooks."""
        hooks = self._hooks
        flight.step = "send"
        if hooks:
            payload = await self._hook("_before_send", payload)
        started = time.perf_counter()
        if self._sends_itself:
            await self.send(payload)
        elif self._forwards:
            self._produce(flight, payload)
        self._spend(flight, 3, started)
        if hooks:
            await self._hook("_after_send", payload)

    async def _step(
        self, flight: InFlight, index: int, fn: Callable[[Any], Any], is_async: bool, data: Any
    ) -> Any:
        """One step with its hooks, for stages off the plain path."""
        name = STEPS[index]
        hooks = self._hooks
        if hooks:
            data = await self._hook(f"_before_{name}", data)
        started = time.perf_counter()
        result = fn(data)
        if is_async:
            result = await result
        self._spend(flight, index, started)
        if hooks:
            result = await self._hook(f"_after_{name}", result)
        return result

    def _spend(self, flight: InFlight, index: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        self._spent[index] += elapsed
        histograms = self.stats.step_histograms
        if histograms is not None:
            histograms.observe(index, elapsed)
        if flight.timings is not None:
            flight.timings[STEPS[index]] = elapsed

    async def _hook(self, name: str, data: Any) -> Any:
        fn = self._hooks.get(name)
        if fn is None:
            return data
        result = fn() if name == "_before_receive" else fn(data)
        if inspect.isawaitable(result):
            result = await result
        return data if result is None else result

    def _finished(self, flight: InFlight) -> None:
        """A message went all the way (sinks record latency; profiling writes its row)."""

    # -- producing ----------------------------------------------------------------------

    def _produce(
        self,
        flight: InFlight,
        data: bytes,
        topic: str | None = None,
        key: bytes | None = None,
        headers: Headers | None = None,
        callback: DeliveryReport | None = None,
    ) -> None:
        """Produce one output of ``flight``: its input's key and headers unless given."""
        ctx = flight.ctx
        # FogVerse code may retarget self.producer_topic per message (a topic per camera).
        topic = topic or getattr(self, "producer_topic", None) or self.config.producer_topic
        if topic is None:
            raise ConfigError("producer_topic (PRODUCER_TOPIC)", None, "nowhere to send output")
        if headers is None:
            headers = _output_headers(ctx.headers, flight.content_type)
        else:
            headers = _completed_headers(headers, ctx, flight.content_type)
        report = None if callback is None else ChainedDelivery(callback, flight.delivery)
        self._produce_raw(flight, topic, data, ctx.key if key is None else key, headers, report)

    def _produce_raw(
        self,
        flight: InFlight,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        on_delivery: DeliveryReport | None = None,
    ) -> None:
        """Produce for ``flight``'s work unit; its input commits after the ack.

        ``on_delivery`` replaces the unit's own report; it must pass the
        outcome on to ``flight.delivery`` itself.
        """
        delivery = flight.delivery
        if on_delivery is None:
            on_delivery = delivery.report
        producer = self.producer
        assert producer is not None, "producer not started"
        try:
            producer.produce(
                topic, value, key, headers=headers, on_delivery=on_delivery
            )
        except BufferError:
            self._produce_when_room(topic, value, key, headers, on_delivery)
        # Counted only once produce() accepted it: a refused message must not
        # leave the unit waiting for an ack that never comes.
        unit = delivery.unit
        if unit is not None:
            unit.pending += 1
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
                producer.produce(topic, value, key, headers=headers, on_delivery=on_delivery)
                return
            except BufferError:
                continue


def _output_headers(headers: Headers, content_type: str) -> Headers:
    """The input's headers with the output's content type."""
    wanted = content_type_bytes(content_type)
    if len(headers) == 1 and headers[0][0] == H_CONTENT_TYPE and headers[0][1] == wanted:
        # The common pass-through: only a content type, and it stays. The list
        # is handed to librdkafka, which copies it, so sharing it is safe.
        return headers
    out = [(k, v) for k, v in headers if k != H_CONTENT_TYPE]
    out.append((H_CONTENT_TYPE, wanted))
    return out


def _completed_headers(headers: Headers, ctx: MessageContext, content_type: str) -> Headers:
    """The user's headers, plus the content type and creation time they left out, so
    the receiving stage can still decode the output and measure its latency."""
    names = {k for k, _ in headers}
    extra: Headers = []
    if H_CONTENT_TYPE not in names:
        extra.append((H_CONTENT_TYPE, content_type_bytes(content_type)))
    created = ctx.header(H_CREATED_AT)
    if H_CREATED_AT not in names and created is not None:
        extra.append((H_CREATED_AT, created))
    return [*headers, *extra] if extra else list(headers)
