"""Per-key reorder buffer: work finishes in any order, leaves in arrival order.

A parallel stage reserves a ticket per input partition as each message is
admitted and completes it when the worker answers. ``complete`` returns what
may leave now: for an ordered buffer, the run of finished tickets at the head of
that key's queue; unordered, just the value. Its size is bounded by the
caller's admissions (max_running_task), never by the workers' speed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["ReorderBuffer", "Ticket"]

T = TypeVar("T")


@dataclass(eq=False, slots=True)
class Ticket(Generic[T]):
    """One admitted item's place in its key's queue."""

    key: Hashable
    value: T | None = None
    done: bool = False


class ReorderBuffer(Generic[T]):
    def __init__(self, ordered: bool = True) -> None:
        self.ordered = ordered
        self._queues: dict[Hashable, deque[Ticket[T]]] = {}
        self._held = 0

    def reserve(self, key: Hashable) -> Ticket[T]:
        """Take the next place for ``key`` (call in arrival order)."""
        ticket: Ticket[T] = Ticket(key)
        if self.ordered:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = deque()
            queue.append(ticket)
        self._held += 1
        return ticket

    def complete(self, ticket: Ticket[T], value: T) -> list[T]:
        """Finish ``ticket`` with ``value``; return the values that may leave now, in order."""
        if ticket.done:
            raise ValueError("ticket completed twice")
        ticket.done = True
        if not self.ordered:
            self._held -= 1
            return [value]
        ticket.value = value
        queue = self._queues[ticket.key]
        released: list[T] = []
        while queue and queue[0].done:
            head = queue.popleft()
            released.append(head.value)  # type: ignore[arg-type]
            head.value = None
        if not queue:
            del self._queues[ticket.key]
        self._held -= len(released)
        return released

    def __len__(self) -> int:
        """Items reserved and not yet released."""
        return self._held
