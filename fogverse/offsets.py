"""Which input offsets are safe to commit.

An offset may be committed only when its message and every earlier message of
the same partition are finished (output acknowledged by the broker, or handed
to a sink, or dead-lettered). Work finishes out of order; commits never do.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

__all__ = ["CommitTracker", "TopicPartitionKey", "WorkUnit"]

TopicPartitionKey = tuple[str, int]


@dataclass(eq=False, slots=True)
class WorkUnit:
    """Inputs that finish together: a fetched batch, or one message.

    ``last`` holds, per partition, the highest input offset in the unit.
    ``pending`` counts outputs still awaiting acknowledgement; the unit is
    finished once it is sealed (all outputs issued) and pending reaches zero.
    """

    last: dict[TopicPartitionKey, int] = field(default_factory=dict)
    pending: int = 0
    sealed: bool = False
    failed: bool = False
    born: int | None = None
    """:attr:`CommitTracker.revocations` when the unit's inputs were fetched.

    A partition revoked after that, even if assigned back since, must not take
    this unit's offsets: the group may have re-read from an earlier commit, and
    committing past that would skip messages nobody finished.
    """

    @property
    def finished(self) -> bool:
        return self.sealed and self.pending == 0 and not self.failed


class CommitTracker:
    """Per partition, the queue of units in consume order.

    Thread-safe because rebalance callbacks run on the consumer's thread while
    delivery reports run on the event loop's.
    """

    def __init__(self) -> None:
        self._queues: dict[TopicPartitionKey, deque[WorkUnit]] = {}
        self._ready: dict[TopicPartitionKey, int] = {}
        self._revoked: set[TopicPartitionKey] = set()
        self._revoked_at: dict[TopicPartitionKey, int] = {}
        self._revocations = 0
        self._lock = threading.Lock()

    @property
    def revocations(self) -> int:
        """How many revocations happened so far; stamp fetched work with it."""
        return self._revocations

    def _stale(self, unit: WorkUnit, tp: TopicPartitionKey) -> bool:
        if unit.born is None:
            return tp in self._revoked
        return self._revoked_at.get(tp, 0) > unit.born

    def open(self, unit: WorkUnit, tp: TopicPartitionKey, offset: int) -> None:
        """Record that ``unit`` holds input ``offset`` of ``tp`` (offsets rise)."""
        with self._lock:
            if tp not in unit.last and not self._stale(unit, tp):
                self._queues.setdefault(tp, deque()).append(unit)
            unit.last[tp] = offset

    def add(self, unit: WorkUnit) -> None:
        """Queue a unit whose ``last`` was filled without :meth:`open` (a whole batch).

        Cheaper than one :meth:`open` per message; call it in consume order.
        """
        with self._lock:
            for tp in unit.last:
                # Work fetched before a revocation must not queue commits for a
                # partition another instance now owns (or that came back since).
                if not self._stale(unit, tp):
                    self._queues.setdefault(tp, deque()).append(unit)

    def settle(self, unit: WorkUnit) -> None:
        """Advance commit positions after ``unit`` may have finished."""
        if not unit.finished:
            return
        with self._lock:
            for tp in unit.last:
                queue = self._queues.get(tp)
                while queue and queue[0].finished:
                    done = queue.popleft()
                    self._ready[tp] = done.last[tp] + 1

    def take_ready(self) -> dict[TopicPartitionKey, int]:
        """Positions (next offset to read) that became committable since last call."""
        with self._lock:
            ready, self._ready = self._ready, {}
        return ready

    def forget(self, partitions: list[TopicPartitionKey]) -> dict[TopicPartitionKey, int]:
        """Drop tracking for revoked partitions; return their committable positions.

        Unfinished work on them will be redelivered to the new owner
        (at-least-once), so it is simply forgotten here.
        """
        with self._lock:
            ready = {tp: self._ready.pop(tp) for tp in partitions if tp in self._ready}
            self._revocations += 1
            for tp in partitions:
                self._queues.pop(tp, None)
                self._revoked_at[tp] = self._revocations
            self._revoked.update(partitions)
        return ready

    def assigned(self, partitions: list[TopicPartitionKey]) -> None:
        """Partitions (re)assigned to this instance: track them again."""
        with self._lock:
            self._revoked.difference_update(partitions)

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())
