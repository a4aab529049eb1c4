"""The Master's scheduler, embeddable in-process: the fog coordinator's API over the pure core.

The core never reads a clock; this wrapper supplies wall-clock time (deadlines
are absolute epoch seconds or aware datetimes, since they cross hosts) and the
Master's own machine as one node. Tests and notebooks use it directly::

    fog = FogScheduler()
    fog.register_node("desktop_001", Capacity(cpu_cores=8, memory_mb=16384))
    task_id = fog.submit_task(TaskType.INFERENCE, TaskPriority.HIGH, cpu_cores=0.5)
    fog.schedule()
    fog.get_task_status(task_id)["status"]      # "assigned"
    fog.policies.update(PRODUCTION_POLICIES)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from master.local_node import local_capacity, local_node_id
from master.scheduling import (
    Capacity,
    HarvestProfile,
    Policies,
    PolicyMapping,
    SchedulePass,
    Scheduler,
    TaskPriority,
    TaskSpec,
    TaskType,
)

__all__ = ["LOCAL_REFRESH_SECONDS", "FogScheduler"]

LOCAL_REFRESH_SECONDS = 5.0
"""How often the Master re-reads its own machine's capacity."""


class FogScheduler:
    """One scheduler and a clock. Every call is synchronous and cheap (no I/O but psutil)."""

    def __init__(self, policies: Policies | None = None, *, coordinator_id: str = "master",
                 clock: Callable[[], float] = time.time, local_node: bool = False) -> None:
        self.core = Scheduler(policies, coordinator_id=coordinator_id)
        self._clock = clock
        self.local_node_id: str | None = None
        self._local_read_at = float("-inf")
        if local_node:
            self.local_node_id = local_node_id()
            self.core.register_node(self.local_node_id, local_capacity(), clock(),
                                    metadata={"role": "master"})
            self._local_read_at = clock()

    @property
    def policies(self) -> PolicyMapping:
        return self.core.policies

    def register_node(self, node_id: str, capacity: Capacity | Mapping[str, Any],
                      node_metadata: Mapping[str, object] | None = None, *,
                      harvest: HarvestProfile | None = None) -> bool:
        return self.core.register_node(node_id, capacity, self._clock(), harvest=harvest,
                                       metadata=node_metadata)

    def update_node(self, node_id: str, capacity: Capacity | Mapping[str, Any]) -> None:
        self.core.update_node(node_id, capacity, self._clock())

    def unregister_node(self, node_id: str) -> list[str]:
        return self.core.unregister_node(node_id, self._clock())

    def submit_task(self, task_type: TaskType = TaskType.INFERENCE,
                    priority: TaskPriority = TaskPriority.NORMAL, cpu_cores: float = 1.0,
                    memory_mb: int = 512, estimated_duration: float = 60.0,
                    input_data: bytes = b"", deadline: datetime | float | None = None,
                    requires_gpu: bool = False, *, max_retries: int = 3,
                    strategy: str | None = None) -> str:
        """The seed's ``submit_task``; returns the task id. ``deadline`` is absolute."""
        if isinstance(deadline, datetime):
            if deadline.tzinfo is None:
                raise ValueError("deadline must be timezone-aware (e.g. datetime.now(UTC))")
            deadline = deadline.timestamp()
        return self.core.submit_task(
            task_type, priority, cpu_cores, memory_mb, estimated_duration,
            input_size_mb=len(input_data) / (1024 * 1024), deadline=deadline,
            requires_gpu=requires_gpu, max_retries=max_retries, strategy=strategy,
            now=self._clock())

    def complete_task(self, task_id: str) -> bool:
        return self.core.complete_task(task_id, self._clock())

    def fail_task(self, task_id: str, reason: str = "failed") -> bool:
        return self.core.fail_task(task_id, self._clock(), reason)

    def cancel_task(self, task_id: str) -> bool:
        return self.core.cancel_task(task_id, self._clock())

    def get_task_status(self, task_id: str) -> dict[str, object] | None:
        return self.core.get_task_status(task_id)

    def get_system_status(self) -> dict[str, Any]:
        return self.core.get_system_status()

    def schedule(self) -> SchedulePass:
        """One pass: refresh this machine if due, expire, time out, place."""
        now = self._clock()
        self.refresh_local(now)
        return self.core.schedule(now)

    def refresh_local(self, now: float) -> None:
        if self.local_node_id is None or now - self._local_read_at < LOCAL_REFRESH_SECONDS:
            return
        self._local_read_at = now
        if self.local_node_id in self.core.nodes:
            self.core.update_node(self.local_node_id, local_capacity(), now)

    def place(self, cpu_cores: float = 0.0, memory_mb: int = 0,
              requires_gpu: bool = False, avoid: tuple[str, ...] = ()) -> str | None:
        """Where a new long-running instance should go now (nothing is reserved).

        A service that declares no needs is placed by score and policy alone; an
        instance runs long, so the long-task policy keeps it off battery nodes that
        are low and not charging. Nodes in ``avoid`` are never chosen."""
        spec = TaskSpec(cpu_millicores=round(cpu_cores * 1000), memory_mb=memory_mb,
                        requires_gpu=requires_gpu, estimated_duration=3600.0)
        return self.core.choose_node(spec, self._clock(), avoid)

    def now(self) -> float:
        """The scheduler's clock (epoch seconds): what the core is told the time is."""
        return self._clock()

    def metrics(self) -> dict[str, Any]:
        """Node scores and task counts, for /metrics."""
        core = self.core
        scores = {node_id: core.node_compute_score(node_id) for node_id in core.nodes}
        counts = {(t.value, s.value): n for (t, s), n in core.task_counts.items() if n}
        return {"node_scores": scores, "task_counts": counts}
