"""Up to N messages in flight on one event loop, for stages that wait on I/O.

A stage whose async ``process`` awaits a model server, a database or an HTTP
API is bound by the round trip when it handles one message at a time; a
process pool is the wrong tool for waiting. The window runs up to ``limit``
messages as tasks. Each may decode and process while others do; before its
output is sent it waits for the message before it in the same partition to be
done (``ordered``), so outputs leave in input order per partition. A message
that fails follows the error policy and is done; the next goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable

__all__ = ["Window"]

Gate = asyncio.Future[None]
"""Done once the message before this one (same partition) has been sent on."""


class Window:
    """Admits work up to ``limit`` at a time; ``admit`` waits for room (backpressure)."""

    def __init__(self, limit: int, ordered: bool = True) -> None:
        self.limit = limit
        self.ordered = ordered
        self._room = asyncio.Semaphore(limit)
        self._tasks: set[asyncio.Task[None]] = set()
        self._tails: dict[Hashable, Gate] = {}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def admit(self, key: Hashable, work: Callable[[Gate | None], Awaitable[None]]) -> None:
        """Start ``work(gate)`` once there is room; ``gate`` is its predecessor's, or None."""
        await self._room.acquire()
        gate = self._tails.get(key) if self.ordered else None
        done: Gate = asyncio.get_running_loop().create_future()
        if self.ordered:
            self._tails[key] = done
        task = asyncio.create_task(self._run(work(gate), key, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Awaitable[None], key: Hashable, done: Gate) -> None:
        try:
            await work
        finally:
            if not done.done():
                done.set_result(None)
            if self._tails.get(key) is done:
                del self._tails[key]
            self._room.release()

    async def one_done(self) -> None:
        """Wait until something in flight is done (at once if nothing is)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), return_when=asyncio.FIRST_COMPLETED)

    async def drain(self, timeout: float) -> int:
        """Wait for everything in flight; cancel what is left after ``timeout``.

        Returns how many were cancelled (their inputs stay uncommitted).
        """
        if not self._tasks:
            return 0
        _, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return len(pending)
