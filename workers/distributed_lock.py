"""The master's ``DISTRIBUTED_LOCK_WORKER``: a lock service over TCP.

FogVerse's version had one lock for everything, no lease and a retry loop in
which an idle client could starve the rest. Here every key is its own lock,
every grant has a lease the holder must renew, a closed connection frees what
it held, and waiters queue per key in arrival order. The wire format lives in
``fogverse.lock`` next to the client.

All state changes happen in plain (non-async) methods on the event loop, so no
two of them interleave and no lock is needed around the tables.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from fogverse.constants import DEFAULT_LOCK_PORT
from fogverse.lock import LockProtocolError, decode_body, encode_frame, read_frame_bytes
from workers.base import BaseWorker

__all__ = ["DistributedLockWorker", "LockStatus"]

_log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 1024
BODY_TIMEOUT = 10.0
"""Seconds a client may take to finish a frame it started; stops half-frames pinning a task."""
MAX_PENDING_OUTPUT = 1 << 20
"""A client that lets this many reply bytes pile up is not reading; it is dropped."""


@dataclass(frozen=True)
class LockStatus:
    """One key's state: who holds it (peer address) and how many wait for it."""

    holder: str | None
    waiting: int


class _BadRequest(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(eq=False)
class _Client:
    """One connection and what it holds or waits for."""

    writer: asyncio.StreamWriter
    name: str
    held: dict[str, str] = field(default_factory=dict)  # key -> token
    waiting: dict[str, _Waiter] = field(default_factory=dict)
    closed: bool = False

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_PENDING_OUTPUT:
            _log.warning("dropping %s: it does not read its replies", self.name)
            self.closed = True
            transport.abort()
            return
        self.writer.write(encode_frame(message))


@dataclass(eq=False)
class _Waiter:
    client: _Client
    request_id: _RequestId
    key: str
    lease: float
    deadline: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class _Grant:
    client: _Client
    token: str
    lease: float
    expiry: asyncio.TimerHandle


@dataclass
class _KeyState:
    holder: _Grant | None = None
    queue: deque[_Waiter] = field(default_factory=deque)


_RequestId = int | str | None
_OPS = frozenset({"acquire", "renew", "release", "ping"})


def _valid_id(value: object) -> bool:
    if isinstance(value, str):
        return len(value) <= 64
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _number(request: dict[str, Any], name: str, default: float | None) -> float | None:
    value = request.get(name, default)
    if value is None:
        return None
    # bool is an int subclass; True seconds is a bug on the client's side.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _BadRequest("bad_request", f"{name} must be a finite number, got {value!r}")
    if value <= 0:
        raise _BadRequest("bad_request", f"{name} must be positive, got {value!r}")
    return float(value)


def _text(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= MAX_KEY_LENGTH:
        raise _BadRequest("bad_request", f"{name} must be a string of 1..{MAX_KEY_LENGTH} chars")
    return value


class DistributedLockWorker(BaseWorker):
    """Serves per-key leased locks to ``fogverse.lock.DistributedLock`` clients.

    ``port=0`` picks a free port; read it from ``port`` after ``start()``.
    ``max_lease`` caps what a client may ask for, so a typo cannot hold a key
    for a day.
    """

    name = "distributed_lock"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LOCK_PORT,
        default_lease: float = 10.0,
        *,
        max_lease: float = 600.0,
    ) -> None:
        if not 0 < default_lease <= max_lease:
            raise ValueError(f"need 0 < default_lease <= max_lease, got {default_lease}")
        self.host = host
        self._requested_port = port
        self.default_lease = default_lease
        self.max_lease = max_lease
        self._server: asyncio.Server | None = None
        self._keys: dict[str, _KeyState] = {}
        self._clients: set[_Client] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        """The bound port (the requested one until ``start()``)."""
        if self._server is None or not self._server.sockets:
            return self._requested_port
        return int(self._server.sockets[0].getsockname()[1])

    def locks(self) -> dict[str, LockStatus]:
        """Every key that is held or awaited right now."""
        return {
            key: LockStatus(
                holder=state.holder.client.name if state.holder is not None else None,
                waiting=len(state.queue),
            )
            for key, state in self._keys.items()
        }

    def status(self) -> dict[str, Any]:
        locks = {key: {"holder": s.holder, "waiting": s.waiting} for key, s in self.locks().items()}
        return {
            "address": f"{self.host}:{self.port}",
            "clients": len(self._clients),
            "locks": locks,
        }

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, self.host, self._requested_port)
            _log.info("lock service listening on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for client in list(self._clients):
            client.closed = True
            client.writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._keys.clear()

    async def run(self) -> None:
        """Serve until cancelled."""
        await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.stop()

    async def __aenter__(self) -> DistributedLockWorker:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- connections ---------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        client = _Client(writer, name=_peer_name(writer))
        self._clients.add(client)
        try:
            await self._read_requests(reader, client)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            # A bug must cost one connection, never the service.
            _log.exception("lock service dropped %s after an internal error", client.name)
        finally:
            self._disconnect(client)
            self._handlers.discard(task)

    async def _read_requests(self, reader: asyncio.StreamReader, client: _Client) -> None:
        while not client.closed:
            try:
                body = await read_frame_bytes(reader, body_timeout=BODY_TIMEOUT)
            except LockProtocolError as exc:
                # The stream is out of step: nothing after this point can be trusted.
                self._refuse(client, None, "bad_frame", str(exc))
                return
            if body is None:
                return
            try:
                request = decode_body(body)
            except LockProtocolError as exc:
                # Only this frame is bad; the length prefix keeps the stream in step.
                self._refuse(client, None, "bad_request", str(exc))
            else:
                self._dispatch(client, request)
            await client.writer.drain()

    @staticmethod
    def _refuse(client: _Client, request_id: _RequestId, code: str, message: str) -> None:
        client.send({"id": request_id, "ok": False, "error": code, "message": message})

    def _disconnect(self, client: _Client) -> None:
        client.closed = True
        for key in list(client.waiting):
            self._withdraw(client.waiting[key])
        for key in list(client.held):
            self._release(key)
        self._clients.discard(client)
        client.writer.transport.abort()

    # -- requests ------------------------------------------------------------

    def _dispatch(self, client: _Client, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        if not _valid_id(request_id):
            self._refuse(
                client, None, "bad_request", "id must be nil, an integer or a short string"
            )
            return
        op = request.get("op")
        try:
            if op not in _OPS:
                raise _BadRequest("unknown_op", f"unknown op {op!r}; known: {sorted(_OPS)}")
            reply = getattr(self, f"_on_{op}")(client, request_id, request)
        except _BadRequest as exc:
            reply = {"ok": False, "error": exc.code, "message": str(exc)}
        if reply is not None:
            client.send({"id": request_id, **reply})

    def _on_ping(
        self, client: _Client, request_id: _RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        return {"ok": True}

    def _on_acquire(
        self, client: _Client, request_id: _RequestId, request: dict[str, Any]
    ) -> dict[str, Any] | None:
        key = _text(request, "key")
        lease = self._lease(request, self.default_lease)
        wait = _number(request, "wait", None)
        if key in client.held or key in client.waiting:
            raise _BadRequest("busy", f"this connection already holds or awaits {key!r}")
        waiter = _Waiter(client, request_id, key, lease)
        state = self._keys.setdefault(key, _KeyState())
        state.queue.append(waiter)
        client.waiting[key] = waiter
        if wait is not None:
            waiter.deadline = asyncio.get_running_loop().call_later(wait, self._time_out, waiter)
        self._advance(key)
        return None  # the reply goes out when the lock is granted or the wait ends

    def _on_renew(
        self, client: _Client, request_id: _RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        grant = self._own_grant(client, request)
        grant.lease = self._lease(request, grant.lease)
        grant.expiry.cancel()
        grant.expiry = self._expiry_timer(_text(request, "key"), grant.token, grant.lease)
        return {"ok": True, "lease": grant.lease}

    def _on_release(
        self, client: _Client, request_id: _RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        self._own_grant(client, request)
        self._release(_text(request, "key"))
        return {"ok": True}

    def _lease(self, request: dict[str, Any], default: float) -> float:
        lease = _number(request, "lease", default)
        if lease is None:
            return default
        if lease > self.max_lease:
            raise _BadRequest("bad_request", f"lease must be at most {self.max_lease}s")
        return lease

    def _own_grant(self, client: _Client, request: dict[str, Any]) -> _Grant:
        key, token = _text(request, "key"), _text(request, "token")
        state = self._keys.get(key)
        grant = state.holder if state is not None else None
        if grant is None or grant.client is not client or grant.token != token:
            raise _BadRequest("not_held", f"{key!r} is not held with this token (lease ran out?)")
        return grant

    # -- the lock table ------------------------------------------------------

    def _advance(self, key: str) -> None:
        """Grant ``key`` to the first waiter if it is free; forget idle keys."""
        state = self._keys.get(key)
        if state is None:
            return
        while state.holder is None and state.queue:
            waiter = state.queue.popleft()
            if waiter.client.closed:
                self._forget(waiter)  # its disconnect is still on the way
                continue
            self._grant(key, state, waiter)
        if state.holder is None and not state.queue:
            del self._keys[key]

    def _grant(self, key: str, state: _KeyState, waiter: _Waiter) -> None:
        client = waiter.client
        self._forget(waiter)
        token = secrets.token_hex(16)
        grant = _Grant(client, token, waiter.lease, self._expiry_timer(key, token, waiter.lease))
        state.holder = grant
        client.held[key] = grant.token
        client.send(
            {"id": waiter.request_id, "ok": True, "token": grant.token, "lease": grant.lease}
        )

    def _expiry_timer(self, key: str, token: str, lease: float) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(lease, self._expire, key, token)

    def _expire(self, key: str, token: str) -> None:
        state = self._keys.get(key)
        grant = state.holder if state is not None else None
        if grant is not None and grant.token == token:
            _log.warning("lease on %r held by %s ran out; passing it on", key, grant.client.name)
            self._release(key)

    def _release(self, key: str) -> None:
        state = self._keys.get(key)
        if state is None or state.holder is None:
            return
        grant, state.holder = state.holder, None
        grant.expiry.cancel()
        grant.client.held.pop(key, None)
        self._advance(key)

    def _time_out(self, waiter: _Waiter) -> None:
        self._withdraw(waiter)
        waiter.client.send(
            {"id": waiter.request_id, "ok": False, "error": "timeout",
             "message": f"{waiter.key!r} was not free in time"}
        )  # fmt: skip

    @staticmethod
    def _forget(waiter: _Waiter) -> None:
        """Drop the waiter's own bookkeeping (not its place in the queue)."""
        if waiter.deadline is not None:
            waiter.deadline.cancel()
        waiter.client.waiting.pop(waiter.key, None)

    def _withdraw(self, waiter: _Waiter) -> None:
        self._forget(waiter)
        state = self._keys.get(waiter.key)
        if state is not None:
            with contextlib.suppress(ValueError):
                state.queue.remove(waiter)
            self._advance(waiter.key)
