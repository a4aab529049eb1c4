"""A bound on messages in flight, with the two waits a stage needs."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Slots"]


class Slots:
    """``limit`` places; the stage takes one per admitted message, frees it on emit.

    Unlike a semaphore, waiting for room does not take a place, so the fetch
    loop can wake on a timeout to commit and poll without losing a permit.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_use = 0
        self._room = asyncio.Event()
        self._room.set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def has_room(self) -> bool:
        return self.in_use < self.limit

    def take(self) -> None:
        self.in_use += 1
        self._idle.clear()
        if self.in_use >= self.limit:
            self._room.clear()

    def release(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("released more places than were taken")
        self.in_use -= 1
        self._room.set()
        if self.in_use == 0:
            self._idle.set()

    async def wait_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a free place; True if there is one."""
        return await _wait(self._room, timeout)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is in flight."""
        return await _wait(self._idle, timeout)


async def _wait(event: asyncio.Event, timeout: float) -> bool:
    if not event.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
    return event.is_set()
