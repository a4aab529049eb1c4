"""The lock service's wire format, shared by the client and the Master's worker.

Each frame is a 4-byte big-endian length and then a msgpack map.

The service speaks first: ``hello`` with ``version``, ``auth`` (whether the
client must prove it knows the control key), ``nonce`` (random bytes) and
``idle`` (seconds the service waits for the next frame before it hangs up).
When ``auth`` is true the client's first request is ``auth`` with ``mac``,
HMAC-SHA256 of ``AUTH_CONTEXT + nonce`` under the control key; a wrong or
missing one is answered ``auth_failed`` and the connection is closed.

Requests carry ``op`` and ``id``; every response echoes the ``id`` with
``ok: True`` and its fields, or ``ok: False`` with ``error`` (a code) and
``message`` (for people). Operations:

- ``acquire`` ``key``, ``lease`` (seconds, optional), ``wait`` (seconds or nil):
  answered once the lock is granted or ``wait`` ran out (error ``timeout``).
  A grant carries ``token`` (a secret naming this grant), ``fence`` (an
  integer larger than every fence the service handed out before, for any
  key), ``lease`` and ``queued`` (whether the grant waited behind others,
  so its lease started later than the request was sent).
- ``renew`` ``key``, ``token``, ``fence`` (optional), ``lease`` (optional):
  restarts the lease; error ``not_held`` if the key is free or held by someone
  else, ``stale`` if the fence is not the current holder's.
- ``release`` ``key``, ``token``, ``fence`` (optional): same errors.
- ``ping``.

Closing the connection releases everything it held and cancels its waits.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import struct
from typing import Any, Final

import msgpack

from fogverse.errors import FogVerseError

__all__ = [
    "AUTH_CONTEXT",
    "MAX_FRAME",
    "PROTOCOL_VERSION",
    "LockError",
    "LockLostError",
    "LockProtocolError",
    "LockTimeoutError",
    "LockUnavailableError",
    "auth_mac",
    "decode_body",
    "encode_frame",
    "read_frame",
    "read_frame_bytes",
]

PROTOCOL_VERSION: Final = 2
MAX_FRAME: Final = 64 * 1024
"""Largest frame either side accepts; lock requests are tiny, so more means garbage."""
AUTH_CONTEXT: Final = b"fogverse-lock-auth-v2\x00"
"""Prefixed to the nonce so a MAC made for the lock service means nothing elsewhere."""

_HEADER = struct.Struct(">I")


class LockError(FogVerseError):
    """The lock service refused or failed a request; ``code`` is the service's error code."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class LockProtocolError(LockError):
    """The other side sent something that is not a valid lock-service frame."""


class LockUnavailableError(LockError, ConnectionError):
    """The lock service could not be reached."""


class LockTimeoutError(LockError, TimeoutError):
    """The lock was not granted within the caller's timeout."""


class LockLostError(LockError):
    """The lease ran out (or the service went away) while the lock was held.

    Raised by ``LockToken.check`` and when a ``hold`` block ends, since another
    client may have held the lock during part of it.
    """


def auth_mac(key: bytes, nonce: bytes) -> bytes:
    return hmac.new(key, AUTH_CONTEXT + nonce, hashlib.sha256).digest()


def encode_frame(message: dict[str, Any]) -> bytes:
    body: bytes = msgpack.packb(message, use_bin_type=True)
    if len(body) > MAX_FRAME:
        raise LockProtocolError(f"frame of {len(body)} bytes exceeds {MAX_FRAME}")
    return _HEADER.pack(len(body)) + body


async def read_frame_bytes(
    reader: asyncio.StreamReader,
    body_timeout: float | None = None,
    idle_timeout: float | None = None,
) -> bytes | None:
    """Read one frame's body; ``None`` on a clean end of stream between frames.

    Raises ``LockProtocolError`` for a bad length, a stream that ends inside a
    frame, or a body slower than ``body_timeout``: the stream is then out of step.
    Raises ``TimeoutError`` if no frame starts within ``idle_timeout``; nothing
    was read then, so the caller may wait again.
    """
    try:
        async with asyncio.timeout(idle_timeout):
            # readexactly takes nothing from the buffer until all four bytes are there.
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
