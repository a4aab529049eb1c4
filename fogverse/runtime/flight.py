"""One message in flight, and the delivery report of the work unit it belongs to.

Everything the runtime needs about a message between receive and send travels
in its :class:`InFlight`: the context users see as ``self.message``, the work
unit whose commit waits for its outputs, the content type ``encode`` chose and
the step it is in (for the error policy). Nothing per message lives on the
stage, so two messages can never swap headers or blame each other's step.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Protocol

from fogverse.clients.base import ClientError, DeliveredMessage, DeliveryReport
from fogverse.context import MessageContext
from fogverse.offsets import WorkUnit
from fogverse.stats import StageStats

__all__ = ["ChainedDelivery", "Delivery", "DeliveryOwner", "InFlight"]

log = logging.getLogger("fogverse.stage")


class DeliveryOwner(Protocol):
    """What a delivery report updates: the stage's counters and commit tracker."""

    stats: StageStats

    def _acked(self, unit: WorkUnit) -> None: ...

    def _delivery_failed(
        self, err: ClientError, msg: DeliveredMessage, unit: WorkUnit | None
    ) -> None: ...


class Delivery:
    """Delivery report for every output of one work unit.

    One object per unit, not per message, keeps the per-message cost at a
    counter decrement.
    """

    __slots__ = ("owner", "report", "stats", "unit")

    def __init__(self, owner: DeliveryOwner, unit: WorkUnit | None) -> None:
        self.owner = owner
        self.stats = owner.stats
        self.unit = unit
        # What librdkafka calls per output. A bound method is a cheaper call
        # from C than an instance's __call__, and it is made once per unit.
        self.report = self.__call__

    def __call__(self, err: ClientError | None, msg: DeliveredMessage) -> None:
        unit = self.unit
        if err is not None:
            self.owner._delivery_failed(err, msg, unit)
            return
        self.stats.acked += 1
        if unit is not None:
            unit.pending -= 1
            if unit.pending == 0 and unit.sealed:
                self.owner._acked(unit)


class ChainedDelivery:
    """A user's delivery callback (FogVerse's send(callback=...)) run before ours."""

    __slots__ = ("ours", "user")

    def __init__(self, user: DeliveryReport, ours: Delivery) -> None:
        self.user = user
        self.ours = ours

    def __call__(self, err: ClientError | None, msg: DeliveredMessage) -> None:
        try:
            self.user(err, msg)
        except Exception:
            # Raised from here it would surface from producer.poll() and take
            # the stage down outside its error policy.
            log.exception("send() callback raised for a message to %s", msg.topic())
        finally:
            self.ours(err, msg)


@dataclass(eq=False, slots=True)
class InFlight:
    """One message on its way receive -> decode -> process -> encode -> send."""

    ctx: MessageContext
    """What users see as ``self.message`` while this message is in a step."""
    delivery: Delivery
    """Counts this message's outputs against its work unit."""
    content_type: str = ""
    """Set by ``encode``: the content-type header of this message's output."""
    step: str = "receive"
    """The step running now; a failure is reported against it."""
    timings: dict[str, float] | None = None
    """Seconds per step, kept only when a profiling CSV wants a row per message."""
    gate: Awaitable[None] | None = None
    """With several in flight: done once the previous message of the partition was sent."""
