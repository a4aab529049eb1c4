"""Client of the master's distributed lock service.

One lock per key, held under a lease, so a crashed consumer can never block
the others; waiters for a key are served first come, first served. The wire
format is described in ``fogverse.lock_protocol``.

A lease alone does not make a lock safe: a holder that stalls (a long
synchronous stretch, a stopped process, a slow disk) can wake up after its
lease ran out and act as if it still held the key. So every grant carries a
*fencing token*, a number larger than any handed out before, and the holder
gets a ``LockToken`` it checks before each side effect::

    async with lock.hold("resize-topic") as token:
        ...
        token.check()          # raises LockLostError once the lease is gone
        write(data, fence=token.fence)

Renewal runs on a thread of its own (one per process, with its own event loop
and sockets), so a holder whose event loop is busy keeps its lock; a holder
that is not running at all (stopped, swapped out) renews nothing, and its
token turns invalid by the holder's own clock at the moment the service may
give the key to someone else.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

from fogverse.constants import DEFAULT_LOCK_PORT, ENV_CONTROL_KEY
from fogverse.lock_connection import LockConnection
from fogverse.lock_protocol import (
    MAX_FRAME,
    LockError,
    LockLostError,
    LockProtocolError,
    LockTimeoutError,
    LockUnavailableError,
    decode_body,
    encode_frame,
    read_frame,
    read_frame_bytes,
)

__all__ = [
    "MAX_FRAME",
    "DistributedLock",
    "LockError",
    "LockLostError",
    "LockProtocolError",
    "LockTimeoutError",
    "LockToken",
    "LockUnavailableError",
    "decode_body",
    "encode_frame",
    "read_frame",
    "read_frame_bytes",
]

_RENEWS_PER_LEASE = 3
"""Renew three times per lease so one slow renewal still keeps the lock."""

_log = logging.getLogger(__name__)
_T = TypeVar("_T")


class LockToken:
    """Proof of holding one key, valid until the lease is lost.

    ``fence`` is the grant's fencing token: strictly larger than the fence of
    any earlier grant of this key, so a resource that remembers the largest
    fence it has seen can refuse a stale holder's write. ``valid()`` is false
    once a renewal was refused or failed, or once the lease would have run out
    since the last renewal the service confirmed (counted from when that
    renewal was sent, so never later than the service's own deadline).
    """

    def __init__(self, key: str, fence: int, lease: float, deadline: float) -> None:
        self.key = key
        self.fence = fence
        self.lease = lease
        self._deadline = deadline
        self._lost: str | None = None
        self._released = False

    def valid(self) -> bool:
        return not self._released and self._lost is None and time.monotonic() < self._deadline

    def check(self) -> None:
        """Raise ``LockLostError`` unless the lock is still held; call before a side effect."""
        if self._lost is not None:
            raise LockLostError(f"lock {self.key!r} (fence {self.fence}) was lost: {self._lost}")
        if self._released:
            raise LockLostError(f"lock {self.key!r} (fence {self.fence}) was released")
        if time.monotonic() >= self._deadline:
            raise LockLostError(
                f"lease on lock {self.key!r} (fence {self.fence}) ran out before it was renewed"
            )

    def _confirm(self, deadline: float) -> None:
        self._deadline = max(self._deadline, deadline)

    def _lose(self, why: str) -> None:
        if self._lost is None:
            self._lost = why

    def __repr__(self) -> str:
        state = "valid" if self.valid() else "lost"
        return f"LockToken({self.key!r}, fence={self.fence}, {state})"


class _RenewalLoop:
    """One daemon thread per process running the event loop every lock session lives on."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        with self._guard:
            # After a fork the thread is gone but the loop object is not.
            if self._loop is None or self._pid != os.getpid():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._loop.run_forever, name="fogverse-lock-renewal", daemon=True
                ).start()
            loop = self._loop
        return asyncio.run_coroutine_threadsafe(coro, loop)


_renewals = _RenewalLoop()


def _check(reply: dict[str, Any], key: str) -> dict[str, Any]:
    if reply.get("ok") is True:
        return reply
    error, message = reply.get("error"), reply.get("message", "")
    if error == "timeout":
        raise LockTimeoutError(f"lock {key!r} was not granted in time")
    raise LockError(f"lock {key!r}: {error}: {message}", code=str(error))


