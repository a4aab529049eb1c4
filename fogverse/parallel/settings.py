"""How a parallel stage runs its workers."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Literal

from fogverse.errors import ConfigError

__all__ = ["PARALLEL_FIELDS", "Executor", "ParallelSettings", "StartMethod", "usable_cpus"]

Executor = Literal["process", "thread"]
StartMethod = Literal["spawn", "forkserver"]


@dataclass(frozen=True)
class ParallelSettings:
    """Workers, the bound on messages in flight, ordering and crash handling."""

    process_number: int = 0
    """Workers to run; 0 means one per CPU this process may use."""
    max_running_task: int = 0
    """Messages admitted and not yet sent on; when reached the stage stops
    fetching. 0 means sixteen per worker."""
    ordered: bool = True
    """Per input partition, outputs leave in input order. False: as they finish."""
    executor: Executor = "process"
    """``process`` for pure-Python CPU work; ``thread`` for work that releases
    the GIL (NumPy, I/O): no pickling, one shared Processor."""
    max_worker_kills: int = 2
    """A message whose worker died this many times goes to the error policy
    (dead-letter by default) instead of being retried again."""
    worker_prefetch: int = 2
    """Jobs kept sent ahead to each worker at least, so it never waits for the
    next one; quick jobs are sent further ahead (about 10 ms of work each)."""
    start_method: StartMethod = "spawn"
    """How worker processes start. ``fork`` is refused: a forked copy of a
    process running Kafka clients and an event loop is not safe."""
    job_timeout: float | None = None
    """Seconds one message may run in a worker process; longer and the worker
    is killed, which counts as a kill for that message (a hang becomes a dead
    letter, not a stalled stage). None: no limit. The thread executor cannot
    stop a thread and ignores it."""
    stop_timeout: float = 10.0
    """Seconds a worker gets to run teardown() and exit before it is killed."""

    @property
    def workers(self) -> int:
        return self.process_number or usable_cpus()

    @property
    def in_flight_limit(self) -> int:
        return self.max_running_task or 16 * self.workers

    def validate(self) -> None:
        """Raise ConfigError naming the first setting that cannot work."""
        for name in ("process_number", "max_running_task"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(name, value, "must be a positive whole number (0: default)")
        for name in ("max_worker_kills", "worker_prefetch"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(name, value, "must be a whole number of at least 1")
        if self.executor not in ("process", "thread"):
            raise ConfigError("executor", self.executor, "expected 'process' or 'thread'")
        if self.start_method not in ("spawn", "forkserver"):
            raise ConfigError("start_method", self.start_method,
                              "expected 'spawn' or 'forkserver'")
        if self.job_timeout is not None and (
            not isinstance(self.job_timeout, int | float) or self.job_timeout <= 0
        ):
            raise ConfigError("job_timeout", self.job_timeout, "must be a positive number or None")
        if not isinstance(self.stop_timeout, int | float) or self.stop_timeout <= 0:
            raise ConfigError("stop_timeout", self.stop_timeout, "must be a positive number")


def usable_cpus() -> int:
    """CPUs this process may run on (a container's cpuset, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


PARALLEL_FIELDS: frozenset[str] = frozenset(f.name for f in fields(ParallelSettings))
