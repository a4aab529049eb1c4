"""Client of the master's distributed lock service, and the wire format both share.

One lock per key, held under a lease: the holder renews it in the background
and loses it if it dies or stops renewing, so a crashed consumer can never
block the others. Waiters for a key are served first come, first served.

Wire format: each frame is a 4-byte big-endian length and then a msgpack map.
Requests carry ``op`` and ``id``; every response echoes the ``id`` with
``ok: True`` and its fields, or ``ok: False`` with ``error`` (a code) and
``message`` (for people). Operations:

- ``acquire`` ``key``, ``lease`` (seconds, optional), ``wait`` (seconds or nil):
  answered once the lock is granted (``token``, ``lease``) or ``wait`` ran out
  (error ``timeout``).
- ``renew`` ``key``, ``token``: restarts the lease (error ``not_held`` if it lapsed).
- ``release`` ``key``, ``token``.
- ``ping``.

Closing the connection releases everything it held and cancels its waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
from collections.abc import AsyncIterator
from typing import Any

import msgpack

from fogverse.constants import DEFAULT_LOCK_PORT
from fogverse.errors import FogVerseError

__all__ = [
    "MAX_FRAME",
    "DistributedLock",
    "LockError",
    "LockLostError",
    "LockProtocolError",
    "LockTimeoutError",
    "LockUnavailableError",
    "decode_body",
    "encode_frame",
    "read_frame",
    "read_frame_bytes",
]

MAX_FRAME = 64 * 1024
"""Largest frame either side accepts; lock requests are tiny, so more means garbage."""

_HEADER = struct.Struct(">I")
_RENEWS_PER_LEASE = 3
"""Renew three times per lease so two lost renewals in a row still keep the lock."""

_log = logging.getLogger(__name__)


class LockError(FogVerseError):
    """The lock service refused or failed a request; ``code`` is the service's error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LockUnavailableError(LockError, ConnectionError):
    """The lock service could not be reached."""


class LockTimeoutError(LockError, TimeoutError):
    """The lock was not granted within the caller's timeout."""


class LockLostError(LockError):
    """The lease ran out (or the service went away) while the lock was held.

    Raised when the ``hold`` block ends, since another client may have held the
    lock during part of it.
    """


class LockProtocolError(LockError):
    """The other side sent something that is not a valid lock-service frame."""


def encode_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME:
        raise LockProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


async def read_frame_bytes(
    reader: asyncio.StreamReader, body_timeout: float | None = None
) -> bytes | None:
    """Read one frame's body; ``None`` on a clean end of stream between frames.

    Raises ``LockProtocolError`` for a bad length, a stream that ends inside a
    frame, or a body slower than ``body_timeout``: the stream is then out of step.
    """
    try:
        header = await reader.readexactly(_HEADER.size)
    except asyncio.IncompleteReadError as exc:
        if exc.partial:
            raise LockProtocolError("stream ended inside a frame header") from None
        return None
    (length,) = _HEADER.unpack(header)
    if not 0 < length <= MAX_FRAME:
        raise LockProtocolError(f"frame length {length} is outside 1..{MAX_FRAME}")
    try:
        async with asyncio.timeout(body_timeout):
            return await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise LockProtocolError("stream ended inside a frame body") from None
    except TimeoutError:
        raise LockProtocolError("frame body did not arrive in time") from None


