"""The lock service's side of one connection, and what each request does to the lock table."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from fogverse.lock_protocol import encode_frame
from workers.lock_table import (
    BadRequest,
    Grant,
    LockTable,
    RequestId,
    Waiter,
    fence_field,
    number_field,
    text_field,
    valid_id,
)

__all__ = ["MAX_PENDING_OUTPUT", "LockClient", "LockRequests", "peer_name", "refuse"]

_log = logging.getLogger("workers.distributed_lock")

MAX_PENDING_OUTPUT = 1 << 20
"""A client that lets this many reply bytes pile up is not reading; it is dropped."""

_OPS = frozenset({"acquire", "renew", "release", "ping"})


@dataclass(eq=False)
class LockClient:
    """One connection and what it holds or waits for."""

    writer: asyncio.StreamWriter
    name: str
    held: dict[str, Grant] = field(default_factory=dict)
    waiting: dict[str, Waiter] = field(default_factory=dict)
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


def peer_name(writer: asyncio.StreamWriter) -> str:
    peer = writer.get_extra_info("peername")
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def refuse(client: LockClient, request_id: RequestId, code: str, message: str) -> None:
    client.send({"id": request_id, "ok": False, "error": code, "message": message})


class LockRequests:
    """Answers one client's acquire, renew, release and ping against the lock table."""

    _table: LockTable
    default_lease: float
    max_lease: float
    max_keys_per_client: int

    def _dispatch(self, client: LockClient, request: dict[str, Any]) -> None:
        request_id = request.get("id")
        if not valid_id(request_id):
            refuse(
                client, None, "bad_request", "id must be nil, an integer or a short string"
            )
            return
        op = request.get("op")
        try:
            if op not in _OPS:
                raise BadRequest("unknown_op", f"unknown op {op!r}; known: {sorted(_OPS)}")
            reply = getattr(self, f"_on_{op}")(client, request_id, request)
        except BadRequest as exc:
            reply = {"ok": False, "error": exc.code, "message": str(exc)}
        if reply is not None:
            client.send({"id": request_id, **reply})

    def _on_ping(
        self, client: LockClient, request_id: RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        return {"ok": True}

    def _on_acquire(
        self, client: LockClient, request_id: RequestId, request: dict[str, Any]
    ) -> dict[str, Any] | None:
        key = text_field(request, "key")
        lease = self._lease(request, self.default_lease)
        wait = number_field(request, "wait", None)
        if key in client.held or key in client.waiting:
            raise BadRequest("busy", f"this connection already holds or awaits {key!r}")
        if len(client.held) + len(client.waiting) >= self.max_keys_per_client:
            raise BadRequest("too_many_keys", f"one connection may hold or await at most"
                             f" {self.max_keys_per_client} keys")  # fmt: skip
        self._table.acquire(Waiter(client, request_id, key, lease), wait)
        return None  # the reply goes out when the lock is granted or the wait ends

    def _on_renew(
        self, client: LockClient, request_id: RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        key, token = text_field(request, "key"), text_field(request, "token")
        fence = fence_field(request)
        current = client.held.get(key)
        lease = self._lease(request, current.lease if current is not None else self.default_lease)
        return {"ok": True, "lease": self._table.renew(client, key, token, fence, lease)}

    def _on_release(
        self, client: LockClient, request_id: RequestId, request: dict[str, Any]
    ) -> dict[str, Any]:
        self._table.release(client, text_field(request, "key"), text_field(request, "token"),
                            fence_field(request))  # fmt: skip
        return {"ok": True}

    def _lease(self, request: dict[str, Any], default: float) -> float:
        lease = number_field(request, "lease", default)
        if lease is None:
            return default
        if lease > self.max_lease:
            raise BadRequest("bad_request", f"lease must be at most {self.max_lease}s")
        return lease
