"""Runs assigned tasks within the concurrency the agent declared, and says how they went.

Every assignment ends in exactly one report: a result, a failure, or a refusal
(``unknown_task_type`` when no handler has its type, ``busy`` when the declared
number of tasks already runs, ``duplicate`` for an attempt already taken), unless
the master revokes it: then it ends unheard.
Plain handlers run in daemon threads so a slow one never stalls the agent's loop
nor its exit;
``async`` handlers run on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from fogverse.agent.handlers import TaskContext, TaskHandler
from fogverse.wire.tasks import (
    TaskAssignment,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
)

__all__ = ["REFUSE_BUSY", "REFUSE_DUPLICATE", "REFUSE_UNKNOWN_TYPE", "Report", "TaskRunner"]

log = logging.getLogger("fogverse.agent")

REFUSE_UNKNOWN_TYPE = "unknown_task_type"
REFUSE_BUSY = "busy"
REFUSE_DUPLICATE = "duplicate"

Report = Callable[[TaskProgress | TaskResult | TaskFailure | TaskRefusal], None]

_SEEN_LIMIT = 10_000  # remembered attempts, to refuse a redelivered order


class TaskRunner:
    """Holds the running tasks of one agent; ``report`` must be thread-safe."""

    def __init__(
        self,
        node_id: str,
        handlers: Mapping[str, TaskHandler],
        max_concurrent: int,
        report: Report,
    ) -> None:
        self.node_id = node_id
        self.handlers = dict(handlers)
        self.max_concurrent = max_concurrent
        self._report = report
        self._running: dict[str, asyncio.Task[None]] = {}
        self._seen: dict[tuple[str, int], None] = {}
        self.completed = 0
        self.failed = 0
        self.refused = 0
        self.revoked = 0

    @property
    def running(self) -> tuple[str, ...]:
        return tuple(self._running)

    def assign(self, order: TaskAssignment) -> None:
        """Start ``order`` now, or refuse it; never blocks."""
        reason = self._refusal(order)
        if reason is not None:
            self.refused += 1
            self._report(TaskRefusal(self.node_id, order.task_id, order.attempt, reason,
                                     _detail(reason, order)))
            return
        self._remember((order.task_id, order.attempt))
        task = asyncio.get_running_loop().create_task(self._run(order))
        self._running[order.task_id] = task
        task.add_done_callback(functools.partial(self._forget, order.task_id))

    def revoke(self, task_id: str) -> bool:
        """Drop a running task without a report (the master says it is not ours to run).

        A plain handler's thread cannot be interrupted: it finishes unheard."""
        task = self._running.get(task_id)
        if task is None or task.done():
            return False
        del self._running[task_id]
        self.revoked += 1
        task.cancel()
        return True

    def _forget(self, task_id: str, task: asyncio.Task[None]) -> None:
        if self._running.get(task_id) is task:  # not a later attempt after a revoke
            del self._running[task_id]

    def _refusal(self, order: TaskAssignment) -> str | None:
        if order.task_type not in self.handlers:
            return REFUSE_UNKNOWN_TYPE
        if (order.task_id, order.attempt) in self._seen or order.task_id in self._running:
            return REFUSE_DUPLICATE
        if len(self._running) >= self.max_concurrent:
            return REFUSE_BUSY
        return None

    def _remember(self, key: tuple[str, int]) -> None:
        self._seen[key] = None
        if len(self._seen) > _SEEN_LIMIT:
            self._seen.pop(next(iter(self._seen)))

    async def _run(self, order: TaskAssignment) -> None:
        handler = self.handlers[order.task_type]
        context = TaskContext(
            order.task_id, order.task_type, order.attempt, self.node_id,
            lambda fraction, message: self._report(TaskProgress(
                self.node_id, order.task_id, order.attempt, fraction, message)),
        )
        started = time.monotonic()
        try:
            result = await asyncio.wait_for(_call(handler, order.payload, context),
                                            order.timeout_s)
            msgpack.packb(result, use_bin_type=True)  # fail here, not in the reporter
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            self._fail(order, f"ran past its timeout of {order.timeout_s:g}s", "TimeoutError")
            return
        except Exception as exc:
            self._fail(order, str(exc) or repr(exc), type(exc).__name__)
            return
        self.completed += 1
        self._report(TaskResult(self.node_id, order.task_id, order.attempt, result,
                                time.monotonic() - started))

    def _fail(self, order: TaskAssignment, error: str, error_type: str) -> None:
        self.failed += 1
        log.info("task %s attempt %d failed: %s", order.task_id, order.attempt, error)
        self._report(TaskFailure(self.node_id, order.task_id, order.attempt, error, error_type))

    async def stop(self) -> None:
        """Cancel what runs (threads of plain handlers finish on their own)."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _call(handler: TaskHandler, payload: Any, context: TaskContext) -> Any:
    if inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an async __call__ counts too
    ):
        return await handler(payload, context)
    result = await _in_daemon_thread(handler, payload, context)
    if inspect.isawaitable(result):
        return await result
    return result


def _in_daemon_thread(handler: TaskHandler, payload: Any, context: TaskContext
                      ) -> asyncio.Future[Any]:
    """Run a plain handler on a thread of its own that never holds the agent's exit up.

    A thread cannot be interrupted: a revoked, timed-out or cancelled handler runs
    on unheard, and an agent told to stop exits without waiting for it (the
    default executor's threads would be joined at exit)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)

    def work() -> None:
        try:
            outcome = (True, handler(payload, context))
        except BaseException as exc:  # handed to the awaiting task, whatever it is
            outcome = (False, exc)
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
            loop.call_soon_threadsafe(settle, *outcome)

    threading.Thread(target=work, daemon=True, name=f"task-{context.task_id}").start()
    return future


def _detail(reason: str, order: TaskAssignment) -> str:
    if reason == REFUSE_UNKNOWN_TYPE:
        return f"no handler for task type {order.task_type!r} on this node"
    if reason == REFUSE_BUSY:
        return "already running as many tasks as this node declared"
    return f"attempt {order.attempt} of {order.task_id} was already taken"
