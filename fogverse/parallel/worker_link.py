"""The pool's side of each worker process: its socket, the jobs it owes, its answers.

A worker answers jobs in the order it was sent them, so the head of
``WorkerLink.in_flight`` is always the job it is running: the one blamed if
it dies.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Generic, TypeVar

import msgpack

from fogverse.parallel.jobs import Done, Failed
from fogverse.parallel.wire import Frame, FrameBuffer, Kind

if TYPE_CHECKING:
    from fogverse.parallel.pool import ProcessPool

__all__ = ["PoolStats", "SentJob", "WorkerLink", "WorkerProtocol", "outcome_of", "queued_jobs"]

T = TypeVar("T")


@dataclass
class PoolStats:
    """What crossed the process boundary and what died, since the pool started."""

    jobs_sent: int = 0
    job_bytes_sent: int = 0
    """Bytes of job frames: the per-message cost (payload plus a small header)."""
    init_bytes_sent: int = 0
    """Bytes of Processor frames: once per worker start, never per message."""
    deaths: int = 0
    respawns: int = 0
    retried: int = 0
    gave_up: int = 0


@dataclass(eq=False, slots=True)
class SentJob(Generic[T]):
    """One message's job, from submit until its worker answers (or dies on it)."""

    id: int
    owner: T
    payload: bytes
    content_type: str | None
    kills: int = 0


@dataclass(eq=False)
class WorkerLink(Generic[T]):
    """One worker process as the pool sees it: its socket and the jobs it owes."""

    number: int
    process: BaseProcess
    transport: asyncio.Transport | None = None
    in_flight: deque[SentJob[T]] = field(default_factory=deque)
    ready: bool = False
    lost: bool = False
    setup_failed: bool = False
    busy_since: float | None = None
    """When the job at the head of in_flight started (monotonic), if any."""
    killed_because: str | None = None


class WorkerProtocol(asyncio.Protocol, Generic[T]):
    """The stage's end of one worker's socket."""

    def __init__(self, pool: ProcessPool[T], worker: WorkerLink[T]) -> None:
        self._pool = pool
        self._worker = worker
        self._buffer = FrameBuffer()

    def data_received(self, data: bytes) -> None:
        self._buffer.feed(data)
        for frame in self._buffer.frames():
            self._pool._on_frame(self._worker, frame)
        # Refill at once rather than on the next loop turn: one wake-up fewer
        # per batch of answers.
        self._pool._dispatch()

    def eof_received(self) -> bool:
        return False  # close our end too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self._pool._on_lost(self._worker)


def queued_jobs(worker: WorkerLink[T]) -> int:
    """Jobs sent to ``worker`` and not answered yet."""
    return len(worker.in_flight)


def outcome_of(frame: Frame) -> Done | Failed:
    """A worker's answer as the stage takes it."""
    if frame.kind == Kind.RESULT:
        return Done(frame.data, frame.meta, frame.seconds)
    if frame.kind == Kind.EMPTY:
        return Done(None, "", frame.seconds)
    error_type, message, trace = msgpack.unpackb(frame.data)
    return Failed(frame.meta, error_type, message, trace, frame.seconds)
