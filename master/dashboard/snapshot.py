"""What the dashboard reads from a running master: a sample for the charts, and the
current tables (stages, nodes, tasks, decisions).

Everything here is read from what the master keeps anyway (the instance registry,
the input/output worker's assessments, the deployer's plans and decision log,
the schedulers' nodes and tasks); nothing is counted per message for the page.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from master.dashboard.history import Sample
from master.scheduling import Scheduler
from master.status import to_json
from workers.registry import StageKey, stage_name

if TYPE_CHECKING:
    from master.master import Master

__all__ = ["DECISIONS_SHOWN", "current_view", "recent_decisions", "sample_master"]

DECISIONS_SHOWN = 50
"""How many of the latest scaling decisions the page lists."""


def _stages(master: Master) -> list[StageKey]:
    keys = set(master.registry.stages())
    if master.deployer is not None:
        keys |= set(master.deployer.stages())
    return sorted(keys, key=stage_name)


def _schedulers(master: Master) -> Iterator[Scheduler]:
    """The master's own scheduler (its machine), then the fleet's (the node agents)."""
    yield master.scheduler.core
    if master.fleet is not None:
        yield master.fleet.service.scheduler


def _number(value: float) -> float:
    return round(value, 3) if math.isfinite(value) else 0.0


def sample_master(master: Master, at: float) -> Sample:
    """One sample of every chart, read now; ``at`` is the wall clock it is filed under."""
    throughput = {topic: _number(r.produced_into if r.producers else r.consumed_from)
                  for topic, r in master.registry.topic_rates().items()}
    instances: dict[str, float] = {}
    lag: dict[str, float] = {}
    for key in _stages(master):
        name = stage_name(key)
        instances[name] = master.registry.live_count(key)
        assessment = master.input_output.assessment(key) if master.input_output else None
        if assessment is not None and assessment.lag is not None:
            lag[name] = assessment.lag
    scores: dict[str, float] = {}
    free_cpu: dict[str, float] = {}
    tasks: Counter[str] = Counter()
    for scheduler in _schedulers(master):
        for node_id, node in scheduler.nodes.items():
            scores[node_id] = _number(scheduler.node_compute_score(node_id))
            free_cpu[node_id] = _number(max(0.0, node.free_cpu))
        for (_, state), count in scheduler.task_counts.items():
            if not state.final:
                tasks[state.value] += count
    return Sample(at, {
        "throughput": throughput, "instances": instances, "lag": lag,
        "node_score": scores, "node_free_cpu": free_cpu,
        "tasks": {"pending": tasks["pending"], "assigned": tasks["assigned"]},
    })


def recent_decisions(master: Master, limit: int = DECISIONS_SHOWN) -> list[dict[str, Any]]:
    """The latest scaling decisions with their reasons, newest first."""
    if master.deployer is None:
        return []
    latest = list(master.deployer.decisions)[-limit:]
    return [to_json(d) for d in reversed(latest)]


def _stage_rows(master: Master) -> list[dict[str, Any]]:
    plans = master.deployer.status().stages if master.deployer is not None else {}
    rows = []
    for key in _stages(master):
        name = stage_name(key)
        rates = master.registry.stage_rates(key)
        plan = plans.get(name)
        assessment = master.input_output.assessment(key) if master.input_output else None
        rows.append({
            "stage": name, "live": rates.live,
            "starting": len(plan.starting) if plan else 0,
            "min": plan.min_instance if plan else None,
            "max": plan.max_instance if plan else None,
            "provider": plan.provider if plan else None,
            "consumed_rate": _number(rates.consumed), "produced_rate": _number(rates.produced),
            "lag": assessment.lag if assessment else None,
            "verdict": assessment.verdict.value if assessment else None,
        })
    return rows


def _node_rows(master: Master) -> list[dict[str, Any]]:
    rows = []
    for scheduler in _schedulers(master):
        for node_id in sorted(scheduler.nodes):
            node = scheduler.nodes[node_id]
            cap = node.capacity
            rows.append({
                "node": node_id, "score": _number(scheduler.node_compute_score(node_id)),
                "cpu_cores": cap.cpu_cores, "free_cpu": _number(max(0.0, node.free_cpu)),
                "battery_percent": cap.battery_percent if cap.battery_powered else None,
                "charging": cap.is_charging if cap.battery_powered else None,
                "thermal_state": cap.thermal_state.value, "blocker": node.blocker,
                "tasks": len(node.active),
            })
    return rows


def _task_totals(master: Master) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for scheduler in _schedulers(master):
        for (_, state), count in scheduler.task_counts.items():
            totals[state.value] += count
    return dict(sorted(totals.items()))


def current_view(master: Master) -> dict[str, Any]:
    """The tables under the charts: stages, nodes, task totals and decisions, now."""
    return {
        "stages": _stage_rows(master), "nodes": _node_rows(master),
        "tasks": _task_totals(master), "decisions": recent_decisions(master),
    }
