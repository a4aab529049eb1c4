"""Reservations and the task lifecycle: assign, complete, fail, retry, time out, cancel.

Assignment reserves a task's CPU and memory on its node; whichever of
completion, failure, timeout, cancellation or the node's departure comes first
releases them, and only that one: the task leaves the node's active set there,
so a second release finds nothing to give back.
"""

from __future__ import annotations

from collections import Counter
from heapq import heappop, heappush
from typing import TYPE_CHECKING

from master.scheduling.nodes import NodeRecord
from master.scheduling.policies import Policies
from master.scheduling.queue import PendingQueue
from master.scheduling.stats import Statistics
from master.scheduling.tasks import TaskRecord, TaskState, TaskType

if TYPE_CHECKING:
    from master.scheduling.harvest import ContributionLedger
    from master.scheduling.index import ScoreIndex
    from master.scheduling.scheduler import SchedulePass

__all__ = ["FINISHED_KEPT", "TaskLifecycle"]

FINISHED_KEPT = 100_000
"""Finished tasks kept at least for get_task_status; older ones are forgotten in bulk
(counters stay)."""

_ASSIGNED = TaskState.ASSIGNED


class TaskLifecycle:
    nodes: dict[str, NodeRecord]
    tasks: dict[str, TaskRecord]
    task_counts: Counter[tuple[TaskType, TaskState]]
    stats: Statistics
    ledger: ContributionLedger
    _policies: Policies
    _index: ScoreIndex
    _queue: PendingQueue
    _timeouts: list[tuple[float, int, int, TaskRecord]]
    _finished: list[str]
    _last_rr: int

    def complete_task(self, task_id: str, now: float) -> bool:
        """The node finished the task. False if it was not running (a repeat is harmless)."""
        record = self.tasks.get(task_id)
        if record is None or record.state is not _ASSIGNED:
            return False
        node = self._release(record)
        started = now if record.assigned_at is None else record.assigned_at
        seconds = max(0.0, now - started)
        cap = None if node is None else node.capacity
        charging = cap is not None and cap.battery_powered and cap.is_charging
        stats = self.stats
        stats.total_compute_hours += seconds / 3600.0
        if charging:
            stats.charging_compute_hours += seconds / 3600.0
            if record.spec.estimated_duration > self._policies.battery_save_seconds:
                stats.battery_saves += 1
        if record.node_id is not None:
            self.ledger.record(record.node_id, seconds, charging)
        self._finish(record, TaskState.COMPLETED, now, None)
        return True

    def fail_task(self, task_id: str, now: float, reason: str = "failed") -> bool:
        """The node reports failure: retried on another node within the task's retry limit."""
        record = self.tasks.get(task_id)
        if record is None or record.state is not TaskState.ASSIGNED:
            return False
        self._release(record)
        self._retry_or_fail(record, now, reason)
        return True

    def cancel_task(self, task_id: str, now: float) -> bool:
        record = self.tasks.get(task_id)
        if record is None or record.state.final:
            return False
        if record.state is TaskState.PENDING:
            self._queue.left()
        else:
            self._release(record)
        self._finish(record, TaskState.CANCELLED, now, "cancelled")
        return True

    def _assign(self, record: TaskRecord, node: NodeRecord, now: float) -> None:
        spec = record.spec
        counts = self.task_counts
        counts[spec.task_type, record.state] -= 1
        counts[spec.task_type, _ASSIGNED] += 1
        record.state = _ASSIGNED
        record.node_id = node.node_id
        record.assigned_at = now
        record.attempts += 1
        node.active[record.task_id] = record
        node.reserved_mc += spec.cpu_millicores
        node.reserved_mem += spec.memory_mb
        node.refresh()
        self._index.put(node)
        self._last_rr = node.reg
        self.stats.tasks_assigned += 1
        limit = (spec.estimated_duration / node.capacity.cpu_speed
                 * self._policies.task_timeout_multiplier)
        heappush(self._timeouts, (now + limit, record.seq, record.attempts, record))

    def _release(self, record: TaskRecord) -> NodeRecord | None:
        """Give the task's reservation back, once; returns the node if it still exists."""
        node = self.nodes.get(record.node_id or "")
        if node is None or node.active.pop(record.task_id, None) is None:
            return None
        spec = record.spec
        node.reserved_mc -= spec.cpu_millicores
        node.reserved_mem -= spec.memory_mb
        node.refresh()
        self._index.put(node)
        return node

    def _retry_or_fail(self, record: TaskRecord, now: float, reason: str) -> None:
        if record.node_id is not None:
            record.tried = (*record.tried, record.node_id)
        if record.attempts <= record.spec.max_retries:
            self._set_state(record, TaskState.PENDING)
            record.node_id = None
            record.reason = reason
            self.stats.tasks_retried += 1
            self._queue.push(record)
        else:
            self._finish(record, TaskState.FAILED, now, reason)

    def _time_out(self, now: float, result: SchedulePass) -> None:
        heap = self._timeouts
        while heap and heap[0][0] <= now:
            _, _, attempt, record = heappop(heap)
            if record.state is TaskState.ASSIGNED and record.attempts == attempt:
                self.stats.tasks_timed_out += 1
                self._release(record)
                self._retry_or_fail(record, now, "timed_out")
                result.timed_out.append(record.task_id)

    def _set_state(self, record: TaskRecord, state: TaskState) -> None:
        kind = record.spec.task_type
        self.task_counts[kind, record.state] -= 1
        self.task_counts[kind, state] += 1
        record.state = state

    def _finish(self, record: TaskRecord, state: TaskState, now: float,
                reason: str | None) -> None:
        self._set_state(record, state)
        record.finished_at = now
        record.reason = reason
        stats = self.stats
        if state is TaskState.COMPLETED:
            stats.tasks_completed += 1
        elif state is TaskState.FAILED:
            stats.tasks_failed += 1
        elif state is TaskState.EXPIRED:
            stats.tasks_expired += 1
        else:
            stats.tasks_cancelled += 1
        finished = self._finished
        finished.append(record.task_id)
        if len(finished) > 2 * FINISHED_KEPT:
            for task_id in finished[:FINISHED_KEPT]:
                del self.tasks[task_id]
            del finished[:FINISHED_KEPT]
