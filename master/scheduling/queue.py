"""The pending queue: priority first, then submission time; deadlines kept on the side.

Both heaps drop entries lazily: a task that left the queue (placed, cancelled,
expired) is skipped when its stale entry surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from master.scheduling.tasks import TaskRecord, TaskState

__all__ = ["PendingQueue"]

_Entry = tuple[int, float, int, TaskRecord]


class PendingQueue:
    def __init__(self) -> None:
        self._order: list[_Entry] = []
        self._deadlines: list[tuple[float, int, TaskRecord]] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def push(self, record: TaskRecord) -> None:
        heapq.heappush(self._order, (-record.spec.priority.value, record.submitted_at,
                                     record.seq, record))
        if record.spec.deadline is not None:
            heapq.heappush(self._deadlines, (record.spec.deadline, record.seq, record))
        self._count += 1

    def left(self) -> None:
        """A queued task left the queue other than through :meth:`drain` (cancel, expiry)."""
        self._count -= 1

    def expired(self, now: float) -> list[TaskRecord]:
        """Pending tasks whose deadline has passed, earliest deadline first."""
        out: dict[int, TaskRecord] = {}  # a retried task may have two entries
        heap = self._deadlines
        while heap and heap[0][0] < now:
            record = heapq.heappop(heap)[2]
            if record.state is TaskState.PENDING:
                out[record.seq] = record
        return list(out.values())

    def drain(self) -> Iterator[TaskRecord]:
        """Yield pending tasks in queue order; each one not taken is queued again after.

        The caller marks a task taken by changing its state away from PENDING
        before asking for the next one.
        """
        heap = self._order
        kept: list[_Entry] = []
        try:
            while heap:
                entry = heapq.heappop(heap)
                record = entry[3]
                if record.state is not TaskState.PENDING:
                    continue
                yield record
                if record.state is TaskState.PENDING:
                    kept.append(entry)
                else:
                    self._count -= 1
        finally:
            if kept:
                # ``kept`` is sorted, so it is a valid heap prefix of the merge.
                heap[:0] = kept
                heapq.heapify(heap)

    def peek_order(self) -> list[TaskRecord]:
        """The pending tasks in queue order (for status; not on the hot path)."""
        return [e[3] for e in sorted(self._order) if e[3].state is TaskState.PENDING]
