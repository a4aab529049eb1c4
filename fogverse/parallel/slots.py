"""A bound on messages in flight, with the two waits a stage needs."""

from __future__ import annotations

import asyncio

__all__ = ["Slots"]


class Slots:
    """``limit`` places; the stage takes one per admitted message, frees it on emit.

    Unlike a semaphore, waiting for room does not take a place, so the fetch
    loop can wake on a timeout to commit and poll without losing a permit.
    Once full, a waiter is woken when a quarter of the places are free again,
    not at every single one: admissions then come in runs, not one wake-up each.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.in_use = 0
        self._resume_at = limit - max(1, limit // 4)
        self._room: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None

    @property
    def has_room(self) -> bool:
        return self.in_use < self.limit

    def take(self) -> None:
        self.in_use += 1

    def release(self) -> None:
        if self.in_use <= 0:
            raise RuntimeError("released more places than were taken")
        self.in_use -= 1
        if self.in_use <= self._resume_at:
            _wake(self._room)
        if self.in_use == 0:
            _wake(self._idle)

    async def wait_room(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for free places; True if there is one."""
        if not self.has_room:
            self._room = asyncio.get_running_loop().create_future()
            await _wait(self._room, timeout)
            self._room = None
        return self.has_room

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until nothing is in flight."""
        if self.in_use:
            self._idle = asyncio.get_running_loop().create_future()
            await _wait(self._idle, timeout)
            self._idle = None
        return self.in_use == 0


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


async def _wait(waiter: asyncio.Future[None], timeout: float) -> None:
    # A bare future and a timer: cheaper than wait_for(), which wraps a task
    # around every wait, and this wait happens once per run of admissions.
    timer = asyncio.get_running_loop().call_later(timeout, _wake, waiter)
    try:
        await waiter
    finally:
        timer.cancel()
