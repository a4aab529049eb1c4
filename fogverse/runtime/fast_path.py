"""A whole fetched batch through an all-sync stage, without coroutines or hooks.

This is the common case (sync ``process``, the stage's codec, forwarding to
Kafka) and at 1 KiB messages Python's per-call overhead is most of the cost, so
the steps are inlined here: the same decode -> process -> encode -> send, the
same error policy and the same per-message context as the general path in
:class:`~fogverse.runtime.consumer.Consumer`, with locals bound once per batch.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from confluent_kafka import Message

from fogverse.constants import H_CONTENT_TYPE
from fogverse.context import MessageContext, content_type_bytes, content_type_of
from fogverse.offsets import WorkUnit

if TYPE_CHECKING:
    from fogverse.runtime.consumer import Consumer

__all__ = ["run_batch"]

def run_batch(stage: Consumer, batch: list[Message], unit: WorkUnit) -> None:
    """Handle ``batch`` as :meth:`Consumer._handle` would, message by message."""
    from fogverse.runtime.runnable import Runnable

    steps = stage.stats.step_seconds
    codec = stage.codec
    codec_decode = codec.decode if type(stage).decode is Runnable.decode else None
    codec_encode = codec.encode if type(stage).encode is Runnable.encode else None
    user_decode, process, user_encode = stage.decode, stage.process, stage.encode
    producer = stage.producer if stage._forwards else None
    topic = stage.config.producer_topic
    delivery = stage._unit_delivery
    last = unit.last
    clock = time.perf_counter
    spent = [0.0, 0.0, 0.0, 0.0]
    consumed = produced = 0
    for msg in batch:
        err = msg.error()
        if err is not None:
            stage._consumer_error(err)
            continue
        headers: Any = msg.headers() or []
        ctx = MessageContext(msg.value(), msg.key(), headers, msg.topic(), msg.partition(),
                             msg.offset(), msg.timestamp()[1])
        stage.message = ctx
        last[(ctx.topic, ctx.partition)] = ctx.offset  # type: ignore[index,assignment]
        consumed += 1
        try:
            stage._current_step = "decode"
            t0 = clock()
            if codec_decode is not None:
                data = codec_decode(ctx.value, content_type_of(headers))  # type: ignore[arg-type]
            else:
                data = user_decode(ctx.value)  # type: ignore[arg-type]
            stage._current_step = "process"
            t1 = clock()
            result = process(data)
            t2 = clock()
            spent[0] += t1 - t0
            spent[1] += t2 - t1
            if result is None:
                if producer is None:
                    stage._record_latency(ctx)
                continue
            stage._current_step = "encode"
            if codec_encode is not None:
                payload, content_type = codec_encode(result)
            else:
                stage._content_type = ""
                payload = user_encode(result)
                content_type = stage._content_type
            t3 = clock()
            spent[2] += t3 - t2
            if producer is None:
                stage._record_latency(ctx)
                continue
            stage._current_step = "send"
            out = [h for h in ctx.headers if h[0] != H_CONTENT_TYPE]
            out.append((H_CONTENT_TYPE, content_type_bytes(content_type)))
            try:
                producer.produce(topic, payload, ctx.key, headers=out,  # type: ignore[arg-type]
                                 on_delivery=delivery)
            except BufferError:
                stage._produce_when_room(topic, payload, ctx.key, out, delivery)  # type: ignore[arg-type]
            # Counted only once produce() accepted it: a refused message must
            # not leave the unit waiting for an ack that never comes.
            unit.pending += 1
            produced += 1
            spent[3] += clock() - t3
        except Exception as exc:
            stage._message_failed(exc, ctx)
            if stage._fatal is not None:
                break
    stats = stage.stats
    stats.consumed += consumed
    stats.produced += produced
    for name, seconds in zip(("decode", "process", "encode", "send"), spent, strict=True):
        steps[name] += seconds
