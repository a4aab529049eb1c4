"""Up to N messages in flight on one event loop, for stages that wait on I/O.

A stage whose async ``process`` awaits a model server, a database or an HTTP
API is bound by the round trip when it handles one message at a time; a
process pool is the wrong tool for waiting. The window runs up to ``limit``
messages at once. Each may decode and process while others do; before its
output is sent it waits for the message before it in the same partition to be
done (``ordered``), so outputs leave in input order per partition. A message
that fails follows the error policy and is done; the next goes on.

The work runs on ``limit`` long-lived workers fed from a short queue, not on a
task per message: a worker that finishes a message takes the next one at once,
so a slot never sits idle waiting for the admitting loop to get a turn, and no
task is created per message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["Window"]

log = logging.getLogger("fogverse.stage")

Gate = asyncio.Future[None]
"""Done once the message before this one (same partition) has been sent on."""

Work = Callable[[Gate | None], Awaitable[None]]
_Item = tuple[Work, Gate | None, Hashable, Gate]


class Window:
    """Admits work up to ``limit`` at a time; ``admit`` waits for room (backpressure).

    Besides the ``limit`` in flight, up to ``queued_limit`` admitted ones wait
    to start (half the limit by default), so a worker that finishes has its
    next message at hand.
    """

    def __init__(self, limit: int, ordered: bool = True, queued_limit: int | None = None) -> None:
        self.limit = limit
        self.ordered = ordered
        self.queued_limit = max(1, limit // 2) if queued_limit is None else queued_limit
        self._queue: deque[_Item] = deque()
        self._tails: dict[Hashable, Gate] = {}
        self._workers: set[asyncio.Task[None]] = set()
        self._idle: deque[asyncio.Future[None]] = deque()
        self._busy = 0
        self._room: asyncio.Future[None] | None = None
        """The admitter's wait for the queue to shorten."""
        self._progress: asyncio.Future[None] | None = None
        """Waits for any message to be done (``one_done``, ``drain``)."""

    @property
    def in_flight(self) -> int:
        """Messages being worked on now (not counting those queued to start)."""
        return self._busy

    @property
    def queued(self) -> int:
        """Messages admitted that wait for a worker."""
        return len(self._queue)

    async def admit(self, key: Hashable, work: Work) -> None:
        """Queue ``work(gate)`` once there is room; ``gate`` is its predecessor's, or None."""
        while len(self._queue) >= self.queued_limit:
            self._room = asyncio.get_running_loop().create_future()
            await self._room
        loop = asyncio.get_running_loop()
        done: Gate = loop.create_future()
        gate = None
        if self.ordered:
            gate = self._tails.get(key)
            self._tails[key] = done
        self._queue.append((work, gate, key, done))
        while self._idle:
            waiter = self._idle.popleft()
            if not waiter.done():  # a cancelled worker's is done already
                waiter.set_result(None)
                return
        if len(self._workers) < self.limit:
            task = loop.create_task(self._worker())
            self._workers.add(task)
            task.add_done_callback(self._workers.discard)

    async def _worker(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                waiter = asyncio.get_running_loop().create_future()
                self._idle.append(waiter)
                await waiter
                continue
            work, gate, key, done = queue.popleft()
            room = self._room
            if room is not None and not room.done():
                room.set_result(None)
            self._busy += 1
            try:
                await work(gate)
            except Exception:
                # The path handles a message's failures; this is a bug in it,
                # and it must cost one message, not a worker.
                log.exception("a message in flight failed outside the error policy")
            finally:
                self._busy -= 1
                self._finish(key, done)

    def _finish(self, key: Hashable, done: Gate) -> None:
        if not done.done():
            done.set_result(None)
        if self._tails.get(key) is done:
            del self._tails[key]
        progress = self._progress
        if progress is not None and not progress.done():
            progress.set_result(None)

    async def one_done(self) -> None:
        """Wait until something in flight is done (at once if nothing is)."""
        if self._busy or self._queue:
            await self._next_progress()

    async def drain(self, timeout: float) -> int:
        """Wait for everything in flight or queued; cancel what is left after ``timeout``.

        Returns how many were cancelled (their inputs stay uncommitted).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._busy or self._queue:
            left = deadline - loop.time()
            if left <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._next_progress()), left)
        unfinished = self._busy + len(self._queue)
        self._queue.clear()
        if self._room is not None and not self._room.done():
            self._room.set_result(None)
        self._idle.clear()
        workers = list(self._workers)
        for task in workers:
            task.cancel()
        for task in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return unfinished

    def _next_progress(self) -> asyncio.Future[None]:
        if self._progress is None or self._progress.done():
            self._progress = asyncio.get_running_loop().create_future()
        return self._progress