def decode_body(body: bytes) -> dict[str, Any]:
    """Turn a frame's body into its map, or raise ``LockProtocolError``."""
    try:
        message = msgpack.unpackb(body, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types on garbage
        raise LockProtocolError(f"frame body is not msgpack: {exc}") from None
    if not isinstance(message, dict):
        raise LockProtocolError(f"frame body is a {type(message).__name__}, expected a map")
    return message


async def read_frame(
    reader: asyncio.StreamReader, body_timeout: float | None = None
) -> dict[str, Any] | None:
    """Read and decode one frame; ``None`` on a clean end of stream."""
    body = await read_frame_bytes(reader, body_timeout)
    return None if body is None else decode_body(body)


class _Connection:
    """One TCP connection to the lock service: sequential request/response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._ids = itertools.count(1)
        # The renewer and the body's release share the socket; one exchange at a time.
        self._turn = asyncio.Lock()

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise LockUnavailableError(
                f"cannot reach the lock service at {host}:{port} ({exc}); is the master's"
                " DISTRIBUTED_LOCK_WORKER running?"
            ) from exc
        return cls(reader, writer)

    async def request(
        self, op: str, reply_timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send one request and read its reply.

        A reply later than ``reply_timeout`` raises ``TimeoutError`` and leaves
        the stream out of step: the caller must then close the connection.
        """
        async with self._turn, asyncio.timeout(reply_timeout):
            request_id = next(self._ids)
            self._writer.write(encode_frame({"op": op, "id": request_id, **fields}))
            await self._writer.drain()
            reply = await read_frame(self._reader)
        if reply is None:
            raise LockError("the lock service closed the connection")
        if reply.get("id") != request_id:
            raise LockProtocolError(f"reply {reply!r} does not answer request {request_id}")
        return reply

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _check(reply: dict[str, Any], key: str) -> dict[str, Any]:
    if reply.get("ok") is True:
        return reply
    error, message = reply.get("error"), reply.get("message", "")
    if error == "timeout":
        raise LockTimeoutError(f"lock {key!r} was not granted in time")
    raise LockError(f"lock {key!r}: {error}: {message}", code=str(error))


class DistributedLock:
    """Client for the master's ``DISTRIBUTED_LOCK_WORKER``.

    ``async with lock.hold("key"):`` runs the block while this client holds
    ``key``; each ``hold`` has its own connection, so holds are independent.
    """

    def __init__(self, host: str, port: int = DEFAULT_LOCK_PORT) -> None:
        self.host = host
        self.port = port

    @contextlib.asynccontextmanager
    async def hold(
        self, key: str, lease: float = 10.0, timeout: float | None = None
    ) -> AsyncIterator[None]:
        """Hold ``key`` for the block, renewing its ``lease`` in the background.

        ``timeout`` bounds the wait for the grant (connecting included) and
        raises ``LockTimeoutError``. If the lease is lost while the block runs,
        ``LockLostError`` is raised when it ends.
        """
        if not lease > 0:
            raise ValueError(f"lease must be positive, got {lease!r}")
        conn, token = await self._acquire(key, lease, timeout)
        lost, done = asyncio.Event(), asyncio.Event()
        renewer = asyncio.create_task(self._renew(conn, key, token, lease, lost, done))
        try:
            yield
        finally:
            # The renewer is told to stop rather than cancelled, so it never
            # abandons a renewal halfway and leaves the stream out of step.
            done.set()
            try:
                await renewer
                await self._release(conn, key, token, lease, lost)
            finally:
                renewer.cancel()
                await conn.close()
        if lost.is_set():
            raise LockLostError(f"lease on lock {key!r} ran out while it was held")

    async def _acquire(
        self, key: str, lease: float, timeout: float | None
    ) -> tuple[_Connection, str]:
        conn: _Connection | None = None
        try:
            async with asyncio.timeout(timeout):
                conn = await _Connection.open(self.host, self.port)
                reply = _check(
                    await conn.request("acquire", key=key, lease=lease, wait=timeout), key
                )
            return conn, str(reply["token"])
        except TimeoutError as exc:
            # Closing the connection withdraws the wait (or a grant that raced us).
            if conn is not None:
                await conn.close()
            if isinstance(exc, LockTimeoutError):
                raise
            raise LockTimeoutError(f"lock {key!r} was not granted within {timeout}s") from None
        except BaseException:
            if conn is not None:
                await conn.close()
            raise

    @staticmethod
    async def _renew(
        conn: _Connection,
        key: str,
        token: str,
        lease: float,
        lost: asyncio.Event,
        done: asyncio.Event,
    ) -> None:
        while True:
            try:
                await asyncio.wait_for(done.wait(), lease / _RENEWS_PER_LEASE)
                return
            except TimeoutError:
                pass
            try:
                reply = await conn.request("renew", lease, key=key, token=token, lease=lease)
                _check(reply, key)
            except (LockError, OSError, TimeoutError) as exc:
                _log.warning("lost lock %r: %s", key, exc or type(exc).__name__)
                lost.set()
                return

    @staticmethod
    async def _release(
        conn: _Connection, key: str, token: str, lease: float, lost: asyncio.Event
    ) -> None:
        if lost.is_set():
            return
        try:
            _check(await conn.request("release", lease, key=key, token=token), key)
        except LockError as exc:
            if exc.code == "not_held":
                lost.set()  # the lease ran out after the last renewal
            else:
                _log.warning("releasing lock %r failed: %s", key, exc)
        except (OSError, TimeoutError) as exc:
            # The server frees the lock when the connection closes anyway.
            _log.warning("releasing lock %r failed: %s", key, exc or type(exc).__name__)
