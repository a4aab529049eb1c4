"""A small pool of worker processes that knows which messages died with a worker.

``concurrent.futures.ProcessPoolExecutor`` breaks as a whole when one worker
dies and cannot say which work died with it. Here each worker has its own
socket and answers jobs in the order it received them, so when a worker dies
the oldest job it had not answered is the one that was running: that job is
blamed (and given up after ``max_kills`` deaths), the others are re-sent
unblamed, and a new worker takes the dead one's place.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Generic, TypeVar

import msgpack

from fogverse.parallel.children import context, describe_exit, kill_all, start_process, wait_exit
from fogverse.parallel.errors import PoolBrokenError, ProcessorSetupError
from fogverse.parallel.jobs import Crashed, Outcome
from fogverse.parallel.wire import Frame, Kind, encode_frame
from fogverse.parallel.worker import worker_main
from fogverse.parallel.worker_link import (
    PoolStats,
    SentJob,
    WorkerLink,
    WorkerProtocol,
    outcome_of,
    queued_jobs,
)

__all__ = ["PoolStats", "ProcessPool"]

T = TypeVar("T")

log = logging.getLogger("fogverse.parallel")

EARLY_DEATHS_LIMIT = 3
"""Workers in a row that die before they are ready: then the pool gives up."""
QUEUED_WORK_S = 0.01
"""Work to keep queued at each worker: enough to cover the stage being scheduled
late on a busy machine. Quick jobs are sent many at a time (fewer writes and
wake-ups); jobs slower than this go two at a time, so a slow one holds few
others behind it."""
MAX_DEPTH = 256
_REAP_TIMEOUT_S = 2.0
_SENTINEL_GRACE_S = 1.0


class ProcessPool(Generic[T]):
    """``size`` worker processes running one pickled Processor.

    ``submit`` never blocks; the caller bounds how many tasks are outstanding
    (the stage's ``max_running_task``), so nothing here grows without bound.
    Each task ends in exactly one ``on_done(owner, outcome)`` call on the event
    loop, unless the pool is closed first.
    """

    def __init__(
        self,
        init_blob: bytes,
        size: int,
        on_done: Callable[[T, Outcome], None],
        on_fatal: Callable[[BaseException], None],
        *,
        max_kills: int = 2,
        prefetch: int = 2,
        start_method: str = "spawn",
        job_timeout: float | None = None,
        name: str = "fogverse",
    ) -> None:
        self._init_frame = encode_frame(Kind.INIT, data=init_blob)
        self._size = size
        self._on_done = on_done
        self._on_fatal = on_fatal
        self._max_kills = max_kills
        self._prefetch = prefetch
        self._ctx = context(start_method)
        self._name = name
        self._workers: list[WorkerLink[T]] = []
        self._pending: deque[SentJob[T]] = deque()
        self._ids = itertools.count(1)
        self._numbers = itertools.count(1)
        self._burials: set[asyncio.Task[None]] = set()
        self._dispatch_scheduled = False
        self._closing = False
        self._starting: asyncio.Future[None] | None = None
        self._early_deaths = 0
        self._job_seconds = 0.0
        self._job_timeout = job_timeout
        self._watchdog: asyncio.Task[None] | None = None
        self._processes: set[BaseProcess] = set()
        # Kill workers of a pool that was never closed, before the interpreter's
        # exit joins (and so waits for) its non-daemon children.
        self._finalizer = weakref.finalize(self, kill_all, self._processes)
        self.stats = PoolStats()
        self.broken = False

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each ran setup(); raise if one could not."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._starting = loop.create_future()
        try:
            for _ in range(self._size):
                await self._spawn()
            await self._starting
            if self._job_timeout is not None:
                self._watchdog = loop.create_task(self._watch(self._job_timeout))
        except BaseException:
            await self.close(_REAP_TIMEOUT_S)
            raise
        finally:
            self._starting = None

    async def close(self, timeout: float) -> int:
        """Stop every worker (teardown() runs); return how many tasks were left undone."""
        self._closing = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        # A replacement may be starting right now; let it finish so it is stopped too.
        await asyncio.gather(*self._burials, return_exceptions=True)
        workers = list(self._workers)
        for worker in workers:
            if worker.transport is not None and not worker.transport.is_closing():
                worker.transport.write(encode_frame(Kind.STOP))
        await asyncio.gather(*(self._stop(w, timeout) for w in workers))
        await asyncio.gather(*self._burials, return_exceptions=True)
        left = len(self._pending) + sum(len(w.in_flight) for w in workers)
        self._pending.clear()
        self._workers.clear()
        self._finalizer()
        return left

    @property
    def pids(self) -> list[int]:
        """Process ids of the current workers (replacements included)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    @property
    def ready_workers(self) -> int:
        return sum(1 for w in self._workers if w.ready and not w.lost)

    # -- work -------------------------------------------------------------------------

    def submit(self, owner: T, payload: bytes, content_type: str | None) -> None:
        """Queue one message's payload; ``on_done(owner, outcome)`` follows."""
        self._pending.append(SentJob(next(self._ids), owner, payload, content_type))
        self._schedule_dispatch()

    def _schedule_dispatch(self) -> None:
        # Coalesce: a batch of submits becomes one write per worker.
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            self._loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        pending = self._pending
        if not pending or self._closing:
            return
        depth = self._depth()
        # Refill a worker once half its queue is done, not after every answer:
        # several jobs per write, and as many fewer wake-ups for the worker.
        low = depth // 2
        ready = [w for w in self._workers
                 if w.ready and not w.lost and len(w.in_flight) <= low]
        if not ready:
            return
        frames: dict[WorkerLink[T], list[bytes]] = {}
        while pending:
            worker = min(ready, key=queued_jobs)
            if len(worker.in_flight) >= depth:
                break
            task = pending.popleft()
            if not worker.in_flight:
                worker.busy_since = time.monotonic()
            worker.in_flight.append(task)
            frame = encode_frame(Kind.JOB, task.id, task.content_type or "", task.payload)
            frames.setdefault(worker, []).append(frame)
            self.stats.jobs_sent += 1
            self.stats.job_bytes_sent += len(frame)
        for worker, parts in frames.items():
            assert worker.transport is not None
            worker.transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def _depth(self) -> int:
        """Jobs to keep sent ahead per worker, from how long jobs have been taking."""
        seconds = self._job_seconds
        if seconds <= 0:
            return self._prefetch
        return max(self._prefetch, min(MAX_DEPTH, math.ceil(QUEUED_WORK_S / seconds)))

    def _on_frame(self, worker: WorkerLink[T], frame: Frame) -> None:
        kind = frame.kind
        if kind in (Kind.RESULT, Kind.EMPTY, Kind.ERROR):
            # A moving average: follows a change of workload within some dozens of jobs.
            self._job_seconds += (frame.seconds - self._job_seconds) * 0.1
            task = worker.in_flight.popleft()
            # The next job, already sent, starts the moment this answer left.
            worker.busy_since = time.monotonic() if worker.in_flight else None
            if task.id != frame.job:
                log.error("worker %d answered job %d, expected %d",
                          worker.number, frame.job, task.id)
            self._finish(task, outcome_of(frame))
        elif kind == Kind.READY:
            self._worker_ready(worker)
        elif kind == Kind.SETUP_FAILED:
            worker.setup_failed = True
            self._fail(ProcessorSetupError(*msgpack.unpackb(frame.data)))

    def _finish(self, task: SentJob[T], outcome: Outcome) -> None:
        try:
            self._on_done(task.owner, outcome)
        except Exception as exc:  # a bug in the stage must not look like a dead worker
            log.exception("parallel stage failed to take a result")
            self._fail(exc)

    def _worker_ready(self, worker: WorkerLink[T]) -> None:
        worker.ready = True
        self._early_deaths = 0
        starting = self._starting
        if starting is not None and not starting.done() and self.ready_workers >= self._size:
            starting.set_result(None)
        self._schedule_dispatch()

    def _fail(self, exc: BaseException) -> None:
        starting = self._starting
        if starting is not None:
            if not starting.done():
                starting.set_exception(exc)
            return
        if not self.broken:
            self.broken = True
            self._on_fatal(exc)

    # -- worker processes -------------------------------------------------------------

    async def _spawn(self) -> None:
        parent_end, child_end = socket.socketpair()
        number = next(self._numbers)
        process = self._ctx.Process(target=worker_main, args=(child_end,),
                                    name=f"{self._name}-worker-{number}")
        try:
            start_process(process)
        finally:
            # Only the worker may hold its end, or its death would never read as EOF.
            child_end.close()
        self._processes.add(process)
        worker: WorkerLink[T] = WorkerLink(number, process)
        self._workers.append(worker)
        transport, _ = await self._loop.create_unix_connection(
            lambda: WorkerProtocol(self, worker), sock=parent_end
        )
        worker.transport = transport
        transport.write(self._init_frame)
        self.stats.init_bytes_sent += len(self._init_frame)
        self._loop.add_reader(process.sentinel, self._on_exit, worker)

    def _on_exit(self, worker: WorkerLink[T]) -> None:
        # EOF on the socket is the signal we act on, because it comes after every
        # answer the worker sent. The sentinel is a backstop for a socket some
        # forked process inherited and so keeps open.
        self._loop.remove_reader(worker.process.sentinel)
        self._loop.call_later(_SENTINEL_GRACE_S, self._abort, worker)

    def _abort(self, worker: WorkerLink[T]) -> None:
        if not worker.lost and worker.transport is not None:
            worker.transport.abort()

    def _on_lost(self, worker: WorkerLink[T]) -> None:
        if worker.lost:
            return
        worker.lost = True
        if worker in self._workers:
            self._workers.remove(worker)
        burial = self._loop.create_task(self._bury(worker))
        self._burials.add(burial)
        burial.add_done_callback(self._burials.discard)

    async def _bury(self, worker: WorkerLink[T]) -> None:
        reason = await self._reap(worker.process)
        reason = worker.killed_because or reason
        self._processes.discard(worker.process)
        if self._closing:
            return
        self.stats.deaths += 1
        log.warning("%s worker %d (pid %s) died: %s; %d message(s) in flight", self._name,
                    worker.number, worker.process.pid, reason, len(worker.in_flight))
        self._requeue(worker, reason)
        if worker.setup_failed:
            return
        if not worker.ready:
            self._early_deaths += 1
            if self._starting is not None or self._early_deaths >= EARLY_DEATHS_LIMIT:
                self._fail(PoolBrokenError(
                    f"a worker process died before it was ready ({reason}); check the "
                    "Processor's setup(), what its module imports, and that the main script "
                    "starts the stage under `if __name__ == '__main__':` (workers import it)"))
                return
        await self._spawn()
        self.stats.respawns += 1

    def _requeue(self, worker: WorkerLink[T], reason: str) -> None:
        tasks = list(worker.in_flight)
        worker.in_flight.clear()
        if not tasks:
            return
        # Jobs run one at a time in the order sent: the oldest unanswered one
        # was running when the worker died; the rest never started.
        suspect, back = tasks[0], tasks[1:]
        suspect.kills += 1
        if suspect.kills >= self._max_kills:
            self.stats.gave_up += 1
            self._finish(suspect, Crashed(reason, suspect.kills))
        else:
            self.stats.retried += 1
            back.insert(0, suspect)
        self._pending.extendleft(reversed(back))
        self._schedule_dispatch()

    async def _watch(self, limit: float) -> None:
        """Kill a worker stuck on one job for longer than ``limit`` seconds."""
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = time.monotonic()
            for worker in self._workers:
                started = worker.busy_since
                if started is not None and now - started > limit and not worker.lost:
                    worker.killed_because = f"ran longer than job_timeout={limit:g}s"
                    worker.process.kill()

    async def _reap(self, process: BaseProcess) -> str:
        if not await wait_exit(process, _REAP_TIMEOUT_S):
            process.kill()
            await wait_exit(process, _REAP_TIMEOUT_S)
        return describe_exit(process.exitcode)

    async def _stop(self, worker: WorkerLink[T], timeout: float) -> None:
        process = worker.process
        if not await wait_exit(process, timeout):
            # Workers ignore SIGTERM (see worker_main), so go straight to SIGKILL.
            log.warning("%s worker %d did not stop in %.0fs; killing it", self._name,
                        worker.number, timeout)
            process.kill()
            await wait_exit(process, _REAP_TIMEOUT_S)
        self._loop.remove_reader(process.sentinel)
        if worker.transport is not None:
            worker.transport.close()
        self._processes.discard(process)
