"""A source's ``receive`` up to N at a time, for sources that wait on I/O.

A source whose async ``receive`` awaits a remote queue, a sensor gateway or an
HTTP API is bound by that round trip when it receives one thing at a time.
With ``concurrency`` the stage keeps up to N receives in flight on its event
loop, each followed down the path by its own task. With ``ordered`` (the
default) outputs leave in the order their receives began; a receive that
fails follows the error policy and holds nothing else back. ``max_messages``
is never overshot: a receive starts only while those received plus those in
flight stay under it. A stop lets the receives in flight finish and sends
what they brought.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fogverse.context import MessageContext, StoredItem
from fogverse.errors import SourceExhaustedError
from fogverse.runtime.flight import Delivery
from fogverse.runtime.path import _CURRENT
from fogverse.runtime.window import Gate, Window

if TYPE_CHECKING:
    from fogverse.runtime.producer import Producer

__all__ = ["receive_concurrently"]

log = logging.getLogger("fogverse.stage")

_SOURCE = "source"
"""The order key: a source's outputs form one sequence."""

_NOTHING_PAUSE = 0.005
"""Seconds a receive slot rests after "nothing this time" or a failure, so an
empty or failing source is not called in a busy loop."""

_POLL_EVERY = 64
"""Serve delivery reports and flush step times after this many receives began."""


@dataclass
class _Receipts:
    """What the receives in flight share."""

    delivery: Delivery
    is_async: bool
    received: int = 0
    """Receives that brought data (what ``max_messages`` counts)."""


async def receive_concurrently(stage: Producer, window: Window) -> None:
    """Run ``stage``'s receives through ``window`` until it stops; then drain it."""
    remaining = stage.config.max_messages
    receipts = _Receipts(Delivery(stage, None), inspect.iscoroutinefunction(stage.receive))
    started = 0
    try:
        while not stage.stopping:
            admitted = window.in_flight + window.queued
            if remaining is not None and receipts.received + admitted >= remaining:
                if admitted == 0:
                    stage.stop()
                    break
                await window.one_done()
                continue
            await window.admit(_SOURCE, functools.partial(_receive_one, stage, receipts))
            started += 1
            if started % _POLL_EVERY == 0:
                stage._flush_spent()
                stage._poll_deliveries()
    finally:
        left = await window.drain(stage.config.shutdown_timeout)
        if left:
            log.warning("%s: %d receive(s) unfinished after %.0fs were cancelled", stage.name,
                        left, stage.config.shutdown_timeout)
        stage._flush_spent()
        stage._poll_deliveries()


async def _receive_one(stage: Producer, receipts: _Receipts, gate: Gate | None) -> None:
    """One receive and, if it brought data, that data's whole path, in its own task."""
    if stage.stopping:
        return  # admitted while the stop came: no new receive
    flight = stage._in_flight(MessageContext(None, headers=[stage._created_now()]),
                              receipts.delivery)
    _CURRENT.set(flight)  # this task's self.message
    flight.gate = gate
    try:
        data = await stage._receive(flight, receipts.is_async)
    except SourceExhaustedError as end:
        log.info("%s: source finished (%s), stopping", stage.name, end)
        stage.stop()
        return
    except Exception as exc:
        # A failing source is a bad message too: the policy decides.
        stage._message_failed(flight, exc)
        await asyncio.sleep(_NOTHING_PAUSE)
        return
    if data is None:
        await asyncio.sleep(_NOTHING_PAUSE)
        return
    if isinstance(data, StoredItem):
        data = stage._adopt(flight, data)
    else:
        # Created when the data arrived, not when the wait for it began.
        flight.ctx.headers[0] = stage._created_now()
    stage.stats.consumed += 1
    receipts.received += 1
    await stage._pass_each(((flight, data),), decode=False)
