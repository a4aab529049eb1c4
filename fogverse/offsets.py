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
        self._lock = threading.Lock()

    def open(self, unit: WorkUnit, tp: TopicPartitionKey, offset: int) -> None:
        """Record that ``unit`` holds input ``offset`` of ``tp`` (offsets rise)."""
        with self._lock:
            if tp not in unit.last and tp not in self._revoked:
                self._queues.setdefault(tp, deque()).append(unit)
            unit.last[tp] = offset

    def add(self, unit: WorkUnit) -> None:
        """Queue a unit whose ``last`` was filled without :meth:`open` (a whole batch).

        Cheaper than one :meth:`open` per message; call it in consume order.
        """
        with self._lock:
            for tp in unit.last:
                # Work fetched before a revocation must not queue commits for a
                # partition another instance now owns.
                if tp not in self._revoked:
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
            for tp in partitions:
                self._queues.pop(tp, None)
            self._revoked.update(partitions)
        return ready

    def assigned(self, partitions: list[TopicPartitionKey]) -> None:
        """Partitions (re)assigned to this instance: track them again."""
        with self._lock:
            self._revoked.difference_update(partitions)

    def in_flight(self) -> int:
        with self._lock:
            return sum(len(q) for q in self._queues.values())
