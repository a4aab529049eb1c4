"""Task handlers the example's agents load: ``--handlers examples.tasks.handlers:HANDLERS``.

A handler takes the task's payload and a :class:`~fogverse.agent.handlers.TaskContext`;
what it returns is the result, what it raises is the error. Sync handlers run on
a thread of the agent, so a long one does not stop its reports.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fogverse.agent.handlers import TaskContext

__all__ = ["HANDLERS", "count_primes", "word_count"]


def count_primes(payload: Any, task: TaskContext) -> dict[str, Any]:
    """How many primes are below ``payload["below"]`` (CPU work, with progress)."""
    below = int(payload["below"])
    sieve = bytearray([1]) * max(below, 2)
    sieve[0:2] = b"\x00\x00"
    for n in range(2, int(below ** 0.5) + 1):
        if sieve[n]:
            sieve[n * n::n] = bytes(len(range(n * n, below, n)))
        if n % 64 == 0:
            task.progress(min(1.0, n * n / below))
    return {"below": below, "primes": sum(sieve[:below]), "node": task.node_id}


def word_count(payload: Any, task: TaskContext) -> dict[str, Any]:
    """The three commonest words of ``payload["text"]``."""
    words = Counter(str(payload["text"]).lower().split())
    return {"top": words.most_common(3), "node": task.node_id}


HANDLERS = {"count_primes": count_primes, "word_count": word_count}
