"""What ParallelConsumer and ParallelProducer share: a worker pool between input and output.

A message is admitted (it takes one of ``max_running_task`` places and a
ticket in its partition's reorder queue), its payload goes to a worker, and the
answer comes back in any order. The emitter sends answers on in ticket order,
each with its own input's key and headers, then frees the place. Each input is
its own work unit, so its offset commits once its output is acknowledged and
every earlier input of the partition is too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Hashable
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from fogverse.config import StageConfig
from fogverse.errors import ConfigError
from fogverse.parallel.emission import Job, ParallelEmission
from fogverse.parallel.jobs import Outcome
from fogverse.parallel.pool import PoolStats, ProcessPool
from fogverse.parallel.processor import ProcessorLike, pack_for_workers
from fogverse.parallel.reorder import ReorderBuffer
from fogverse.parallel.settings import PARALLEL_FIELDS, ParallelSettings
from fogverse.parallel.slots import Slots
from fogverse.parallel.threads import ThreadPool
from fogverse.runtime.flight import Delivery, InFlight
from fogverse.runtime.path import MessagePath

__all__ = ["ParallelRunnable"]

log = logging.getLogger("fogverse.stage")

T_contra = TypeVar("T_contra", contravariant=True)

_WORKER_STEPS = ("decode", "process", "encode")


class _Pool(Protocol[T_contra]):
    broken: bool
    stats: PoolStats

    async def start(self) -> None: ...

    def submit(self, owner: T_contra, payload: bytes, content_type: str | None) -> None: ...

    async def close(self, timeout: float) -> int: ...

    @property
    def pids(self) -> list[int]: ...


class ParallelRunnable(ParallelEmission):
    """A stage whose decode -> process -> encode runs in a pool of workers.

    Subclass :class:`ParallelConsumer` or :class:`ParallelProducer`. The work is
    a :class:`~fogverse.parallel.Processor` given as ``processor=``, as a
    ``processor`` attribute, or to FogVerse's
    ``run(process_number, max_running_task, processor)``.
    """

    processor: ProcessorLike | None = None
    _own_setting_names = tuple(sorted(PARALLEL_FIELDS))
    # FogVerse-style attributes; None defers to ParallelSettings.
    process_number: int | None = None
    max_running_task: int | None = None
    ordered: bool | None = None
    executor: str | None = None
    max_worker_kills: int | None = None
    worker_prefetch: int | None = None
    start_method: str | None = None
    job_timeout: float | None = None
    stop_timeout: float | None = None

    def __init__(
        self,
        config: StageConfig | None = None,
        *,
        processor: ProcessorLike | None = None,
        parallel: ParallelSettings | None = None,
        **settings: Any,
    ) -> None:
        own = {name: settings.pop(name) for name in list(settings) if name in PARALLEL_FIELDS}
        super().__init__(config, **settings)
        self._parallel_base = parallel or ParallelSettings()
        for name, value in own.items():
            setattr(self, name, value)
        if processor is not None:
            self.processor = processor
        self._pool: _Pool[Job] | None = None
        self._slots: Slots | None = None
        self._reorder: ReorderBuffer[tuple[Job, Outcome]] = ReorderBuffer()
        self._ready: deque[tuple[Job, Outcome]] = deque()
        self._ready_event = asyncio.Event()
        self._emitter: asyncio.Task[None] | None = None
        self._emit_lock: asyncio.Lock | None = None
        self._processor_blob: bytes | None = None
        self._run_settings = self._parallel_base
        self._no_unit = Delivery(self, None)
        self.pool_stats: PoolStats | None = None
        """The worker pool's counters (bytes sent, deaths, retries); kept after stop."""

    # -- settings -------------------------------------------------------------------

    @property
    def parallel(self) -> ParallelSettings:
        """The worker settings in force: attributes over ``parallel=`` over defaults."""
        overrides = {name: getattr(self, name) for name in PARALLEL_FIELDS
                     if getattr(self, name, None) is not None}
        settings = replace(self._parallel_base, **overrides)
        settings.validate()
        return settings

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty for the thread executor)."""
        return self._pool.pids if self._pool is not None else []

    # -- lifecycle ----------------------------------------------------------------------

    async def run(
        self,
        process_number: int | None = None,
        max_running_task: int | None = None,
        processor: ProcessorLike | None = None,
    ) -> None:
        """Run until stopped, then drain, commit and stop the workers.

        FogVerse's call ``run(process_number, max_running_task, processor)`` works;
        so does a plain ``run()`` with the settings given earlier. A Processor
        that cannot be pickled fails here, before anything connects.
        """
        if process_number is not None:
            self.process_number = process_number
        if max_running_task is not None:
            self.max_running_task = max_running_task
        if processor is not None:
            self.processor = processor
        self._run_settings = self.parallel
        self._processor_blob = self._pack_processor(self._run_settings)
        await super().run()

    def _pack_processor(self, settings: ParallelSettings) -> bytes | None:
        processor = self.processor
        if processor is None or not callable(getattr(processor, "process", None)):
            raise ConfigError(
                "processor", processor,
                f"{self.name} needs a Processor with process(data): pass processor=..., "
                "set a processor attribute, or call run(process_number, max_running_task, "
                "processor)",
            )
        if settings.executor == "thread":
            return None
        return pack_for_workers(processor, self.codec)

    async def _start(self) -> None:
        await super()._start()
        settings = self._run_settings
        self._slots = Slots(settings.in_flight_limit)
        self._reorder = ReorderBuffer(settings.ordered)
        self._ready.clear()
        self._emit_lock = asyncio.Lock() if self._emission_may_suspend() else None
        self._pool = self._make_pool(settings)
        self.pool_stats = self._pool.stats
        await self._pool.start()
        self._emitter = asyncio.create_task(self._emit_loop(), name=f"{self.name}-emit")
        self._warn_ignored_steps()
        log.info("%s: %d %s worker(s) ready, at most %d message(s) in flight, %s",
                 self.name, settings.workers, settings.executor, settings.in_flight_limit,
                 "ordered per partition" if settings.ordered else "unordered")

    def _make_pool(self, settings: ParallelSettings) -> _Pool[Job]:
        if settings.executor == "thread":
            return ThreadPool(self.processor, self.codec, settings.workers, self._job_done,
                              name=self.name)
        assert self._processor_blob is not None
        return ProcessPool(
            self._processor_blob, settings.workers, self._job_done, self._pool_failed,
            max_kills=settings.max_worker_kills, prefetch=settings.worker_prefetch,
            start_method=settings.start_method, job_timeout=settings.job_timeout,
            name=self.name,
        )

    def _emission_may_suspend(self) -> bool:
        return bool(self._hooks) or self._sends_itself

    def _warn_ignored_steps(self) -> None:
        ignored = [f"{step}()" for step in _WORKER_STEPS
                   if getattr(type(self), step) is not getattr(MessagePath, step)]
        ignored += [name for name in self._hooks if name.rsplit("_", 1)[-1] in _WORKER_STEPS]
        if ignored:
            log.warning("%s: decode, process and encode run in the workers through the "
                        "Processor; the stage's own %s are not called", self.name,
                        ", ".join(ignored))

    async def _close(self) -> None:
        try:
            await self._drain()
        finally:
            await self._stop_pool()
            await super()._close()

    async def _drain(self) -> None:
        """Wait until every admitted message was sent on (or shutdown_timeout passed)."""
        slots = self._slots
        if slots is None:
            return
        deadline = time.monotonic() + self.config.shutdown_timeout
        while slots.in_use and self._can_finish():
            left = deadline - time.monotonic()
            if left <= 0:
                log.warning("%s: %d message(s) unfinished after %.0fs; they stay uncommitted "
                            "and will be read again", self.name, slots.in_use,
                            self.config.shutdown_timeout)
                return
            await slots.wait_idle(min(left, 0.1))
            self._poll_deliveries()

    def _can_finish(self) -> bool:
        pool, emitter = self._pool, self._emitter
        return (pool is not None and not pool.broken
                and emitter is not None and not emitter.done())

    async def _stop_pool(self) -> None:
        if self._emitter is not None:
            self._emitter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._emitter
            self._emitter = None
        pool, self._pool = self._pool, None
        if pool is not None:
            left = await pool.close(self._run_settings.stop_timeout)
            if left:
                log.warning("%s: %d message(s) were in the workers at shutdown; they stay "
                            "uncommitted and will be read again", self.name, left)

    # -- admission --------------------------------------------------------------------

    async def _wait_for_room(self) -> bool:
        """Backpressure: wait for a free place; False if the stage is stopping."""
        slots = self._slots
        assert slots is not None
        while not slots.has_room:
            if self._stopping.is_set():
                return False
            await slots.wait_room(self.config.fetch_timeout)
            self._while_full()
        return not self._stopping.is_set()

    def _while_full(self) -> None:
        """Upkeep while admission waits (delivery reports; commits for consumers)."""
        self._poll_deliveries()

    def _admit(self, flight: InFlight, payload: bytes, content_type: str | None,
               key: Hashable) -> None:
        slots, pool = self._slots, self._pool
        assert slots is not None and pool is not None
        slots.take()
        flight.step = "process"
        job = Job(flight, self._reorder.reserve(key))
        pool.submit(job, payload, content_type)
