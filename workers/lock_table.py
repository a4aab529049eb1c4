"""The lock service's table: who holds each key, who waits for it, and the leases.

Every grant gets a fencing token from one counter that only goes up, so a
grant's fence is larger than that of any grant before it, of this key or any
other. The counter starts at the service's start time in microseconds since
the epoch: a restarted Master hands out larger fences than the one before it
did, unless it granted a million locks a second.

All state changes happen in plain (non-async) methods on the event loop, so no
two of them interleave and no lock is needed around the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "BadRequest",
    "Grant",
    "LockStatus",
    "LockTable",
    "Party",
    "RequestId",
    "Waiter",
    "fence_field",
    "number_field",
    "text_field",
    "valid_id",
]

_log = logging.getLogger(__name__)

RequestId = int | str | None
MAX_KEY_LENGTH = 1024


class BadRequest(Exception):
    """A request the table refuses; ``code`` goes back to the client."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- request fields: each raises BadRequest naming the field ----------------


def valid_id(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= 64
    return value is None or (isinstance(value, int) and not isinstance(value, bool))




def number_field(request: dict[str, Any], name: str, default: float | None) -> float | None:
    value = request.get(name, default)
    if value is None:
        return None
    # bool is an int subclass; True seconds is a bug on the client's side.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest("bad_request", f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise BadRequest("bad_request", f"{name} must be positive, got {value!r}")
    return float(value)




def text_field(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_LENGTH:
        raise BadRequest("bad_request", f"{name} must be a string of 1..{MAX_KEY_LENGTH} chars")
    return value




def fence_field(request: dict[str, Any]) -> int | None:
    value = request.get("fence")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("bad_request", f"fence must be an integer, got {value!r}")
    return value


class Party(Protocol):
    """A connection as the table sees it: what it holds, what it awaits, how to answer."""

    name: str
    held: dict[str, Grant]
    waiting: dict[str, Waiter]
    closed: bool

    def send(self, message: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class LockStatus:
    """One key's state: who holds it (peer address) and how many wait for it."""

    holder: str | None
    waiting: int
    fence: int | None = None


@dataclass(eq=False)
class Waiter:
    party: Party
    request_id: RequestId
    key: str
    lease: float
    deadline: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class Grant:
    party: Party
    token: str
    fence: int
    lease: float
    expiry: asyncio.TimerHandle


@dataclass
class _KeyState:
    holder: Grant | None = None
    queue: deque[Waiter] = field(default_factory=deque)


class LockTable:
    """Per-key leased locks with first-come-first-served queues and fencing tokens."""

    def __init__(self, first_fence: int | None = None) -> None:
        self._keys: dict[str, _KeyState] = {}
        self._last_fence = time.time_ns() // 1000 if first_fence is None else first_fence

    def locks(self) -> dict[str, LockStatus]:
        """Every key that is held or awaited right now."""
        return {
            key: LockStatus(
                holder=state.holder.party.name if state.holder is not None else None,
                waiting=len(state.queue),
                fence=state.holder.fence if state.holder is not None else None,
            )
            for key, state in self._keys.items()
        }

    def clear(self) -> None:
        for state in self._keys.values():
            if state.holder is not None:
                state.holder.expiry.cancel()
            for waiter in state.queue:
                if waiter.deadline is not None:
                    waiter.deadline.cancel()
        self._keys.clear()

    def acquire(self, waiter: Waiter, wait: float | None) -> None:
        """Queue ``waiter``; it is answered when granted or when ``wait`` runs out."""
        state = self._keys.setdefault(waiter.key, _KeyState())
        state.queue.append(waiter)
        waiter.party.waiting[waiter.key] = waiter
        if wait is not None:
            waiter.deadline = asyncio.get_running_loop().call_later(wait, self._time_out, waiter)
        self._advance(waiter.key, queued=False)

    def renew(self, party: Party, key: str, token: str, fence: int | None, lease: float) -> float:
        grant = self._own_grant(party, key, token, fence)
        grant.lease = lease
        grant.expiry.cancel()
        grant.expiry = self._expiry_timer(key, grant.fence, lease)
        return lease

    def release(self, party: Party, key: str, token: str, fence: int | None) -> None:
        self._own_grant(party, key, token, fence)
        self._release(key)

    def drop(self, party: Party) -> None:
        """A connection closed: withdraw its waits and free what it held."""
        for waiter in list(party.waiting.values()):
            self._withdraw(waiter)
        for key in list(party.held):
            self._release(key)

    def _own_grant(self, party: Party, key: str, token: str, fence: int | None) -> Grant:
        state = self._keys.get(key)
        grant = state.holder if state is not None else None
        if grant is None:
            raise BadRequest("not_held", f"{key!r} is not held by anyone (lease ran out?)")
        if fence is not None and fence != grant.fence:
            raise BadRequest(
                "stale", f"fence {fence} of {key!r} is stale; the lock is at fence {grant.fence}"
            )
        if grant.party is not party or not secrets.compare_digest(grant.token, token):
            raise BadRequest("not_held", f"{key!r} is not held with this token (lease ran out?)")
        return grant

    def _advance(self, key: str, queued: bool = True) -> None:
        """Grant ``key`` to the first waiter if it is free; forget idle keys."""
        state = self._keys.get(key)
        if state is None:
            return
        while state.holder is None and state.queue:
            waiter = state.queue.popleft()
            if waiter.party.closed:
                self._forget(waiter)  # its disconnect is still on the way
                continue
            self._grant(key, state, waiter, queued)
        if state.holder is None and not state.queue:
            del self._keys[key]

    def _grant(self, key: str, state: _KeyState, waiter: Waiter, queued: bool) -> None:
        party = waiter.party
        self._forget(waiter)
        self._last_fence += 1
        fence = self._last_fence
        token = secrets.token_hex(16)
        grant = Grant(party, token, fence, waiter.lease,
                      self._expiry_timer(key, fence, waiter.lease))  # fmt: skip
        state.holder = grant
        party.held[key] = grant
        party.send({"id": waiter.request_id, "ok": True, "token": token, "fence": fence,
                    "lease": grant.lease, "queued": queued})  # fmt: skip

    def _expiry_timer(self, key: str, fence: int, lease: float) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(lease, self._expire, key, fence)

    def _expire(self, key: str, fence: int) -> None:
        state = self._keys.get(key)
        grant = state.holder if state is not None else None
        if grant is not None and grant.fence == fence:
            _log.warning("lease on %r (fence %d) held by %s ran out; passing it on",
                         key, fence, grant.party.name)  # fmt: skip
            self._release(key)

    def _release(self, key: str) -> None:
        state = self._keys.get(key)
        if state is None or state.holder is None:
            return
        grant, state.holder = state.holder, None
        grant.expiry.cancel()
        grant.party.held.pop(key, None)
        self._advance(key)

    def _time_out(self, waiter: Waiter) -> None:
        self._withdraw(waiter)
        waiter.party.send(
            {"id": waiter.request_id, "ok": False, "error": "timeout",
             "message": f"{waiter.key!r} was not free in time"}
        )  # fmt: skip

    @staticmethod
    def _forget(waiter: Waiter) -> None:
        """Drop the waiter's own bookkeeping (not its place in the queue)."""
        if waiter.deadline is not None:
            waiter.deadline.cancel()
        waiter.party.waiting.pop(waiter.key, None)

    def _withdraw(self, waiter: Waiter) -> None:
        self._forget(waiter)
        state = self._keys.get(waiter.key)
        if state is not None:
            with contextlib.suppress(ValueError):
                state.queue.remove(waiter)
            self._advance(waiter.key)
