"""What a stage does when a message fails: the error policy and dead letters.

``dead-letter`` (the default) sends the input, with why and where it failed, to
the dead-letter topic and goes on; ``skip`` counts it and goes on; ``stop``
stops the stage without committing it, so a restart meets it again. A delivery
the broker refused (after librdkafka's own retries) stops the stage the same
way, except for a dead letter: that is sent again without its value.
"""

from __future__ import annotations

import logging
import threading

from fogverse.clients.base import ClientError, DeliveredMessage, DeliveryReport, ProducerClient
from fogverse.config import StageConfig
from fogverse.context import Headers
from fogverse.deadletter import dead_letter_headers, describe_origin
from fogverse.errors import FogVerseError
from fogverse.offsets import CommitTracker, WorkUnit
from fogverse.runtime.flight import InFlight
from fogverse.stats import StageStats

__all__ = ["ErrorPolicy", "StageError"]

log = logging.getLogger("fogverse.stage")


class StageError(FogVerseError):
    """The stage stopped because of an error it could not handle by policy."""


class ErrorPolicy:
    """The error policy of a stage; :class:`~fogverse.runtime.Runnable` has it."""

    stats: StageStats
    producer: ProducerClient | None
    _tracker: CommitTracker
    _fatal: BaseException | None
    _stopping: threading.Event

    @property
    def config(self) -> StageConfig:
        raise NotImplementedError

    @property
    def name(self) -> str:
        return type(self).__name__

    def stop(self) -> None:
        """Ask the stage to stop: no new input; in-flight work finishes and commits."""
        self._stopping.set()

    def _produce_raw(
        self,
        flight: InFlight,
        topic: str,
        value: bytes | None,
        key: bytes | None,
        headers: Headers,
        on_delivery: DeliveryReport | None = None,
    ) -> None:
        raise NotImplementedError

    def _halt(self, error: BaseException) -> None:
        """Stop the stage because of ``error`` (the first such error is the one raised)."""
        if self._fatal is None:
            self._fatal = error
        self.stop()

    def _message_failed(self, flight: InFlight, exc: Exception) -> None:
        """Apply the error policy to a message whose step raised."""
        ctx, step = flight.ctx, flight.step
        self.stats.errors += 1
        policy = self.config.error_policy
        dead_letter = self.config.effective_dead_letter_topic
        log.warning("%s: %s failed for %s: %r (policy %s)", self.name, step,
                    describe_origin(ctx), exc, policy)
        if policy == "stop":
            _fail(flight.delivery.unit)
            self._halt(exc)
        elif policy == "dead-letter" and dead_letter is not None and self.producer is not None:
            headers = dead_letter_headers(ctx, exc, self.name, step)
            self._dead_letter(flight, dead_letter, headers)
        else:
            self.stats.skipped += 1

    def _dead_letter(self, flight: InFlight, topic: str, headers: Headers) -> None:
        """Produce the dead letter; if even that is refused, stop without committing.

        A value the producer refuses (too large, say) is dead-lettered without
        its bytes: the headers name its origin, where it can still be read.
        """
        ctx = flight.ctx
        for value in (ctx.value, None):
            report = _DeadLetterReport(self, flight, topic, headers, value is not None)
            try:
                self._produce_raw(flight, topic, value, ctx.key, headers, report)
                self.stats.dead_lettered += 1
                return
            except Exception as exc:  # the client refused it (too large, say)
                log.error("%s: dead letter for %s refused: %s", self.name,
                          describe_origin(ctx), exc)
                failure = exc
        _fail(flight.delivery.unit)
        self._halt(StageError(f"could not dead-letter {describe_origin(ctx)}: {failure}"))

    def _acked(self, unit: WorkUnit) -> None:
        self._tracker.settle(unit)

    def _delivery_failed(
        self, err: ClientError, msg: DeliveredMessage, unit: WorkUnit | None
    ) -> None:
        # librdkafka has already retried for message.timeout.ms; the input stays
        # uncommitted, so stopping here loses nothing.
        self.stats.errors += 1
        _fail(unit)
        log.error("%s: delivery to %s failed: %s", self.name, msg.topic(), err)
        self._halt(StageError(f"delivery to {msg.topic()} failed: {err}"))


class _DeadLetterReport:
    """A dead letter's delivery report: one the broker rejects goes again without its value.

    The broker can refuse what the producer accepted (over the topic's
    ``max.message.bytes``, say). Stopping the stage then would only meet the
    same message on restart, so the input is recorded the way a refusal at
    produce time is: its origin and error in the headers, no bytes.
    """

    __slots__ = ("flight", "headers", "stage", "topic", "with_value")

    def __init__(self, stage: ErrorPolicy, flight: InFlight, topic: str, headers: Headers,
                 with_value: bool) -> None:
        self.stage, self.flight, self.topic = stage, flight, topic
        self.headers, self.with_value = headers, with_value

    def __call__(self, err: ClientError | None, msg: DeliveredMessage) -> None:
        delivery = self.flight.delivery
        if err is None or not self.with_value or err.fatal():
            delivery(err, msg)
            return
        stage, ctx = self.stage, self.flight.ctx
        log.error("%s: the broker rejected the dead letter for %s (%s); sending it "
                  "without its value", stage.name, describe_origin(ctx), err)
        retry = _DeadLetterReport(stage, self.flight, self.topic, self.headers, False)
        try:
            # Counted on the unit before the rejected one is let go below, so
            # the unit cannot look finished in between.
            stage._produce_raw(self.flight, self.topic, None, ctx.key, self.headers, retry)
        except Exception as exc:  # the client refused the retry too
            delivery(err, msg)
            stage._halt(StageError(f"could not dead-letter {describe_origin(ctx)}: {exc}"))
            return
        unit = delivery.unit
        if unit is not None:
            unit.pending -= 1


def _fail(unit: WorkUnit | None) -> None:
    if unit is not None:
        unit.failed = True
