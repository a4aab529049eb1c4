"""One client connection to the lock service: greeting, challenge, request/response."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from typing import Any

from fogverse.constants import ENV_CONTROL_KEY
from fogverse.lock_protocol import (
    LockError,
    LockProtocolError,
    LockUnavailableError,
    auth_mac,
    encode_frame,
    read_frame,
)

__all__ = ["LockConnection"]

_AUTH_ID = 0
"""The auth request's id; requests count from 1, so its reply can never be confused."""


class LockConnection:
    """Sequential request/response over one TCP connection to the lock service."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, idle: float
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.idle = idle
        """Seconds the service waits for our next frame before it hangs up."""
        self._ids = itertools.count(1)
        self._auth_pending = False
        # The renewer and the body's release share the socket; one exchange at a time.
        self._turn = asyncio.Lock()

    @classmethod
    async def open(cls, host: str, port: int, control_key: bytes | None) -> LockConnection:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError as exc:
            raise LockUnavailableError(
                f"cannot reach the lock service at {host}:{port} ({exc}); is the master's"
                " DISTRIBUTED_LOCK_WORKER running?"
            ) from exc
        try:
            hello = await read_frame(reader)
            conn = cls(reader, writer, _idle(hello, host, port))
            if hello is not None and hello.get("auth") is True:
                conn._answer_challenge(hello, host, port, control_key)
        except BaseException:
            writer.close()
            raise
        return conn

    def _answer_challenge(
        self, hello: dict[str, Any], host: str, port: int, control_key: bytes | None
    ) -> None:
        nonce = hello.get("nonce")
        if not isinstance(nonce, bytes):
            raise LockProtocolError(f"the lock service's challenge has no nonce: {hello!r}")
        if control_key is None:
            raise LockError(
                f"the lock service at {host}:{port} demands the control key; set"
                f" {ENV_CONTROL_KEY} (or pass control_key=) to the Master's key",
                code="auth_required",
            )
        # Sent now, checked with the first reply: no round trip of its own.
        self._writer.write(encode_frame({"op": "auth", "id": _AUTH_ID,
                                         "mac": auth_mac(control_key, nonce)}))  # fmt: skip
        self._auth_pending = True

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
            if self._auth_pending:
                await self._read_auth_reply()
            reply = await self._read_reply()
        if reply.get("id") != request_id:
            raise LockProtocolError(f"reply {reply!r} does not answer request {request_id}")
        return reply

    async def _read_auth_reply(self) -> None:
        reply = await self._read_reply()
        if reply.get("id") != _AUTH_ID or reply.get("ok") is not True:
            raise LockError(
                f"the lock service refused our control key: {reply.get('message', reply)!r};"
                f" is {ENV_CONTROL_KEY} the Master's key?",
                code=str(reply.get("error", "auth_failed")),
            )
        self._auth_pending = False

    async def _read_reply(self) -> dict[str, Any]:
        reply = await read_frame(self._reader)
        if reply is None:
            raise LockError("the lock service closed the connection")
        return reply

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


def _idle(hello: dict[str, Any] | None, host: str, port: int) -> float:
    """The service's idle limit from its greeting; a refusal in its place is raised."""
    if hello is None:
        raise LockUnavailableError(f"the lock service at {host}:{port} hung up at once")
    if hello.get("op") != "hello":
        if hello.get("ok") is False:
            raise LockUnavailableError(
                f"the lock service at {host}:{port} refused the connection:"
                f" {hello.get('error')}: {hello.get('message', '')}"
            )
        raise LockProtocolError(f"expected the lock service's hello, got {hello!r}")
    idle = hello.get("idle")
    if isinstance(idle, bool) or not isinstance(idle, int | float) or not math.isfinite(idle):
        return math.inf
    return float(idle) if idle > 0 else math.inf
