"""Sending a parallel stage's answers on: in ticket order, each as its own input's output.

Answers come back from the workers in any order; the reorder buffer releases
them in input order per partition (unless unordered), and each is produced
with its own input's key and headers. Its place is freed and its work unit
settled only then, so the input's offset commits after the output is
acknowledged and every earlier input of the partition is too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fogverse.context import MessageContext
from fogverse.parallel.errors import ProcessorError, WorkerCrashedError
from fogverse.parallel.jobs import Crashed, Done, Failed, Outcome
from fogverse.parallel.reorder import ReorderBuffer, Ticket
from fogverse.parallel.slots import Slots
from fogverse.runtime.flight import InFlight
from fogverse.runtime.runnable import Runnable
from fogverse.stats import STEPS

__all__ = ["Job", "ParallelEmission"]

log = logging.getLogger("fogverse.stage")


@dataclass(eq=False, slots=True)
class Job:
    """One admitted message: the message in flight and its place in line."""

    flight: InFlight
    ticket: Ticket[tuple[Job, Outcome]]


class ParallelEmission(Runnable):
    """The emitting half of :class:`~fogverse.parallel.stage.ParallelRunnable`."""

    _slots: Slots | None
    _reorder: ReorderBuffer[tuple[Job, Outcome]]
    _ready: deque[tuple[Job, Outcome]]
    _ready_event: asyncio.Event
    _emit_lock: asyncio.Lock | None

    def _pool_failed(self, exc: BaseException) -> None:
        log.error("%s: worker pool failed: %s", self.name, exc)
        if self._fatal is None:
            self._fatal = exc
        self.stop()

    def _job_done(self, job: Job, outcome: Outcome) -> None:
        released = self._reorder.complete(job.ticket, (job, outcome))
        if not released:
            return
        if self._emit_lock is None:
            # Nothing can suspend while sending: send on now, without waking a task.
            for ready_job, ready_outcome in released:
                self._emit_now(ready_job, ready_outcome)
        else:
            self._ready.extend(released)
            self._ready_event.set()

    def _emit_now(self, job: Job, outcome: Outcome) -> None:
        """Send one answer on as its own input's output (no hook, no custom send())."""
        saved = self._enter(job)
        flight = job.flight
        try:
            if self._fatal is not None:
                self._hold_back(flight)
            elif isinstance(outcome, Done):
                payload = self._take_done(flight, outcome)
                if payload is not None and self._forwards:
                    started = time.perf_counter()
                    self._produce(flight, payload)
                    self._spend(flight, 3, started)
                self._finished(flight)
            else:
                self._failed_in_worker(flight, outcome)
        except Exception as exc:
            self._send_failed(flight, exc)
        finally:
            self._leave(job, saved)

    async def _emit_job(self, job: Job, outcome: Outcome) -> None:
        """As :meth:`_emit_now`, through the send hooks and the user's send()."""
        saved = self._enter(job)
        flight = job.flight
        try:
            if self._fatal is not None:
                self._hold_back(flight)
            elif isinstance(outcome, Done):
                payload = self._take_done(flight, outcome)
                if payload is not None:
                    await self._send_out(flight, payload)
                self._finished(flight)
            else:
                self._failed_in_worker(flight, outcome)
        except Exception as exc:
            self._send_failed(flight, exc)
        finally:
            self._leave(job, saved)

    async def _emit_loop(self) -> None:
        """Emission when sending can suspend: one message at a time, in order."""
        ready = self._ready
        try:
            while True:
                await self._ready_event.wait()
                self._ready_event.clear()
                lock = self._emit_lock
                while ready:
                    job, outcome = ready.popleft()
                    if lock is None:
                        await self._emit_job(job, outcome)
                    else:
                        async with lock:
                            await self._emit_job(job, outcome)
                self._poll_deliveries()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            log.exception("%s: emitting results failed", self.name)
            self._pool_failed(exc)

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        """Held around a source's receive(): emission then cannot interleave with it.

        Only needed when sending can suspend (hooks, a custom send()) while the
        main loop also uses self.message (a Producer's receive()).
        """
        lock = self._emit_lock
        if lock is None:
            yield
            return
        async with lock:
            yield

    def _enter(self, job: Job) -> tuple[MessageContext | None, InFlight | None]:
        saved = self.message, self._flight
        self.message = job.flight.ctx
        self._flight = job.flight
        return saved

    def _leave(self, job: Job, saved: tuple[MessageContext | None, InFlight | None]) -> None:
        self._finish(job)
        # The main loop may be between receive() and admission: give its
        # message back, so no two messages ever share self.message.
        self.message, self._flight = saved

    def _hold_back(self, flight: InFlight) -> None:
        # The stage is stopping on an error: send nothing more, and never commit
        # this input, so a restart redoes it instead of losing it.
        unit = flight.delivery.unit
        if unit is not None:
            unit.failed = True

    def _take_done(self, flight: InFlight, outcome: Done) -> bytes | None:
        self.stats.step_seconds["process"] += outcome.seconds
        if self.stats.step_histograms is not None:
            self.stats.step_histograms.observe(STEPS.index("process"), outcome.seconds)
        # decode and encode ran in the worker too; their time is in here.
        if flight.timings is not None:
            flight.timings["process"] = outcome.seconds
        flight.content_type = outcome.content_type
        flight.step = "send"
        return outcome.payload

    def _failed_in_worker(self, flight: InFlight, outcome: Failed | Crashed) -> None:
        if isinstance(outcome, Failed):
            self.stats.step_seconds["process"] += outcome.seconds
            flight.step = outcome.step
            self._message_failed(flight, ProcessorError(outcome.step, outcome.error_type,
                                                        outcome.message, outcome.traceback))
        else:
            flight.step = "process"
            self._message_failed(flight, WorkerCrashedError(outcome.reason, outcome.kills))

    def _send_failed(self, flight: InFlight, exc: Exception) -> None:
        flight.step = "send"
        self._message_failed(flight, exc)

    def _finish(self, job: Job) -> None:
        unit = job.flight.delivery.unit
        if unit is not None:
            unit.sealed = True
            self._tracker.settle(unit)
        assert self._slots is not None
        self._slots.release()
