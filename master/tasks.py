"""The master's task desk: submissions in, assignments out, one final word per task.

It drives the scheduler (:mod:`master.scheduling`) with what arrives over Kafka
and turns its decisions into records to send: a
:class:`~fogverse.wire.tasks.TaskAssignment` for each placement, a
:class:`~fogverse.wire.tasks.TaskStatus` whenever a task's state changes. It does
no I/O itself: ``send_order`` and ``publish`` are given.

Rules that keep results honest:

- A report counts only from the node the task is assigned to, for the attempt it
  was given; anything else is counted in ``ignored`` by reason and never applied,
  so a forged or late result cannot complete a task, and each task gets one final
  status.
- A task type no live node has a handler for fails at submission, with that
  reason, instead of bouncing between nodes. A refusal by the chosen node (no
  handler there, or busy) is a failed attempt: the scheduler retries it on
  another node within the task's retry limit.
- A restarted master carries on (:mod:`master.task_recovery`): what it had
  finished is never run or said again, what was running is adopted where it runs.
- Task types are handler names. The scheduler's seed categories (inference,
  training, ...) are kept for types spelled like one; any other type is planned
  as ``inference``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from fogverse.wire.tasks import (
    FINAL_STATES,
    TaskAssignment,
    TaskCancel,
    TaskFailure,
    TaskProgress,
    TaskRefusal,
    TaskResult,
    TaskRevoke,
    TaskStatus,
    TaskSubmit,
)
from master.nodes import NodeBook
from master.scheduling import Scheduler, TaskPriority, TaskRecord, TaskSpec, TaskState, TaskType
from master.task_recovery import TaskRecovery

__all__ = ["DEFAULT_DURATION_S", "TaskDesk"]

log = logging.getLogger("fogverse.master.tasks")

DEFAULT_DURATION_S: Final = 60.0
"""A task that gives no estimate is planned (and timed out) as a one-minute task."""

_CATEGORIES: Final = {t.value: t for t in TaskType}
_STATE_WORD: Final = {
    TaskState.PENDING: "queued", TaskState.ASSIGNED: "assigned",
    TaskState.COMPLETED: "completed", TaskState.FAILED: "failed",
    TaskState.EXPIRED: "expired", TaskState.CANCELLED: "cancelled",
}

Report = TaskProgress | TaskResult | TaskFailure | TaskRefusal


def _priority(value: int) -> TaskPriority:
    # The wire allows 1..10; the core knows the seed's four levels: round down.
    return max((p for p in TaskPriority if p.value <= value), key=lambda p: p.value)


@dataclass
class _Task:
    submit: TaskSubmit
    submitted_wall: float
    result: Any = None
    error: str | None = None
    progress: float | None = None
    running: bool = False
    published: str = ""


@dataclass
class TaskDesk:
    scheduler: Scheduler
    nodes: NodeBook
    send_order: Callable[[TaskAssignment | TaskRevoke], None]
    publish: Callable[[TaskStatus], None]
    tasks: dict[str, _Task] = field(default_factory=dict)
    ignored: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    unfinished: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Task id -> (partition, offset) of its submission, until its final status: the
    master's group never commits past one (:mod:`master.fleet_reader`)."""
    recovery: TaskRecovery = field(init=False)

    def __post_init__(self) -> None:
        self.recovery = TaskRecovery(self)

    # -- from clients ------------------------------------------------------------------

    def on_submit(self, msg: TaskSubmit, now: float, wall: float,
                  where: tuple[int, int] | None = None) -> None:
        """A submission; ``where`` is its (partition, offset) on the tasks topic."""
        if msg.task_id in self.tasks:
            self.ignored["duplicate_submit"] += 1
            return
        task = self.tasks[msg.task_id] = _Task(msg, wall)
        if where is not None:
            self.unfinished[msg.task_id] = where
        attempts = self.recovery.on_submit(msg.task_id)
        if attempts is not None:
            self.judge(msg.task_id, now, wall, attempts)
        elif task.published in FINAL_STATES:
            self.unfinished.pop(msg.task_id, None)

    def judge(self, task_id: str, now: float, wall: float, attempts: int = 0) -> None:
        """Queue a task, or fail it at once with the reason it cannot run."""
        msg = self.tasks[task_id].submit
        if not self.nodes.handles(msg.task_type):
            self._fail_now(task_id, wall, f"no node has a handler for task type "
                                          f"{msg.task_type!r}")
            return
        try:
            self.scheduler.resume(self._spec(msg, now, wall), task_id, now, attempts=attempts)
        except ValueError as exc:  # a spec the core refuses (an unknown strategy...): it says why
            self._fail_now(task_id, wall, str(exc))
            return
        self._publish(task_id, wall)

    def spec_of(self, task_id: str, now: float, wall: float) -> TaskSpec:
        return self._spec(self.tasks[task_id].submit, now, wall)

    @staticmethod
    def _spec(msg: TaskSubmit, now: float, wall: float) -> TaskSpec:
        return TaskSpec(
            task_type=_CATEGORIES.get(msg.task_type, TaskType.INFERENCE),
            priority=_priority(msg.priority), cpu_millicores=round(msg.cpu * 1000),
            memory_mb=round(msg.memory_mb), requires_gpu=msg.gpu,
            estimated_duration=msg.estimated_duration_s or DEFAULT_DURATION_S,
            input_size_mb=msg.input_size_mb or 0.0,
            # The core's clock is the master's monotonic one; deadlines cross hosts as epochs.
            deadline=None if msg.deadline is None else now + (msg.deadline - wall),
            max_retries=msg.retry_limit, strategy=msg.strategy,
        )

    def _fail_now(self, task_id: str, wall: float, reason: str) -> None:
        self.tasks[task_id].error = reason
        self._publish(task_id, wall, state="failed")

    def on_cancel(self, msg: TaskCancel, now: float, wall: float) -> None:
        if self.scheduler.cancel_task(msg.task_id, now):
            self.tasks[msg.task_id].error = msg.reason or "cancelled"
            self._publish(msg.task_id, wall)

    # -- from agents -------------------------------------------------------------------

    def on_report(self, msg: Report, now: float, wall: float) -> None:
        if self.recovery.on_orphan_report(msg, now, wall):
            return
        record = self.scheduler.tasks.get(msg.task_id)
        reason = self._why_ignored(record, msg)
        if reason is not None:
            self.ignored[reason] += 1
            return
        task = self.tasks[msg.task_id]
        if isinstance(msg, TaskProgress):
            task.progress, task.running = msg.fraction, True
            self._publish(msg.task_id, wall)
        elif isinstance(msg, TaskResult):
            if self.scheduler.complete_task(msg.task_id, now):
                task.result, task.error = msg.result, None
                self._publish(msg.task_id, wall)
        elif isinstance(msg, TaskFailure):
            task.error = f"{msg.error_type}: {msg.error}" if msg.error_type else msg.error
            self.scheduler.fail_task(msg.task_id, now, "handler_error")
            self._publish(msg.task_id, wall)
        else:
            self.refused[msg.reason] += 1
            task.error = f"refused by {msg.node_id}: {msg.reason}"
            self.scheduler.fail_task(msg.task_id, now, f"refused_{msg.reason}")
            self._publish(msg.task_id, wall)

    def _why_ignored(self, record: TaskRecord | None, msg: Report) -> str | None:
        if record is None or msg.task_id not in self.tasks:
            return "unknown_task"
        if record.state is not TaskState.ASSIGNED:
            return "not_running"
        if record.node_id != msg.node_id:
            return "not_assigned_to_sender"
        if record.attempts != msg.attempt:
            return "stale_attempt"
        return None

    def on_nodes_lost(self, moved: list[str], wall: float) -> None:
        """Tasks a lost or restarted node was running went back to the queue (or failed)."""
        for task_id in moved:
            if task_id in self.tasks:
                self.tasks[task_id].running = False
                self._publish(task_id, wall)

    # -- the pass ----------------------------------------------------------------------

    def tick(self, now: float, wall: float) -> int:
        """Run one scheduling pass and send what it decided; returns how many were placed."""
        result = self.scheduler.schedule(now)
        for task_id in (*result.expired, *result.timed_out, *result.failed):
            if task_id in self.tasks:
                self._publish(task_id, wall)
        for placed in result.assigned:
            task = self.tasks.get(placed.task_id)
            if task is None:
                continue
            submit = task.submit
            task.running, task.progress = False, None
            self.send_order(TaskAssignment(
                node_id=placed.node_id, task_id=placed.task_id, task_type=submit.task_type,
                attempt=placed.attempt, payload=submit.payload,
                timeout_s=self._agent_timeout(submit),
            ))
            self._publish(placed.task_id, wall)
        return len(result.assigned)

    def _agent_timeout(self, submit: TaskSubmit) -> float:
        # The agent gives up when the scheduler would: estimate x the timeout multiplier.
        multiplier = float(self.scheduler.policies["task_timeout_multiplier"])
        return (submit.estimated_duration_s or DEFAULT_DURATION_S) * multiplier

    # -- status ------------------------------------------------------------------------

    def publish_state(self, task_id: str, wall: float) -> None:
        """Publish the task's state as the scheduler has it now."""
        self._publish(task_id, wall)

    def publish_final(self, task_id: str, wall: float, state: str, node_id: str,
                      attempts: int) -> None:
        """A final word for a task the scheduler does not hold (an orphan's result)."""
        self._publish(task_id, wall, state, (node_id, attempts))

    def _publish(self, task_id: str, wall: float, state: str | None = None,
                 ran: tuple[str | None, int] | None = None) -> None:
        task = self.tasks[task_id]
        record = self.scheduler.tasks.get(task_id)
        if state is None:
            state = "queued" if record is None else _STATE_WORD[record.state]
            if state == "assigned" and task.running:
                state = "running"
        if task.published in FINAL_STATES:
            return  # a final word is said once
        task.published = state
        if state in FINAL_STATES:
            self.unfinished.pop(task_id, None)
        if state in ("expired", "failed") and task.error is None and record is not None:
            task.error = record.reason
        if ran is None:
            ran = (None, 0) if record is None else (record.node_id, record.attempts)
        self.publish(TaskStatus(
            task_id=task_id, state=state, task_type=task.submit.task_type,
            node_id=ran[0], attempts=ran[1],
            result=task.result if state == "completed" else None,
            error=None if state in ("completed", "queued", "assigned", "running")
            else task.error,
            progress=task.progress, submitted_at=task.submitted_wall, updated_at=wall,
        ))

    def queue_status(self) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for record in self.scheduler.tasks.values():
            counts[_STATE_WORD[record.state]] += 1
        return dict(counts)
