"""The thread executor: the same contract as the process pool, in threads.

For work that releases the GIL (NumPy, OpenCV, I/O-bound calls) threads give
the parallelism without copying payloads between processes, and the Processor
need not be picklable. One Processor instance is shared by every thread, so its
process() must be thread-safe; setup() and teardown() run once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Generic, TypeVar

from fogverse.codec import Codec
from fogverse.parallel.errors import ProcessorSetupError
from fogverse.parallel.jobs import Done, Failed, Outcome, run_job
from fogverse.parallel.pool import PoolStats

__all__ = ["ThreadPool"]

T = TypeVar("T")

log = logging.getLogger("fogverse.parallel")


class ThreadPool(Generic[T]):
    """``size`` threads running ``processor``; ``on_done(owner, outcome)`` on the loop.

    The executor's queue is bounded by the caller (the stage's max_running_task).
    """

    def __init__(self, processor: Any, codec: Codec, size: int,
                 on_done: Callable[[T, Outcome], None], *, name: str = "fogverse") -> None:
        self._processor = processor
        self._codec = codec
        self._size = size
        self._on_done = on_done
        self._name = name
        self._executor: ThreadPoolExecutor | None = None
        self.broken = False
        self.stats = PoolStats()
        """Only jobs_sent counts here: threads share memory, nothing is copied."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(self._size, thread_name_prefix=f"{self._name}-worker")
        setup = getattr(self._processor, "setup", None)
        if callable(setup):
            try:
                await self._loop.run_in_executor(self._executor, setup)
            except Exception as exc:
                self._executor.shutdown(wait=False)
                raise ProcessorSetupError(type(exc).__name__, str(exc)) from exc

    def submit(self, owner: T, payload: bytes, content_type: str | None) -> None:
        assert self._executor is not None, "pool not started"
        self.stats.jobs_sent += 1
        future = self._executor.submit(run_job, self._processor, self._codec, payload,
                                       content_type)
        future.add_done_callback(partial(self._finished, owner))

    def _finished(self, owner: T, future: Future[Done | Failed]) -> None:
        # Runs in the worker thread: hand the outcome to the event loop.
        if future.cancelled():
            return  # only at close, after the stage drained what it waits for
        error = future.exception()
        outcome: Outcome = (
            Failed("process", type(error).__name__, str(error)) if error is not None
            else future.result()
        )
        self._loop.call_soon_threadsafe(self._on_done, owner, outcome)

    async def close(self, timeout: float) -> int:
        executor = self._executor
        if executor is None:
            return 0
        self._executor = None
        await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        teardown = getattr(self._processor, "teardown", None)
        if callable(teardown):
            try:
                await asyncio.to_thread(teardown)
            except Exception:
                log.exception("%s: Processor.teardown() failed", self._name)
        return 0

    @property
    def pids(self) -> list[int]:
        return []
