"""One message's work in a worker, and what can come of it.

The same function runs in a worker process and in a worker thread: decode the
payload with the stage's codec, ``process`` it, encode the result. Decoding
here, not in the stage, keeps the stage's event loop free and lets decoding run
in parallel too.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any

from fogverse.codec import Codec

__all__ = ["Crashed", "Done", "Failed", "Outcome", "run_job"]


@dataclass(frozen=True, slots=True)
class Done:
    """The output payload (None: process() returned None) and its content type."""

    payload: bytes | None
    content_type: str
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Failed:
    """A step raised; the message goes through the stage's error policy."""

    step: str
    error_type: str
    message: str
    traceback: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Crashed:
    """Workers died running this message ``kills`` times; the pool gave up on it."""

    reason: str
    kills: int


Outcome = Done | Failed | Crashed

_local = threading.local()


def run_job(
    processor: Any, codec: Codec, payload: bytes, content_type: str | None
) -> Done | Failed:
    """decode -> process -> encode; never raises for an ordinary exception."""
    started = time.perf_counter()
    step = "decode"
    try:
        data = codec.decode(payload, content_type)
        step = "process"
        result = processor.process(data)
        if inspect.isawaitable(result):
            result = _await(result)
        if result is None:
            return Done(None, "", time.perf_counter() - started)
        step = "encode"
        out, out_type = codec.encode(result)
        return Done(out, out_type, time.perf_counter() - started)
    except Exception as exc:
        return Failed(step, type(exc).__name__, str(exc), traceback.format_exc(),
                      time.perf_counter() - started)


def _await(awaitable: Any) -> Any:
    # An async process() gets one private event loop per worker (thread), kept
    # for the worker's life: a new loop per message would cost more than most
    # messages do.
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None:
        loop = _local.loop = asyncio.new_event_loop()
    return loop.run_until_complete(awaitable)