class _Session:
    """One grant and its connection; every method runs on the renewal thread's loop."""

    def __init__(self, conn: LockConnection, secret: str, token: LockToken) -> None:
        self.conn = conn
        self.secret = secret
        self.token = token
        self._every = min(token.lease, conn.idle) / _RENEWS_PER_LEASE
        self._done = asyncio.Event()
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    async def open(
        cls, host: str, port: int, control_key: bytes | None, key: str, lease: float,
        wait: float | None,
    ) -> _Session:  # fmt: skip
        conn = await LockConnection.open(host, port, control_key)
        try:
            sent = time.monotonic()
            reply = _check(await conn.request("acquire", key=key, lease=lease, wait=wait), key)
            granted = float(reply["lease"])
            token = LockToken(key, int(reply["fence"]), granted, sent + granted)
            session = cls(conn, str(reply["token"]), token)
            if reply.get("queued"):
                # The lease began when the grant was made, not when we asked:
                # confirm it afresh rather than count from the request.
                await session.renew_once()
                token.check()
            session._renewer = asyncio.create_task(session._renew_forever())
            return session
        except BaseException:
            await conn.close()
            raise

    async def renew_once(self) -> bool:
        token = self.token
        sent = time.monotonic()
        try:
            reply = await self.conn.request(
                "renew", self._every, key=token.key, token=self.secret, fence=token.fence,
                lease=token.lease,
            )  # fmt: skip
            _check(reply, token.key)
        except (LockError, OSError, TimeoutError) as exc:
            _log.warning("lost lock %r: %s", token.key, exc or type(exc).__name__)
            token._lose(str(exc) or type(exc).__name__)
            # Whatever the service still thinks, closing makes it free the key.
            await self.conn.close()
            return False
        token._confirm(sent + float(reply.get("lease", token.lease)))
        return True

    async def _renew_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._done.wait(), self._every)
                return
            except TimeoutError:
                pass
            if not await self.renew_once():
                return

    async def release(self) -> None:
        # The renewer is told to stop rather than cancelled, so it never
        # abandons a renewal halfway and leaves the stream out of step.
        self._done.set()
        self.token._released = True
        try:
            if self._renewer is not None:
                await self._renewer
            if self.token._lost is None:
                await self._send_release()
        finally:
            await self.conn.close()

    async def _send_release(self) -> None:
        token = self.token
        try:
            reply = await self.conn.request(
                "release", self._every, key=token.key, token=self.secret, fence=token.fence
            )
            _check(reply, token.key)
        except LockError as exc:
            if exc.code in {"not_held", "stale"}:
                token._lose("the lease ran out after the last renewal")
            else:
                _log.warning("releasing lock %r failed: %s", token.key, exc)
        except (OSError, TimeoutError) as exc:
            # The service frees the lock when the connection closes anyway.
            _log.warning("releasing lock %r failed: %s", token.key, exc or type(exc).__name__)


def _release_when_granted(future: concurrent.futures.Future[_Session]) -> None:
    """A grant that raced the caller's timeout or cancellation is handed straight back."""
    if not future.cancelled() and future.exception() is None:
        _renewals.submit(future.result().release())


class DistributedLock:
    """Client for the master's ``DISTRIBUTED_LOCK_WORKER``.

    ``async with lock.hold("key") as token:`` runs the block while this client
    holds ``key``; each ``hold`` has its own connection, so holds are
    independent. ``control_key`` (default: ``$FOGVERSE_CONTROL_KEY``) answers
    the service's challenge when it demands one.
    """

    def __init__(
        self, host: str, port: int = DEFAULT_LOCK_PORT, *, control_key: bytes | str | None = None
    ) -> None:
        self.host = host
        self.port = port
        key = control_key if control_key is not None else os.environ.get(ENV_CONTROL_KEY) or None
        self._control_key = key.encode() if isinstance(key, str) else key

    @staticmethod
    def check(token: LockToken) -> None:
        """Raise ``LockLostError`` unless ``token``'s lock is still held."""
        token.check()

    @contextlib.asynccontextmanager
    async def hold(
        self, key: str, lease: float = 10.0, timeout: float | None = None
    ) -> AsyncIterator[LockToken]:
        """Hold ``key`` for the block, renewing its ``lease`` in the background.

        ``timeout`` bounds the wait for the grant (connecting included) and
        raises ``LockTimeoutError``. If the lease is lost while the block runs,
        the token turns invalid at once and ``LockLostError`` is raised when
        the block ends.
        """
        if not lease > 0:
            raise ValueError(f"lease must be positive, got {lease!r}")
        session = await self._acquire(key, lease, timeout)
        try:
            yield session.token
        finally:
            # Runs on the renewal loop, so it completes even if this task is cancelled now.
            await asyncio.shield(asyncio.wrap_future(_renewals.submit(session.release())))
        if session.token._lost is not None:
            raise LockLostError(f"lease on lock {key!r} ran out while it was held")

    async def _acquire(self, key: str, lease: float, timeout: float | None) -> _Session:
        future = _renewals.submit(
            _Session.open(self.host, self.port, self._control_key, key, lease, timeout)
        )
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.wrap_future(future)
        except TimeoutError as exc:
            future.cancel()
            future.add_done_callback(_release_when_granted)
            if isinstance(exc, LockTimeoutError):
                raise
            raise LockTimeoutError(f"lock {key!r} was not granted within {timeout}s") from None
        except asyncio.CancelledError:
            future.cancel()
            future.add_done_callback(_release_when_granted)
            raise
