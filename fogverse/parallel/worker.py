"""The loop inside a worker process.

A worker gets the Processor once (the first frame), runs ``setup()``, says it
is ready, then answers one job frame at a time, in the order received. That
order is what lets the stage know which message a dead worker was running: the
oldest one it has not answered.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import socket
import sys
import threading
import traceback
from collections import deque
from typing import Any

import msgpack

from fogverse.codec import Codec
from fogverse.parallel.jobs import Done, Failed, run_job
from fogverse.parallel.wire import Frame, FrameBuffer, Kind, encode_frame
from fogverse.processes import set_death_signal

__all__ = ["worker_main"]

_RECV_SIZE = 1 << 18


class _Channel:
    """Blocking frame I/O on the worker's end of its socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = FrameBuffer()
        self._frames: deque[Frame] = deque()

    def next(self) -> Frame | None:
        """The next frame, or None when the stage closed its end."""
        while not self._frames:
            chunk = self._sock.recv(_RECV_SIZE)
            if not chunk:
                return None
            self._buffer.feed(chunk)
            self._frames.extend(self._buffer.frames())
        return self._frames.popleft()

    def send(self, frame: bytes) -> None:
        self._sock.sendall(frame)


def worker_main(sock: socket.socket) -> None:
    """Entry point of a worker process (the target the pool spawns)."""
    _die_with_parent()
    # Ctrl-C (and a group-wide SIGTERM) reach every process of the group; the
    # stage decides when its workers stop, after they finished what they hold.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    channel = _Channel(sock)
    ready = _get_ready(channel)
    if ready is None:
        return
    processor, codec = ready
    try:
        _serve(channel, processor, codec)
    finally:
        _teardown(processor)


def _get_ready(channel: _Channel) -> tuple[Any, Codec] | None:
    first = channel.next()
    if first is None or first.kind != Kind.INIT:
        return None
    try:
        # Our own parent pickled this at start; nothing from the network is
        # ever unpickled here.
        processor, codec = pickle.loads(first.data)
        setup = getattr(processor, "setup", None)
        if callable(setup):
            setup()
    except BaseException as exc:  # SystemExit in setup() must be reported, not vanish
        channel.send(encode_frame(Kind.SETUP_FAILED, data=_describe(exc)))
        return None
    channel.send(encode_frame(Kind.READY, data=str(os.getpid()).encode()))
    return processor, codec


def _serve(channel: _Channel, processor: Any, codec: Codec) -> None:
    while True:
        frame = channel.next()
        if frame is None or frame.kind == Kind.STOP:
            return
        if frame.kind == Kind.JOB:
            outcome = run_job(processor, codec, frame.data, frame.meta or None)
            channel.send(_answer(frame.job, outcome))


def _answer(job: int, outcome: Done | Failed) -> bytes:
    if isinstance(outcome, Failed):
        detail = msgpack.packb([outcome.error_type, outcome.message, outcome.traceback])
        return encode_frame(Kind.ERROR, job, outcome.step, detail, outcome.seconds)
    if outcome.payload is None:
        return encode_frame(Kind.EMPTY, job, seconds=outcome.seconds)
    return encode_frame(Kind.RESULT, job, outcome.content_type, outcome.payload, outcome.seconds)


def _describe(exc: BaseException) -> bytes:
    text = "".join(traceback.format_exception(exc))
    return bytes(msgpack.packb([type(exc).__name__, str(exc), text]))


def _teardown(processor: Any) -> None:
    teardown = getattr(processor, "teardown", None)
    if callable(teardown):
        try:
            teardown()
        except Exception:
            traceback.print_exc(file=sys.stderr)


def _die_with_parent() -> None:
    """Never outlive the stage, however it ends (SIGKILL included).

    The kernel's death signal works even while this process is stuck in C code
    that never releases the GIL; the pool forks workers from the fork thread, so
    it fires when the stage process dies (see fogverse.processes).
    """
    set_death_signal(signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None:
        # Portable fallback, and covers a stage that died before the signal was armed.
        threading.Thread(target=_exit_when_gone, args=(parent,), daemon=True,
                         name="fogverse-parent-watch").start()


def _exit_when_gone(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()
    os._exit(1)
