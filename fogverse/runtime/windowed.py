"""A consumer's batch through a :class:`~fogverse.runtime.window.Window`.

Each input is its own work unit, opened in the commit tracker in consume
order, so commits only ever cover a contiguous prefix of finished inputs of a
partition, however the messages in flight finish.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from fogverse.context import MessageContext
from fogverse.offsets import WorkUnit
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.path import _CURRENT
from fogverse.runtime.window import Gate, Window

if TYPE_CHECKING:
    from fogverse.runtime.consumer import Consumer

__all__ = ["admit_batch"]


async def admit_batch(stage: Consumer, window: Window, batch: list[MessageContext]) -> None:
    """Admit each message of ``batch`` to ``window``, waiting for room (backpressure)."""
    consumed = 0
    try:
        for ctx in batch:
            if stage.stopping:
                break  # not admitted: stays uncommitted and is read again
            tp = (ctx.topic, ctx.partition)
            unit = WorkUnit(born=stage._batch_born)
            stage._tracker.open(unit, tp, ctx.offset)  # type: ignore[arg-type]
            flight = stage._in_flight(ctx, Delivery(stage, unit))
            consumed += 1
            await window.admit(tp, functools.partial(_alone, stage, flight))
            if stage._fatal is not None:
                break
    finally:
        stage.stats.consumed += consumed
        stage._flush_spent()


async def _alone(stage: Consumer, flight: InFlight, gate: Gate | None) -> None:
    """One message's whole path, in its own task."""
    _CURRENT.set(flight)  # this task's self.message
    flight.gate = gate
    try:
        await stage._pass_each(((flight, flight.ctx.value),))
    finally:
        unit = flight.delivery.unit
        assert unit is not None
        unit.sealed = True
        stage._tracker.settle(unit)
