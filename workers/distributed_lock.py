"""The master's ``DISTRIBUTED_LOCK_WORKER``: a lock service over TCP.

FogVerse's version had one lock for everything, no lease, no fencing and a
retry loop in which an idle client could starve the rest, and it listened
wherever ``master_host`` pointed, open to anyone. Here every key is its own
lock with a lease and a fencing token (``workers.lock_table``), a closed
connection frees what it held, and the service:

- binds to loopback unless told otherwise, apart from the address clients are
  told to connect to (``master_host``);
- demands the control key (an HMAC challenge) whenever it has one, and refuses
  to start listening beyond loopback without one;
- caps connections, keys per connection and silence between frames, and keeps
  its connections within a quarter of the process's file-descriptor limit, so
  a flood of clients can never starve the rest of the Master of descriptors.

The wire format lives in ``fogverse.lock_protocol`` next to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import socket
from typing import Any

from fogverse.constants import DEFAULT_LOCK_PORT, ENV_CONTROL_KEY
from fogverse.errors import ConfigError
from fogverse.lock_protocol import (
    PROTOCOL_VERSION,
    LockProtocolError,
    auth_mac,
    decode_body,
    encode_frame,
    read_frame_bytes,
)
from workers.base import BaseWorker
from workers.lock_limits import LockLimits, connection_budget, is_loopback
from workers.lock_requests import LockClient, LockRequests, peer_name, refuse
from workers.lock_table import LockStatus, LockTable, valid_id

__all__ = ["DistributedLockWorker", "LockStatus"]

_log = logging.getLogger(__name__)

BODY_TIMEOUT = 10.0
"""Seconds a client may take to finish a frame it started; stops half-frames pinning a task."""
AUTH_TIMEOUT = 10.0
"""Seconds a new connection has to answer the challenge."""
ACCEPT_PAUSE = 0.1
"""Seconds to stop accepting after the process ran out of descriptors."""


class DistributedLockWorker(LockRequests, BaseWorker):
    """Serves per-key leased, fenced locks to ``fogverse.lock.DistributedLock`` clients.

    ``host`` is the address to bind (loopback by default), not the one clients
    are told to use. ``port=0`` picks a free port; read it from ``port`` after
    ``start()``. ``max_lease`` caps what a client may ask for, so a typo cannot
    hold a key for a day. ``control_key`` (default ``$FOGVERSE_CONTROL_KEY``)
    makes every client prove it knows the key; without one the service
    refuses to bind beyond loopback. ``max_connections`` (further capped by
    the descriptor limit), ``max_keys_per_client`` and ``idle_timeout``
    (seconds of silence before a connection that awaits nothing is closed)
    bound what one client can take.
    """

    name = "distributed_lock"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_LOCK_PORT,
        default_lease: float = 10.0,
        *,
        max_lease: float = 600.0,
        control_key: bytes | str | None = None,
        max_connections: int = 256,
        max_keys_per_client: int = 64,
        idle_timeout: float = 60.0,
    ) -> None:
        self.limits = LockLimits(default_lease, max_lease, max_connections,
                                 max_keys_per_client, idle_timeout)
        key = control_key if control_key is not None else os.environ.get(ENV_CONTROL_KEY) or None
        self.control_key: bytes | None = key.encode() if isinstance(key, str) else key
        if self.control_key is None and not is_loopback(host):
            raise ConfigError(
                "bind_host", host,
                "the lock service would accept anyone beyond loopback; set"
                f" {ENV_CONTROL_KEY} so clients must prove they know it, or bind 127.0.0.1",
            )  # fmt: skip
        self.host = host
        self._requested_port = port
        self.default_lease = default_lease
        self.max_lease = max_lease
        self.max_connections = max_connections
        self.max_keys_per_client = max_keys_per_client
        self.idle_timeout = idle_timeout
        self._listener: socket.socket | None = None
        self._table = LockTable()
        self._clients: set[LockClient] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self.turned_away = 0
        """Connections refused because the service was full."""

    @property
    def port(self) -> int:
        """The bound port (the requested one until ``start()``)."""
        if self._listener is None:
            return self._requested_port
        return int(self._listener.getsockname()[1])

    def locks(self) -> dict[str, LockStatus]:
        """Every key that is held or awaited right now."""
        return self._table.locks()

    def status(self) -> dict[str, Any]:
        locks = {key: {"holder": s.holder, "waiting": s.waiting, "fence": s.fence}
                 for key, s in self.locks().items()}  # fmt: skip
        return {
            "address": f"{self.host}:{self.port}",
            "authenticated": self.control_key is not None,
            "clients": len(self._clients),
            "turned_away": self.turned_away,
            "locks": locks,
        }

    async def start(self) -> None:
        if self._listener is not None:
            return
        budget = connection_budget(self.max_connections)
        if budget < self.max_connections:
            _log.warning("lock service: at most %d connections (a quarter of the descriptor"
                         " limit), not %d", budget, self.max_connections)  # fmt: skip
        self.max_connections = budget
        address = (self.host, self._requested_port)
        family = socket.getaddrinfo(self.host or None, address[1], type=socket.SOCK_STREAM,
                                    flags=socket.AI_PASSIVE)[0][0]  # fmt: skip
        listener = socket.create_server(address, family=family, backlog=128)
        listener.setblocking(False)
        self._listener = listener
        asyncio.get_running_loop().add_reader(listener, self._accept_ready)
        _log.info("lock service listening on %s:%d%s", self.host, self.port,
                  "" if self.control_key else " (no control key: loopback only)")  # fmt: skip

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            asyncio.get_running_loop().remove_reader(listener)
            listener.close()
        for client in list(self._clients):
            client.closed = True
            client.writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        self._table.clear()

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

    def _accept_ready(self) -> None:
        # Accepting by hand, one socket at a time, means a full service holds
        # at most one descriptor beyond its cap (to say why) while the rest of
        # a flood waits in the kernel's backlog, not in the Master.
        listener = self._listener
        while listener is not None:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # EMFILE and friends: the Master is short of descriptors
                # The listener stays readable: pause rather than spin on it.
                _log.warning("lock service cannot accept: %s; pausing", exc)
                loop = asyncio.get_running_loop()
                loop.remove_reader(listener)
                loop.call_later(ACCEPT_PAUSE, self._resume_accepting, listener)
                return
            if len(self._handlers) >= self.max_connections:
                self._turn_away(conn)
                continue
            task = asyncio.create_task(self._serve(conn))
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)

    def _resume_accepting(self, listener: socket.socket) -> None:
        if self._listener is listener:
            asyncio.get_running_loop().add_reader(listener, self._accept_ready)

    def _turn_away(self, conn: socket.socket) -> None:
        self.turned_away += 1
        with contextlib.suppress(OSError):
            conn.setblocking(False)
            why = f"the lock service serves at most {self.max_connections} connections"
            conn.send(encode_frame({"id": None, "ok": False, "error": "too_many_connections",
                                    "message": why}))  # fmt: skip
        conn.close()

    async def _serve(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
        except OSError:
            conn.close()
            return
        client = LockClient(writer, name=peer_name(writer))
        self._clients.add(client)
        try:
            if await self._greet(reader, client):
                await self._read_requests(reader, client)
        except (ConnectionError, asyncio.CancelledError):
            pass
        except Exception:
            # A bug must cost one connection, never the service.
            _log.exception("lock service dropped %s after an internal error", client.name)
        finally:
            self._disconnect(client)

    async def _greet(self, reader: asyncio.StreamReader, client: LockClient) -> bool:
        """Say hello and, with a key, check the client's answer; False drops it."""
        nonce = secrets.token_bytes(32)
        auth = self.control_key is not None
        client.send({"op": "hello", "version": PROTOCOL_VERSION, "auth": auth, "nonce": nonce,
                     "idle": self.idle_timeout})  # fmt: skip
        if self.control_key is None:
            return True
        try:
            body = await read_frame_bytes(reader, AUTH_TIMEOUT, idle_timeout=AUTH_TIMEOUT)
            request = decode_body(body) if body is not None else {}
        except (LockProtocolError, TimeoutError):
            request = {}
        mac = request.get("mac")
        good = (request.get("op") == "auth" and isinstance(mac, bytes)
                and hmac.compare_digest(mac, auth_mac(self.control_key, nonce)))  # fmt: skip
        request_id = request.get("id") if valid_id(request.get("id")) else None
        if good:
            client.send({"id": request_id, "ok": True})
            return True
        _log.warning("lock service: %s failed the control-key challenge", client.name)
        refuse(client, request_id, "auth_failed", "a valid auth request (HMAC of the"
                     f" challenge under {ENV_CONTROL_KEY}) must come first")  # fmt: skip
        await client.writer.drain()
        return False

    async def _read_requests(self, reader: asyncio.StreamReader, client: LockClient) -> None:
        while not client.closed:
            try:
                body = await read_frame_bytes(reader, BODY_TIMEOUT, self.idle_timeout)
            except TimeoutError:
                if client.waiting:
                    continue  # the silence is ours: it waits for a grant
                refuse(client, None, "idle", f"no request for {self.idle_timeout}s")
                return
            except LockProtocolError as exc:
                # The stream is out of step: nothing after this point can be trusted.
                refuse(client, None, "bad_frame", str(exc))
                return
            if body is None:
                return
            try:
                request = decode_body(body)
            except LockProtocolError as exc:
                # Only this frame is bad; the length prefix keeps the stream in step.
                refuse(client, None, "bad_request", str(exc))
            else:
                self._dispatch(client, request)
            await client.writer.drain()

    def _disconnect(self, client: LockClient) -> None:
        client.closed = True
        self._table.drop(client)
        self._clients.discard(client)
        client.writer.transport.abort()
