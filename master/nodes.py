"""The master's book of node agents: who reported, who restarted, who went silent.

Each :class:`~fogverse.wire.nodes.NodeCapacity` report registers its node with
the scheduler or refreshes it. A report with a new *incarnation* is a restarted
agent: whatever the old one ran is gone with it (its children die with it), so
the node leaves the scheduler (its tasks go back to the queue) and joins again.
A node silent for ``misses`` report intervals is lost the same way.

An agent cannot say what it does not know; the scheduler needs numbers. The
conversion in :func:`capacity_of` states each choice: unknown cores count as one,
unknown load as idle, unknown memory as none (so nothing with a memory need fits),
an unknown battery as mains power, and the thermal state passes as is (unknown
has its own factor in the score).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

from fogverse.wire.nodes import NodeCapacity
from master.scheduling import Capacity, CapacityRejected, Scheduler, ThermalState

__all__ = ["DEFAULT_MISSES", "NodeBook", "NodeEntry", "capacity_of"]

log = logging.getLogger("fogverse.master.nodes")

DEFAULT_MISSES: Final = 3
"""Reports a node may miss before it is lost."""

_GRACE_S: Final = 1.0  # on top of the missed intervals: delivery jitter on a busy broker


def capacity_of(report: NodeCapacity) -> Capacity:
    """The scheduler's capacity for one report (see the module docstring for unknowns)."""
    total = int(report.memory_total_mb or 0)
    used = min(total, int(report.memory_used_mb or 0))
    return Capacity(
        cpu_cores=report.cpu_cores or 1,
        cpu_utilization=(report.cpu_percent or 0.0) / 100.0,
        memory_mb=total,
        memory_used_mb=used,
        gpu_available=bool(report.gpu),
        gpu_memory_mb=int(report.gpu_memory_mb or 0),
        battery_powered=bool(report.battery_powered),
        battery_percent=report.battery_percent,
        is_charging=bool(report.charging),
        thermal_state=ThermalState(report.thermal_state),
        cpu_temperature_c=report.cpu_temp_c,
        network_metered=report.network_type == "cellular",
    )


@dataclass
class NodeEntry:
    report: NodeCapacity
    heard_at: float
    """Monotonic time of the last report."""
    reports: int = 1
    sent_at: float = 0.0
    """When the agent sent the last report (its clock, epoch seconds)."""

    @property
    def node_id(self) -> str:
        return self.report.node_id


@dataclass
class NodeBook:
    """Nodes as the agents describe them, kept in step with the scheduler."""

    scheduler: Scheduler
    misses: int = DEFAULT_MISSES
    entries: dict[str, NodeEntry] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)
    lost_total: int = 0
    restarts: int = 0

    def on_report(self, report: NodeCapacity, now: float, at: float | None = None,
                  sent_at: float = 0.0) -> tuple[str, list[str]]:
        """Take one report: ("new" | "restarted" | "updated" | "rejected", re-queued task ids).

        ``now`` is monotonic (for liveness); ``at`` is the scheduler's clock (default ``now``).
        """
        at = now if at is None else at
        try:
            capacity = capacity_of(report)
        except (CapacityRejected, ValueError) as exc:
            reason = getattr(exc, "reason", "bad_capacity")
            self.rejected[reason] += 1
            log.warning("capacity report from %s rejected: %s", report.node_id, exc)
            return "rejected", []
        entry = self.entries.get(report.node_id)
        moved: list[str] = []
        restarted = entry is not None and entry.report.incarnation != report.incarnation
        if restarted:
            self.restarts += 1
            moved = self._forget(report.node_id, at)
            entry = None
            log.info("agent %s restarted: re-registered, %d task(s) re-queued",
                     report.node_id, len(moved))
        try:
            if entry is None:
                self.scheduler.register_node(report.node_id, capacity, at,
                                             metadata={"tags": list(report.tags)})
            else:
                self.scheduler.update_node(report.node_id, capacity, at)
        except CapacityRejected as exc:
            self.rejected[exc.reason] += 1
            log.warning("capacity report from %s rejected: %s", report.node_id, exc)
            return "rejected", moved
        if entry is None:
            self.entries[report.node_id] = NodeEntry(report, now, sent_at=sent_at)
            return ("restarted" if restarted else "new"), moved
        entry.report, entry.heard_at, entry.sent_at = report, now, sent_at
        entry.reports += 1
        return "updated", moved

    def expire(self, now: float, at: float | None = None) -> list[tuple[str, list[str]]]:
        """Nodes silent too long, removed; each with the task ids that went back to the queue.

        ``now`` is monotonic; ``at`` is the scheduler's clock (default ``now``)."""
        at = now if at is None else at
        lost = [e for e in self.entries.values()
                if now - e.heard_at > self.misses * e.report.interval + _GRACE_S]
        out = []
        for entry in lost:
            self.lost_total += 1
            moved = self._forget(entry.node_id, at)
            log.warning("node %s lost (no report for %.1fs): %d task(s) re-queued",
                        entry.node_id, now - entry.heard_at, len(moved))
            out.append((entry.node_id, moved))
        return out

    def _forget(self, node_id: str, now: float) -> list[str]:
        self.entries.pop(node_id, None)
        if node_id not in self.scheduler.nodes:
            return []
        return self.scheduler.unregister_node(node_id, now)

    def handles(self, task_type: str) -> bool:
        """Whether any live node has a handler for ``task_type``."""
        return any(task_type in e.report.task_types for e in self.entries.values())

    def status(self) -> list[dict[str, Any]]:
        """One line per node for /status: score, power, heat, what it runs."""
        out = []
        for node_id in sorted(self.entries):
            report = self.entries[node_id].report
            record = self.scheduler.nodes.get(node_id)
            out.append({
                "node_id": node_id, "tags": list(report.tags),
                "score": None if record is None else round(record.key, 4),
                "blocker": None if record is None else record.blocker,
                "battery_percent": report.battery_percent, "charging": report.charging,
                "thermal_state": report.thermal_state, "cpu_percent": report.cpu_percent,
                "running_tasks": len(report.running_tasks),
                "running_instances": list(report.running_instances),
                "task_types": list(report.task_types), "profile": report.profile,
            })
        return out
