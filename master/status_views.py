"""Where things run, for /status: one record per instance and one per node.

The master knows instances from two sides: heartbeats (the registry: live
instances, the node each runs on) and its own deploys (the deployer: instances
started but not heard from yet). Nodes come from the master's own scheduler
(this machine) and, with a fleet, from the node agents' reports. Built on
demand, like the rest of :mod:`master.status`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from master.deployer import AutoDeployer
from master.scheduling import Scheduler
from workers.registry import InstanceRegistry, stage_name

__all__ = ["InstanceStatus", "NodeStatus", "instance_statuses", "node_statuses", "task_counts"]


@dataclass(frozen=True, slots=True)
class InstanceStatus:
    instance_id: str
    stage: str
    service: str
    node: str | None
    """The node its heartbeats name; None while it is still starting."""
    state: str
    """``live`` (heartbeating) or ``starting`` (deployed, not heard from yet)."""
    consumed_rate: float = 0.0
    produced_rate: float = 0.0
    busy: float | None = None
    lag: int | None = None
    age_s: float | None = None
    """Seconds since its first heartbeat (live) or its deploy (starting)."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    node_id: str
    source: str
    """``master`` (the master's own machine) or ``agent`` (a node agent's reports)."""
    score: float | None
    """The scheduler's score (0-1, higher takes work first); None before it scored it."""
    blocker: str | None
    """Why the scheduler gives it no work now (a policy, a task limit), if it does not."""
    battery_percent: float | None
    charging: bool | None
    thermal_state: str
    cpu_percent: float | None
    instances: list[str]
    running_tasks: int | None = None


def instance_statuses(
    registry: InstanceRegistry, deployer: AutoDeployer | None, now: float | None = None
) -> list[InstanceStatus]:
    """Live instances of every stage, then the ones still starting, by stage and id."""
    now = time.monotonic() if now is None else now
    out = []
    for key in registry.stages():
        for r in registry.instances(key):
            out.append(InstanceStatus(
                r.instance_id, stage_name(key), r.service_name, r.node_id, "live",
                round(r.consumed_rate, 3), round(r.produced_rate, 3),
                None if r.busy is None else round(r.busy, 3), r.lag,
                round(now - r.first_seen, 1)))
    if deployer is not None:
        for key in deployer.stages():
            plan = deployer.plan(key)
            for d in deployer.instances(key):
                if d.live_id is None and plan is not None:
                    out.append(InstanceStatus(d.deploy_id, stage_name(key), plan.service_name,
                                              None, "starting",
                                              age_s=round(now - d.started_at, 1)))
    return sorted(out, key=lambda i: (i.stage, i.state != "live", i.instance_id))


def node_statuses(
    scheduler: Scheduler, agents: Iterable[Mapping[str, Any]],
    instances: Iterable[InstanceStatus],
) -> list[NodeStatus]:
    """The master's machine as its scheduler sees it, then every agent's node."""
    by_node: dict[str, list[str]] = {}
    for inst in instances:
        if inst.node is not None:
            by_node.setdefault(inst.node, []).append(inst.instance_id)
    agents = list(agents)
    # With a fleet the scheduler's nodes are the agents' (listed below, as they report).
    reported = {str(node["node_id"]) for node in agents}
    out = []
    for node_id in sorted(set(scheduler.nodes) - reported):
        record = scheduler.nodes[node_id]
        cap = record.capacity
        # The master names its machine ``master@<host>``; instances there beat as ``<host>``.
        here = by_node.get(node_id, []) + by_node.get(node_id.partition("@")[2], [])
        out.append(NodeStatus(
            node_id, "master", round(record.key, 4), record.blocker,
            cap.battery_percent if cap.battery_powered else None,
            cap.is_charging if cap.battery_powered else None, cap.thermal_state.value,
            round(cap.cpu_utilization * 100, 1), sorted(here),
            len(record.active)))
    for node in agents:
        node_id = str(node["node_id"])
        running = list(node.get("running_instances") or [])
        out.append(NodeStatus(
            node_id, "agent", node.get("score"), node.get("blocker"),
            node.get("battery_percent"), node.get("charging"),
            str(node.get("thermal_state") or "unknown"), node.get("cpu_percent"),
            sorted(set(running) | set(by_node.get(node_id, []))), node.get("running_tasks")))
    return out


def task_counts(*sources: Mapping[str, Any]) -> dict[str, int]:
    """Tasks by state, added up over the master's scheduler and the fleet's queue."""
    total: Counter[str] = Counter()
    for counts in sources:
        for state, n in counts.items():
            if isinstance(n, int) and not isinstance(n, bool):
                total[state] += n
    return dict(sorted(total.items()))
