"""Counters and the system status in the fog-coordinator seed's shape."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from master.scheduling.tasks import TaskState, TaskType

if TYPE_CHECKING:
    from master.scheduling.scheduler import Scheduler

__all__ = ["Statistics", "system_status"]


@dataclass(slots=True)
class Statistics:
    nodes_registered: int = 0
    nodes_departed: int = 0
    tasks_submitted: int = 0
    tasks_assigned: int = 0
    tasks_completed: int = 0
    tasks_failed: int = 0
    tasks_expired: int = 0
    tasks_cancelled: int = 0
    tasks_retried: int = 0
    tasks_timed_out: int = 0
    tasks_unsatisfiable: int = 0
    total_compute_hours: float = 0.0
    charging_compute_hours: float = 0.0
    battery_saves: int = 0
    """Completed tasks longer than ``battery_save_seconds`` that ran on a charging battery."""
    reports_rejected: int = 0
    rejected_reasons: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rejected_reasons"] = dict(sorted(self.rejected_reasons.items()))
        return out


def _nodes(scheduler: Scheduler) -> dict[str, Any]:
    by_state: Counter[str] = Counter()
    cores = memory = 0
    free_cpu = free_memory = 0.0
    for node in scheduler.nodes.values():
        cap = node.capacity
        cores += cap.cpu_cores
        memory += cap.memory_mb
        free_cpu += max(0.0, node.free_cpu)
        free_memory += max(0.0, node.free_mem)
        if node.active:
            by_state["active"] += 1
        elif node.listed:
            by_state["idle"] += 1
        if cap.battery_powered and cap.is_charging:
            by_state["charging"] += 1
        if node.blocker is not None and node.blocker != "task_limit":
            by_state[node.blocker] += 1
    return {
        "total": len(scheduler.nodes),
        "by_state": {"active": by_state.pop("active", 0), "idle": by_state.pop("idle", 0),
                     "charging": by_state.pop("charging", 0), **dict(sorted(by_state.items()))},
        "total_compute_capacity": {
            "cpu_cores": cores,
            "memory_gb": memory / 1024,
            "available_cpu_cores": free_cpu,
            "available_memory_gb": free_memory / 1024,
        },
    }


def system_status(scheduler: Scheduler) -> dict[str, Any]:
    counts = scheduler.task_counts
    by_type = {t.value: {s.value: counts.get((t, s), 0) for s in TaskState} for t in TaskType}
    totals = {s.value: sum(counts.get((t, s), 0) for t in TaskType) for s in TaskState}
    stats = scheduler.stats
    return {
        "coordinator_id": scheduler.coordinator_id,
        "nodes": _nodes(scheduler),
        "clusters": scheduler.clusters.status(),
        "tasks": {
            "pending": totals["pending"],
            "active": totals["assigned"],
            "completed": stats.tasks_completed,
            "failed": stats.tasks_failed,
            "expired": stats.tasks_expired,
            "cancelled": stats.tasks_cancelled,
            "by_type": by_type,
        },
        "statistics": stats.as_dict(),
        "contributions": scheduler.ledger.as_dict(),
        "policies": scheduler.policies.copy(),
    }
